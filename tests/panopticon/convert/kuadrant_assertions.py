"""Kuadrant's end-to-end assertions (expected/main_test.go), read from the Go file itself.

main_test.go scrapes kube-state-metrics, keeps the lines matching
`^(gatewayapi_.*){(.*)}\\s+(.*)` (and `^(kuadrant_.*)...`) per family in scrape order,
and asserts label by label on `metrics[family][i]`, with its own naive label parser.
Porting its ~250 assertions by hand would invite transcription mistakes, so this
module reads them from the Go source: the test functions are straight-line code in a
handful of statement shapes, each recognized here. A line in a test function that is
none of them fails the reading, so no assertion is skipped unnoticed.

`check(assertions, exposition)` evaluates them against an exposition exactly as the
Go test would (same regular expressions, same label parser, same order) and returns
the failures; a family or index that does not exist fails the assertions that need it,
where Go would panic.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Final

_ASSIGN_FAMILY: Final = re.compile(r'(\w+) := (\w+)\["(\w+)"\]$')
_ASSIGN_INDEX: Final = re.compile(r"(\w+) := (\w+)\[(\d+)\]$")
_ASSIGN_LABELS: Final = re.compile(r"(\w+) := parseLabels\(string\((\w+)\[(\d)\]\)\)$")
_ASSIGN_FIELD: Final = re.compile(r'(\w+) := (\w+)\["(\w+)"\]$')
_EXPECT_VALUE: Final = re.compile(r'expectEqual\(t, (\w+)\[3\], "([^"]*)", "([^"]*)"\)$')
_EXPECT_LABEL: Final = re.compile(r'expectEqual\(t, (\w+)\["(\w+)"\], "([^"]*)", "([^"]*)"\)$')
_EXPECT_LOOP: Final = re.compile(r"expectEqual\(t, (\w+), (\w+)\[i\], .*\)$")
_EXPECT_TIME: Final = re.compile(r'expectValidTimestampInPast\(t, (\w+)\[3\], "([^"]*)"\)$')
_MAP_START: Final = re.compile(r"(\w+) := map\[int\]string\{$")
_MAP_ENTRY: Final = re.compile(r'(\d+): "([^"]*)",$')
_RANGE: Final = re.compile(r"for i, (\w+) := range (\w+) \{$")
_FUNC: Final = re.compile(r"func (test\w+)\(t \*testing\.T, metrics map\[string\]\[\]\[\]string\) \{$")
_SCRAPE: Final = re.compile(r"re := regexp\.MustCompile\(`([^`]*)`\)")
_CALL: Final = re.compile(r"(test\w+)\(t, (\w+)\)$")


@dataclass(frozen=True, slots=True)
class Assertion:
    family: str
    index: int | None
    """The series index; None for a loop over every series of the family."""
    kind: str
    """value, label, timestamp, or loop (label `key` of series i is expected[i])."""
    key: str
    expected: str | dict[int, str]
    message: str
    pattern: str
    """The scrape regex whose matches the family's series are."""


def read_assertions(source: str) -> list[Assertion]:
    """Every assertion of the test functions the Test* functions call, in order."""
    bodies = _function_bodies(source)
    out: list[Assertion] = []
    for top in re.findall(r"^func Test\w+\(t \*testing\.T\) \{\n(.*?)^\}", source, re.DOTALL | re.MULTILINE):
        (pattern,) = _SCRAPE.findall(top)
        for line in top.splitlines():
            if call := _CALL.match(line.strip()):
                out.extend(_read_function(call.group(1), bodies[call.group(1)], pattern))
    return out


def _function_bodies(source: str) -> dict[str, list[str]]:
    bodies: dict[str, list[str]] = {}
    current: list[str] | None = None
    for raw in source.splitlines():
        line = raw.strip()
        match = _FUNC.match(line)
        if match:
            current = bodies.setdefault(match.group(1), [])
        elif raw == "}":
            current = None
        elif current is not None:
            current.append(line)
    return bodies


