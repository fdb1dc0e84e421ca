"""Triage of raw watch lines: the ownership decision made before parsing never
contradicts the parsed object, and it is reached for the common layouts."""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from panopticon.kube.events import compact_rv, metadata_uid, rv_of_line, split_head, triage, uid_candidates
from panopticon.sharding.buckets import BucketSpace, ShardFilter

SPACE = BucketSpace(16)
THIRD = ShardFilter(SPACE, frozenset(range(0, 16, 3)))


def line(obj: dict[str, Any], etype: str = "MODIFIED") -> bytes:
    return orjson.dumps({"type": etype, "object": obj})


def pod(uid: str, *, owner: str | None = None, annotations: dict[str, str] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "web-0", "namespace": "default", "uid": uid, "resourceVersion": "42"}
    if annotations:
        meta["annotations"] = annotations
    if owner:
        meta["ownerReferences"] = [
            {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": owner}
        ]
    return {"kind": "Pod", "apiVersion": "v1", "metadata": meta, "spec": {"containers": [{"name": "c"}]}}


def custom_resource(uid: str, owner: str) -> dict[str, Any]:
    """Sorted keys, as the API server encodes unstructured objects: ownerReferences before uid."""
    meta = {
        "annotations": {"a": "b"},
        "name": "db",
        "namespace": "default",
        "ownerReferences": [{"apiVersion": "v1", "kind": "X", "name": "x", "uid": owner}],
        "resourceVersion": "7",
        "uid": uid,
    }
    return {"apiVersion": "example.com/v1", "kind": "Db", "metadata": meta, "spec": {}}


def test_the_structural_rule_reads_the_uid_of_a_go_encoded_object() -> None:
    raw = line(pod("u-1", owner="owner-9"))
    etype, start = split_head(raw)
    assert etype == b"MODIFIED"
    assert metadata_uid(raw, start) == "u-1"


def test_the_structural_rule_gives_up_when_metadata_is_not_flat_before_the_uid() -> None:
    raw = line(custom_resource("u-1", "owner-9"))
    assert metadata_uid(raw, split_head(raw)[1]) is None


def test_the_agreement_rule_decides_when_every_candidate_has_the_same_owner() -> None:
    uids = [f"uid-{i}" for i in range(200)]
    owned = [u for u in uids if THIRD.contains(u)]
    other = [u for u in uids if not THIRD.contains(u)]
    raw = line(custom_resource(other[0], other[1]))
    assert uid_candidates(raw, split_head(raw)[1]) == [other[1], other[0]]
    assert triage(raw, split_head(raw)[1], THIRD.contains) is False
    raw = line(custom_resource(owned[0], owned[1]))
    assert triage(raw, split_head(raw)[1], THIRD.contains) is True
    raw = line(custom_resource(owned[0], other[0]))
    assert triage(raw, split_head(raw)[1], THIRD.contains) is None


def test_a_uid_token_that_is_not_a_plain_string_key_makes_triage_undecided() -> None:
    obj = custom_resource("u-1", "u-1")
    obj["spec"] = {"fieldPath": "uid"}
    raw = line(obj)
    assert uid_candidates(raw, split_head(raw)[1]) is None
    spaced = raw.replace(b'"resourceVersion":"7","uid":"u-1"', b'"resourceVersion":"7","uid": "u-1"')
    assert uid_candidates(spaced, split_head(spaced)[1]) is None


def test_annotations_that_imitate_a_uid_do_not_fool_triage() -> None:
    tricky = {'x","uid":"evil': "1", "uid": "also-evil", "note": '"uid":"evil-2"'}
    obj = custom_resource("real-uid", "real-uid")
    obj["metadata"]["annotations"] = tricky
    raw = line(obj)
    start = split_head(raw)[1]
    assert metadata_uid(raw, start) is None
    assert triage(raw, start, lambda u: u == "real-uid") in (None, True)
    assert triage(raw, start, lambda u: u != "real-uid") in (None, False)


def test_lines_not_in_the_compact_go_form_are_not_triaged() -> None:
    assert split_head(b'{ "type": "ADDED", "object": {}}') == (b"", 0)
    assert split_head(b'{"object":{},"type":"ADDED"}') == (b"", 0)


def test_the_resource_version_of_a_skipped_line_is_recovered_on_demand() -> None:
    assert rv_of_line(line(pod("u"))) == "42"
    assert rv_of_line(b"not json") == ""


def test_resource_versions_are_stored_compactly_and_opaque_ones_as_strings() -> None:
    assert compact_rv("123456789") == 123456789
    assert compact_rv("0123") == "0123"
    assert compact_rv("abc") == "abc"
    assert compact_rv("²") == "²"
    assert compact_rv("9" * 30) == "9" * 30


KEY = st.sampled_from(["uid", "name", "x", 'a"uid', "uid\\", "metadata", "ünï", "apiVersion"])
VALUE = st.recursive(
    st.one_of(
        st.text(max_size=8), st.integers(-(2**53), 2**53), st.none(), st.sampled_from(["uid", '"uid":"x"'])
    ),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(KEY, inner, max_size=3)),
    max_leaves=12,
)
UID = st.sampled_from([f"uid-{i}" for i in range(12)])


