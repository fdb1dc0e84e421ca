"""Label, field and shard selectors (README.md, "Selectors" and
"Sharded list and watch").

Parsers turn query strings into small immutable matchers, once per request; a
matcher then runs per object. Grammars follow apimachinery `labels.Parse`,
`fields.ParseSelector` and `pkg/sharding`; a parse error is a `SelectorError`,
which the server answers 400 (shard selectors: a configurable code).

Why hand-written: no Python library implements apimachinery's selector grammars
with its error messages (the `kubernetes` package sends selectors, it never parses
them), and the `shardRange` selector exists only in Kubernetes 1.36's Go code. No
speed claim.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from panopticon.errors import PanopticonError

FNV64_OFFSET = 0xCBF29CE484222325
FNV64_PRIME = 0x100000001B3
MASK64 = (1 << 64) - 1
SHARD_END = 1 << 64
"""The special exclusive end `0x10000000000000000`."""


class SelectorError(PanopticonError):
    """A selector does not parse or names a field the resource does not support."""


def fnv1a64(text: str) -> int:
    """FNV-1a 64 of `text`'s UTF-8 bytes (what KSM and `pkg/sharding` hash uids with)."""
    h = FNV64_OFFSET
    for byte in text.encode():
        h = ((h ^ byte) * FNV64_PRIME) & MASK64
    return h


# --- label selectors ---------------------------------------------------------