def _read_function(name: str, lines: list[str], pattern: str) -> list[Assertion]:
    families: dict[str, str] = {}
    series: dict[str, tuple[str, int]] = {}
    labels: dict[str, tuple[str, int]] = {}
    maps: dict[str, dict[int, str]] = {}
    loop: tuple[str, str] | None = None  # (loop variable, family)
    loop_labels: str | None = None
    loop_field: tuple[str, str] | None = None  # (variable, label key)
    filling: str | None = None
    out: list[Assertion] = []
    for line in lines:
        if not line or line.startswith("//") or line == "}":
            filling = None if line == "}" else filling
            if line == "}":
                loop = None
            continue
        if filling is not None:
            entry = _MAP_ENTRY.match(line)
            assert entry, f"{name}: unexpected line in a map literal: {line!r}"
            maps[filling][int(entry.group(1))] = entry.group(2)
            continue
        if m := _MAP_START.match(line):
            filling = m.group(1)
            maps[filling] = {}
        elif (m := _ASSIGN_LABELS.match(line)) and (m.group(2) in series or (loop and m.group(2) == loop[0])):
            if loop and m.group(2) == loop[0]:
                loop_labels = m.group(1)
            else:
                labels[m.group(1)] = series[m.group(2)]
        elif (m := _ASSIGN_FAMILY.match(line)) and m.group(2) == "metrics":
            families[m.group(1)] = m.group(3)
        elif (m := _ASSIGN_FIELD.match(line)) and m.group(2) == loop_labels:
            loop_field = (m.group(1), m.group(3))
        elif (m := _ASSIGN_INDEX.match(line)) and m.group(2) in families:
            series[m.group(1)] = (families[m.group(2)], int(m.group(3)))
        elif m := _RANGE.match(line):
            loop = (m.group(1), families[m.group(2)])
        elif (m := _EXPECT_VALUE.match(line)) and m.group(1) in series:
            family, index = series[m.group(1)]
            out.append(Assertion(family, index, "value", "", m.group(2), m.group(3), pattern))
        elif (m := _EXPECT_TIME.match(line)) and m.group(1) in series:
            family, index = series[m.group(1)]
            out.append(Assertion(family, index, "timestamp", "", "", m.group(2), pattern))
        elif (m := _EXPECT_LABEL.match(line)) and m.group(1) in labels:
            family, index = labels[m.group(1)]
            out.append(Assertion(family, index, "label", m.group(2), m.group(3), m.group(4), pattern))
        elif (m := _EXPECT_LOOP.match(line)) and loop and loop_field and m.group(1) == loop_field[0]:
            out.append(Assertion(loop[1], None, "loop", loop_field[1], maps[m.group(2)], name, pattern))
        else:
            raise AssertionError(f"{name}: a statement this reader does not know: {line!r}")
    return out


def scrape_lines(exposition: str, pattern: str) -> dict[str, list[list[str]]]:
    """main_test.go's map: family -> [line, name, labels, value] per matching line."""
    regex = re.compile(pattern)
    found: dict[str, list[list[str]]] = {}
    for line in exposition.splitlines():
        match = regex.match(line)
        if match is not None:
            found.setdefault(match.group(1), []).append([line, *match.groups()])
    return found


def parse_labels(raw: str) -> dict[str, str]:
    """main_test.go's parseLabels: split at commas, then at '=', drop the quotes."""
    out: dict[str, str] = {}
    for part in raw.split(","):
        name_value = part.split("=")
        out[name_value[0]] = name_value[1][1:-1]
    return out


def check(assertions: list[Assertion], exposition: str) -> tuple[int, list[str]]:
    """(how many assertions ran, the failures), as main_test.go would evaluate them."""
    scraped = {p: scrape_lines(exposition, p) for p in {a.pattern for a in assertions}}
    ran, failures = 0, []
    for a in assertions:
        family = scraped[a.pattern].get(a.family, [])
        if a.index is None:
            assert isinstance(a.expected, dict)
            for i, line in enumerate(family):
                ran += 1
                got, want = parse_labels(line[0]).get(a.key, ""), a.expected.get(i, "")
                if got != want:
                    failures.append(f"{a.message} [{i}]: {a.key} is {got!r}, expected {want!r}")
            continue
        ran += 1
        if a.index >= len(family):
            failures.append(f"{a.message}: {a.family} has no series [{a.index}] (Go would panic)")
            continue
        line = family[a.index]
        if a.kind == "value" and line[3] != a.expected:
            failures.append(f"{a.message}: value {line[3]!r}, expected {a.expected!r}")
        elif a.kind == "label" and parse_labels(line[2]).get(a.key, "") != a.expected:
            failures.append(f"{a.message}: {parse_labels(line[2]).get(a.key, '')!r}, expected {a.expected!r}")
        elif a.kind == "timestamp" and not _timestamp_in_past(line[3]):
            failures.append(f"{a.message}: {line[3]!r} is not a valid timestamp in the past")
    return ran, failures


def _timestamp_in_past(text: str) -> bool:
    try:
        value = float(text)
    except ValueError:
        return False
    return 1 <= value <= time.time()
