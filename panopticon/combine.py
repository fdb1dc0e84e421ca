"""Combining partial aggregates: the one rule every path uses, so they agree to the bit.

An aggregate family's stored lines are partials: each object's series, already reduced
to one line per group of `by` values (`panopticon.aggregate`). Whoever serves the family
(the aggregator at scrape time, the library's scrape, `panopticon render` offline)
feeds every partial line of it to a `Combiner` and serves its `result()`: one line per
group, in byte order of the line's name and labels.

Why the result does not depend on how the partials were split or ordered (shards,
buckets, slots, scrape parts, objects moving between shards):

- `count` and `sum` add with `ExactSum`: the exact sum of the finite values, rounded
  once at the end (Shewchuk's partials, as `math.fsum`), so float addition's order
  does not show. NaN and infinities follow IEEE rules, which are order-free too (any
  NaN, or +Inf with -Inf, gives NaN). Only a finite sum that overflows to infinity
  midway may depend on the order.
- `min` and `max` ignore NaN unless every value is NaN, as PromQL's `min`/`max` do.
- Partials travel as the text `format_number` writes (shortest round-trip `repr`), so
  a value read back is the value written.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from typing import Generic, TypeVar

from panopticon.expr.values import format_number

K = TypeVar("K", str, bytes)


class ExactSum:
    """The sum of floats, exact until `value()` rounds it once."""

    __slots__ = ("partials", "special", "whole")

    def __init__(self) -> None:
        self.partials: list[float] = []
        self.special: float | None = None
        """The sum of the non-finite values added (NaN, ±Inf), None while there is none."""
        self.whole = 0
        """Integers added as such (`add_int`: counts, restarts, replicas), summed exactly
        by Python's ints, which costs a fraction of `add`."""

    def add_int(self, n: int) -> None:
        self.whole += n

    def add(self, x: float) -> None:
        if x - x != 0.0:  # NaN or an infinity
            self.special = x if self.special is None else self.special + x
            return
        partials = self.partials
        i = 0
        for partial in partials:
            y = partial
            if abs(x) < abs(y):
                x, y = y, x
            hi = x + y
            if hi - hi != 0.0:  # overflow: no finite partial can hold it
                self.special = hi if self.special is None else self.special + hi
                del partials[i:]
                return
            lo = y - (hi - x)
            if lo:
                partials[i] = lo
                i += 1
            x = hi
        partials[i:] = [x]

    def value(self) -> float:
        if self.special is not None:
            return self.special
        total = self
        if self.whole:
            # The integer part joins the partials exactly: as floats that each take
            # the integer's leading bits, until nothing is left.
            total = ExactSum()
            total.partials = list(self.partials)
            rest = self.whole
            while rest:
                try:
                    head = float(rest)
                except OverflowError:
                    return math.copysign(math.inf, rest)
                total.add(head)
                rest -= int(head)
            if total.special is not None:
                return total.special
        try:
            return math.fsum(total.partials)
        except OverflowError:
            return math.copysign(math.inf, sum(total.partials))


class Groups(Generic[K]):
    """Values combined per series key (a line's name and labels) by one function."""

    __slots__ = ("best", "function", "sums")

    def __init__(self, function: str) -> None:
        self.function = function
        self.sums: dict[K, ExactSum] = {}
        self.best: dict[K, float] = {}

    def add(self, key: K, value: float) -> None:
        if self.function in ("count", "sum"):
            total = self.sums.get(key)
            if total is None:
                total = self.sums[key] = ExactSum()
            total.add(value)
            return
        best = self.best.get(key)
        if best is None:
            self.best[key] = value
        elif math.isnan(value):
            return  # NaN loses to any number, and is kept only while every value is NaN
        elif math.isnan(best) or (value < best if self.function == "min" else value > best):
            self.best[key] = value

    def add_ones(self, key: K, n: int) -> None:
        """`add(key, 1)`, `n` times."""
        if self.function in ("count", "sum"):
            total = self.sums.get(key)
            if total is None:
                total = self.sums[key] = ExactSum()
            total.add_int(n)
        else:
            self.add(key, 1.0)

    def add_texts(self, key: K, texts: list[bytes]) -> int:
        """`add` of each value written in `texts` (sample text); returns how many did
        not parse. Integers (the usual values) are summed in one call."""
        bad = 0
        if self.function in ("count", "sum"):
            total = self.sums.get(key)
            if total is None:
                total = self.sums[key] = ExactSum()
            if b"".join(texts).isdigit():
                total.add_int(sum(map(int, texts)))
                return 0
            for text in texts:
                try:
                    total.add_int(int(text))
                except ValueError:
                    try:
                        total.add(float(text))
                    except ValueError:
                        bad += 1
            return bad
        values: list[float] = []
        for text in texts:
            try:
                values.append(float(text))
            except ValueError:
                bad += 1
        numbers = [v for v in values if not math.isnan(v)]
        if numbers:
            self.add(key, min(numbers) if self.function == "min" else max(numbers))
        elif values:
            self.add(key, values[0])
        return bad

    def __len__(self) -> int:
        return len(self.sums) + len(self.best)

    def items(self) -> list[tuple[K, float]]:
        """Each group's figure, in key order."""
        if self.sums:
            return sorted((key, total.value()) for key, total in self.sums.items())
        return sorted(self.best.items())


class Combiner:
    """An aggregate family's partial lines, as served: fed in chunks of whole lines."""

    __slots__ = ("groups", "malformed")

    def __init__(self, function: str) -> None:
        self.groups: Groups[bytes] = Groups(function)
        self.malformed = 0
        """Lines that were not `<name>{<labels>} <number>` (none a shard writes)."""

    def feed(self, chunk: bytes) -> None:
        lines = chunk.count(b"\n")
        if chunk.count(b" 1\n") == lines and chunk.endswith(b"\n"):
            # Every value is 1 (a count's partial when each object falls in one group,
            # the usual case): the keys are counted in C. (" 1\n" can only end a line:
            # a label value holds newlines escaped.)
            keys = Counter(chunk.replace(b" 1\n", b"\n").split(b"\n"))
            keys.pop(b"", None)
            ones = self.groups.add_ones
            for key, n in keys.items():
                ones(key, n)
            return
        # The chunk's values grouped by key first (one dict operation per line), then
        # each group's values combined at once: per line, the least Python work.
        pending: dict[bytes, list[bytes]] = {}
        for line in chunk.split(b"\n"):
            key, _, text = line.rpartition(b" ")
            texts = pending.get(key)
            if texts is None:
                pending[key] = [text]
            else:
                texts.append(text)
        junk = pending.pop(b"", None)  # empty lines, and lines without a space
        if junk:
            self.malformed += sum(1 for text in junk if text)
        add = self.groups.add_texts
        for key, texts in pending.items():
            self.malformed += add(key, texts)

    def result(self) -> bytes:
        """One line per group, in key order ("" when nothing was fed)."""
        items = self.groups.items()
        return b"".join(key + b" " + format_number(value).encode() + b"\n" for key, value in items)


def combine(function: str, chunks: Iterable[bytes]) -> bytes:
    """The served lines of an aggregate family whose partial lines are `chunks`."""
    combiner = Combiner(function)
    for chunk in chunks:
        combiner.feed(chunk)
    return combiner.result()