_QUALIFIED = re.compile(
    r"^(?:(?P<prefix>[a-z0-9](?:[-a-z0-9]*[a-z0-9])?(?:\.[a-z0-9](?:[-a-z0-9]*[a-z0-9])?)*)/)?"
    r"(?P<name>[A-Za-z0-9](?:[-A-Za-z0-9_.]*[A-Za-z0-9])?)$"
)
_LABEL_VALUE = re.compile(r"^(?:(?:[A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_TOKEN = re.compile(r"\s*(?:(?P<op>==|!=|=|!|\(|\)|,|<|>)|(?P<word>[^\s=!(),<>]+))")


@dataclass(frozen=True, slots=True)
class Requirement:
    key: str
    op: str  # exists, !, =, !=, in, notin, gt, lt
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        op = self.op
        if op == "exists":
            return self.key in labels
        if op == "!":
            return self.key not in labels
        if op in ("=", "in"):
            return self.key in labels and labels[self.key] in self.values
        if op in ("!=", "notin"):
            return self.key not in labels or labels[self.key] not in self.values
        value = labels.get(self.key)
        if value is None:
            return False
        try:
            have, want = int(value), int(self.values[0])
        except ValueError:
            return False
        return have > want if op == "gt" else have < want


@dataclass(frozen=True, slots=True)
class LabelSelector:
    requirements: tuple[Requirement, ...]

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(r.matches(labels) for r in self.requirements)


def _tokens(text: str) -> list[str]:
    out: list[str] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = _TOKEN.match(text, pos)
        if m is None:  # pragma: no cover - every character is an op or part of a word
            raise SelectorError(f"unable to parse requirement: unexpected character at {pos}")
        out.append(m.group("op") or m.group("word"))
        pos = m.end()
    return out


def _check_key(key: str) -> str:
    m = _QUALIFIED.match(key)
    if m is None or len(m.group("name")) > 63 or len(m.group("prefix") or "") > 253:
        raise SelectorError(
            f"unable to parse requirement: key: Invalid value: {key!r}: name part must consist of "
            "alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"
        )
    return key


def _check_value(value: str) -> str:
    if len(value) > 63 or _LABEL_VALUE.match(value) is None:
        raise SelectorError(
            f"unable to parse requirement: values[0]: Invalid value: {value!r}: a valid label must be an "
            "empty string or consist of alphanumeric characters, '-', '_' or '.'"
        )
    return value


def parse_label_selector(text: str) -> LabelSelector | None:
    """Parse `labelSelector`; None for the empty selector (matches everything)."""
    toks = _tokens(text)
    if not toks:
        return None
    reqs: list[Requirement] = []
    i = 0

    def take() -> str:
        nonlocal i
        if i >= len(toks):
            raise SelectorError(f"unable to parse requirement: found '', expected more in {text!r}")
        i += 1
        return toks[i - 1]

    while True:
        tok = take()
        if tok == "!":
            reqs.append(Requirement(_check_key(take()), "!"))
        else:
            key = _check_key(tok)
            nxt = toks[i] if i < len(toks) else ","
            if nxt == ",":
                reqs.append(Requirement(key, "exists"))
            elif nxt in ("=", "==", "!="):
                take()
                value = toks[i] if i < len(toks) and toks[i] != "," else ""
                if value:
                    take()
                reqs.append(Requirement(key, "!=" if nxt == "!=" else "=", (_check_value(value),)))
            elif nxt in ("in", "notin"):
                take()
                reqs.append(Requirement(key, nxt, _parse_set(take, text)))
            elif nxt in (">", "<"):
                take()
                value = take()
                if not value.isdigit():
                    raise SelectorError(
                        "unable to parse requirement: for 'Gt', 'Lt' operators, the value must be an "
                        f"integer: {value!r}"
                    )
                reqs.append(Requirement(key, "gt" if nxt == ">" else "lt", (value,)))
            else:
                raise SelectorError(
                    f"unable to parse requirement: found '{nxt}', expected: '=', '!=', '==', 'in', notin'"
                )
        if i >= len(toks):
            break
        if take() != ",":
            raise SelectorError(f"found '{toks[i - 1]}', expected: ',' or 'end of string'")
    return LabelSelector(tuple(reqs))


def _parse_set(take: Callable[[], str], text: str) -> tuple[str, ...]:
    if take() != "(":
        raise SelectorError(f"unable to parse requirement: found '', expected: '(' in {text!r}")
    values: list[str] = []
    while True:
        tok = take()
        if tok == ")":
            break
        if tok == ",":
            continue
        values.append(_check_value(tok))
    if not values:
        raise SelectorError(
            "unable to parse requirement: for 'in', 'notin' operators, values set can't be empty"
        )
    return tuple(values)


# --- field selectors ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FieldTerm:
    field: str
    value: str
    negate: bool


@dataclass(frozen=True, slots=True)
class FieldSelector:
    terms: tuple[FieldTerm, ...]

    def matches(self, fields: Mapping[str, str]) -> bool:
        return all((fields.get(t.field, "") == t.value) != t.negate for t in self.terms)

    def required_name(self) -> str | None:
        """The value of a `metadata.name=` term, if any (single-object watches)."""
        for t in self.terms:
            if t.field == "metadata.name" and not t.negate:
                return t.value
        return None


def _split_unescaped(text: str, sep: str) -> list[str]:
    parts, cur, esc = [], [], False
    for ch in text:
        if esc:
            cur.append("\\" + ch)
            esc = False
        elif ch == "\\":
            esc = True
        elif ch == sep:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return parts


def _unescape(value: str) -> str:
    return re.sub(r"\\(.)", r"\1", value)


def parse_field_selector(
    text: str, supported: frozenset[str], *, typed_conversion: bool
) -> FieldSelector | None:
    """Parse `fieldSelector` against the resource's `supported` fields.

    `typed_conversion` picks the error wording: built-ins with a custom field label
    conversion say `field label not supported`, others `is not a known field selector`.
    """
    if not text.strip():
        return None
    terms: list[FieldTerm] = []
    for part in _split_unescaped(text, ","):
        for op in ("!=", "==", "="):
            idx = part.find(op)
            if idx >= 0:
                field, value = part[:idx].strip(), _unescape(part[idx + len(op) :])
                terms.append(FieldTerm(field, value, op == "!="))
                break
        else:
            raise SelectorError(f"invalid selector: '{text}'; can't understand '{part}'")
    for t in terms:
        if t.field not in supported:
            if typed_conversion:
                raise SelectorError(f"field label not supported: {t.field}")
            allowed = ", ".join(f'"{f}"' for f in sorted(supported))
            raise SelectorError(f'"{t.field}" is not a known field selector: only {allowed}')
    return FieldSelector(tuple(terms))


# --- shard selectors (ShardedListAndWatch, 1.36 alpha) -----------------------

_SHARD_KEYS = ("object.metadata.uid", "object.metadata.namespace")
_RANGE = re.compile(
    r"^\s*shardRange\(\s*(?P<key>[A-Za-z.]+)\s*,\s*'(?P<start>0x[0-9a-fA-F]+)'\s*,\s*'(?P<end>0x[0-9a-fA-F]+)'\s*\)\s*$"
)


@dataclass(frozen=True, slots=True)
class ShardSelector:
    key: str
    ranges: tuple[tuple[int, int], ...]

    @property
    def normalized(self) -> str:
        """The selector as echoed in `metadata.shardInfo.selector`."""
        return " || ".join(f"shardRange({self.key}, '0x{s:016x}', '0x{e:016x}')" for s, e in self.ranges)

    def matches_hash(self, h: int) -> bool:
        return any(s <= h < e for s, e in self.ranges)


def parse_shard_selector(text: str) -> ShardSelector | None:
    """Parse `shardSelector`; None when empty."""
    if not text.strip():
        return None
    keys: set[str] = set()
    ranges: list[tuple[int, int]] = []
    for part in text.split("||"):
        m = _RANGE.match(part)
        if m is None:
            raise SelectorError(f"invalid shard selector: cannot parse {part.strip()!r}")
        key = m.group("key")
        if key not in _SHARD_KEYS:
            raise SelectorError(
                f"invalid shard selector: unsupported key {key!r}, supported: {', '.join(_SHARD_KEYS)}"
            )
        start, end = int(m.group("start"), 16), int(m.group("end"), 16)
        if not (0 <= start < end <= SHARD_END):
            raise SelectorError(
                "invalid shard selector: empty or out-of-range shardRange "
                f"[{m.group('start')}, {m.group('end')})"
            )
        keys.add(key)
        ranges.append((start, end))
    if len(keys) != 1:
        raise SelectorError("invalid shard selector: all shardRange terms must use the same key")
    return ShardSelector(keys.pop(), tuple(ranges))
