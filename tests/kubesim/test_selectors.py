"""Label, field and shard selector grammars (kubesim/README.md, "Selectors" and
"Sharded list and watch"), as table tests."""

from __future__ import annotations

import re

import pytest

from kubesim.selectors import (
    SelectorError,
    fnv1a64,
    parse_field_selector,
    parse_label_selector,
    parse_shard_selector,
)

LABELS = {"app": "web", "tier": "front", "n": "5"}

LABEL_CASES = [
    ("", True),
    ("app", True),
    ("!app", False),
    ("missing", False),
    ("!missing", True),
    ("app=web", True),
    ("app==web", True),
    ("app!=web", False),
    ("missing!=x", True),
    ("app in (web,api)", True),
    ("app in (api)", False),
    ("app notin (api, db)", True),
    ("missing notin (x)", True),
    ("app=web,tier=front", True),
    ("app=web, tier=back", False),
    ("n>3", True),
    ("n<3", False),
    ("missing>3", False),
    ("example.com/key=value", False),
    ("app=", False),
]


@pytest.mark.parametrize(("text", "matches"), LABEL_CASES)
def test_label_selectors_match_like_apimachinery(text: str, matches: bool) -> None:
    sel = parse_label_selector(text)
    assert (sel is None or sel.matches(LABELS)) is matches


@pytest.mark.parametrize("text", ["a in (b", "a in ()", "=x", "a b", "a>b", "-bad-=x", "a=b=c"])
def test_malformed_label_selectors_are_errors(text: str) -> None:
    with pytest.raises(SelectorError):
        parse_label_selector(text)


FIELDS = frozenset({"metadata.name", "metadata.namespace", "spec.nodeName"})


@pytest.mark.parametrize(
    ("text", "values", "matches"),
    [
        ("metadata.name=a", {"metadata.name": "a"}, True),
        ("metadata.name==a", {"metadata.name": "b"}, False),
        ("metadata.name!=a", {"metadata.name": "b"}, True),
        ("spec.nodeName=", {}, True),
        ("metadata.name=a,spec.nodeName!=n1", {"metadata.name": "a", "spec.nodeName": "n1"}, False),
        (r"metadata.name=a\,b", {"metadata.name": "a,b"}, True),
    ],
)
def test_field_selectors_match_equality_terms(text: str, values: dict[str, str], matches: bool) -> None:
    sel = parse_field_selector(text, FIELDS, typed_conversion=True)
    assert sel is not None and sel.matches(values) is matches


def test_field_selector_errors_name_the_field_in_the_apiservers_words() -> None:
    with pytest.raises(SelectorError, match=r"^field label not supported: spec\.foo$"):
        parse_field_selector("spec.foo=1", FIELDS, typed_conversion=True)
    generic = frozenset({"metadata.name", "metadata.namespace"})
    with pytest.raises(
        SelectorError,
        match=re.escape('is not a known field selector: only "metadata.name", "metadata.namespace"'),
    ):
        parse_field_selector("spec.foo=1", generic, typed_conversion=False)
    with pytest.raises(SelectorError):
        parse_field_selector("nooperator", FIELDS, typed_conversion=True)


def test_fnv1a_64_matches_the_reference_vectors() -> None:
    assert fnv1a64("") == 0xCBF29CE484222325
    assert fnv1a64("a") == 0xAF63DC4C8601EC8C
    assert fnv1a64("foobar") == 0x85944171F73967E8


def test_shard_selectors_parse_normalise_and_match_half_open_ranges() -> None:
    sel = parse_shard_selector(
        "shardRange(object.metadata.uid,'0x0', '0x8000000000000000')"
        "||shardRange(object.metadata.uid, '0xF000000000000000', '0x10000000000000000')"
    )
    assert sel is not None and sel.key == "object.metadata.uid"
    assert sel.normalized == (
        "shardRange(object.metadata.uid, '0x0000000000000000', '0x8000000000000000') || "
        "shardRange(object.metadata.uid, '0xf000000000000000', '0x10000000000000000')"
    )
    assert sel.matches_hash(0) and not sel.matches_hash(1 << 63) and sel.matches_hash((1 << 64) - 1)


@pytest.mark.parametrize(
    "text",
    [
        "shardRange(object.metadata.name, '0x0', '0x1')",
        "shardRange(object.metadata.uid, '0x5', '0x5')",
        "shardRange(object.metadata.uid, '0x0', '0x20000000000000000')",
        "hashRange(object.metadata.uid, '0x0', '0x1')",
        "shardRange(object.metadata.uid, '0x0', '0x1') || "
        "shardRange(object.metadata.namespace, '0x0', '0x1')",
    ],
)
def test_invalid_shard_selectors_are_errors(text: str) -> None:
    with pytest.raises(SelectorError, match=r"^invalid shard selector"):
        parse_shard_selector(text)