@settings(max_examples=400, deadline=None)
@given(
    uid=UID,
    before=st.dictionaries(KEY, VALUE, max_size=3),
    after=st.dictionaries(KEY, VALUE, max_size=3),
    top=st.dictionaries(KEY, VALUE, max_size=3),
    sort=st.booleans(),
    buckets=st.frozensets(st.integers(0, 15)),
)
def test_triage_never_contradicts_the_parsed_object(
    *,
    uid: str,
    before: dict[str, Any],
    after: dict[str, Any],
    top: dict[str, Any],
    sort: bool,
    buckets: frozenset[int],
) -> None:
    meta = {k: v for k, v in before.items() if k != "uid"}
    meta["uid"] = uid
    meta.update({k: v for k, v in after.items() if k != "uid"})
    obj = {k: v for k, v in top.items() if k != "metadata"}
    obj["metadata"] = meta
    body = orjson.dumps(obj, option=orjson.OPT_SORT_KEYS if sort else 0)
    raw = b'{"type":"ADDED","object":' + body + b"}"
    shard = ShardFilter(SPACE, buckets)
    _, start = split_head(raw)
    verdict = triage(raw, start, shard.contains) if start else None
    truth = shard.contains(orjson.loads(raw)["object"]["metadata"]["uid"])
    assert verdict is None or verdict == truth
    if start:
        one, two = uid_candidates(raw, start), two_pass_candidates(raw, start)
        if two is not None:
            assert one == two
        if one is not None:
            # Deciding where the two-pass form gave up (a `"uid"` key whose value is
            # "uid": it counted that value as one more token) is fine as long as every
            # "uid" key's value is a candidate: the agreement rule then decides only
            # when the real uid agrees. (Both forms may add a spurious candidate, e.g.
            # from an escaped key `a\"uid`; that only makes agreement rarer.)
            remaining = list(one)
            for value in uid_key_values(orjson.loads(raw)["object"]):
                assert value in remaining, (value, one)
                remaining.remove(value)


def uid_key_values(node: Any) -> list[Any]:
    """The values of every "uid" key in `node`, at any depth, in document order."""
    found: list[Any] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "uid":
                found.append(value)
            found += uid_key_values(value)
    elif isinstance(node, list):
        for item in node:
            found += uid_key_values(item)
    return found


def two_pass_candidates(line: bytes, start: int) -> list[str] | None:
    """`uid_candidates` as first written (every `"uid":"` key, then a count of the
    `"uid"` tokens): the one-pass form must agree with it on every line."""
    out: list[str] = []
    pos = start
    while True:
        key = line.find(b'"uid":"', pos)
        if key < 0:
            break
        value = key + len(b'"uid":"')
        end = line.find(b'"', value)
        if end < 0 or line.find(b"\\", value, end) >= 0:
            return None
        out.append(line[value:end].decode("utf-8", "replace"))
        pos = end
    if not out or len(out) != line.count(b'"uid"', start):
        return None
    return out


def test_a_custom_resource_is_decided_by_agreement_and_a_built_in_by_its_metadata() -> None:
    uids = [f"uid-{i}" for i in range(200)]
    owned = [u for u in uids if THIRD.contains(u)]
    other = [u for u in uids if not THIRD.contains(u)]
    crd = line(
        {
            "apiVersion": "kubedb.com/v1",
            "kind": "MongoDB",
            "metadata": {"labels": {"a": "b"}, "uid": owned[0]},
        }
    )
    assert metadata_uid(crd, split_head(crd)[1]) is None
    assert triage(crd, split_head(crd)[1], THIRD.contains) is True
    flat = line({"apiVersion": "example.com/v1", "kind": "Db", "metadata": {"name": "db", "uid": other[0]}})
    assert triage(flat, split_head(flat)[1], THIRD.contains) is False
    # A custom resource owned by an object of another shard: the candidates disagree and
    # its metadata is not flat before the uid, so only a parse can tell.
    raw = line(custom_resource(owned[0], other[0]))
    assert triage(raw, split_head(raw)[1], THIRD.contains) is None
    # A pod whose owner belongs elsewhere: decided by its own uid, read structurally.
    raw = line(pod(owned[1], owner=other[1]))
    assert triage(raw, split_head(raw)[1], THIRD.contains) is True
