"""Combining partial aggregates: the one rule every path uses, so they agree to the bit.

An aggregate family's stored lines are partials: each object's series, already reduced
to one line per group of `by` values (`panopticon.render.aggregate`). Whoever serves the family
(the aggregator at scrape time, the library's scrape, `panopticon render` offline)
feeds every partial line of it to a `Combiner` and serves its `result()`: one line per
group, in byte order of the line's name and labels.

Why the result does not depend on how the partials were split or ordered (shards,
buckets, slots, scrape parts, objects moving between shards):

- `count` and `sum` add with `ExactSum`: the exact sum of the finite values (as a
  Python integer), rounded once at the end, so float addition's order does not show.
  NaN and infinities follow IEEE rules, which are order-free too (any NaN, or +Inf
  with -Inf, gives NaN); a finite sum beyond the float range is ±Inf.
- `min` and `max` ignore NaN unless every value is NaN, as PromQL's `min`/`max` do.
- Partials travel as the text `format_number` writes (shortest round-trip `repr`), so
  a value read back is the value written. A shard's partial of a whole bucket
  (`Groups.partial_lines`) is already a sum of many values, which a float need not
  hold: a finite `count`/`sum` that is not an integer travels exact, as `<m>p<e>`
  (the integer m times 2**e, `exact_text`), read back by `add_text`.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from typing import Generic, TypeVar

from panopticon.text import format_number

K = TypeVar("K", str, bytes)
MAX_PENDING = 50_000
"""Distinct partial lines a `Combiner` holds before combining them (a few MB)."""


SCALE_BITS = 1074
"""Every finite float is an integer multiple of 2**-1074 (the smallest subnormal)."""
_FRACTION = (1 << SCALE_BITS) - 1
MAX_EXACT_DIGITS = 800
"""Digits of an exact partial's mantissa read back (a sum of floats needs ~650: 2**2098
spans the range of a float in units of 2**-1074; beyond this it is malformed)."""


class ExactSum:
    """The sum of floats, exact until `value()` rounds it once.

    Finite values are added as integers in units of 2**-1074 (Python's ints do not
    overflow), so the sum is the exact one whatever the order, and `value()` rounds it
    correctly once (int true division is correctly rounded)."""

    __slots__ = ("scaled", "special")

    def __init__(self) -> None:
        self.scaled = 0
        self.special: float | None = None
        """The sum of the non-finite values added (NaN, ±Inf), None while there is none."""

    def add(self, x: float) -> None:
        if x - x != 0.0:  # NaN or an infinity
            self.special = x if self.special is None else self.special + x
            return
        numerator, denominator = x.as_integer_ratio()  # the denominator is a power of two
        self.scaled += numerator << (SCALE_BITS + 1 - denominator.bit_length())

    def add_int(self, n: int) -> None:
        self.scaled += n << SCALE_BITS

    def add_scaled(self, n: int) -> None:
        """Add n * 2**-1074."""
        self.scaled += n

    def value(self) -> float:
        if self.special is not None:
            return self.special
        try:
            return self.scaled / (1 << SCALE_BITS)
        except OverflowError:
            return math.inf if self.scaled > 0 else -math.inf  # copysign would convert the int


def exact_text(total: ExactSum) -> str:
    """`total` as partial text, without rounding: an integer as itself, NaN and the
    infinities as `format_number` writes them, any other value as `<m>p<e>` (m * 2**e,
    m odd), which no float's text contains."""
    if total.special is not None:
        return format_number(total.special)
    return scaled_text(total.scaled)


def scaled_text(scaled: int) -> str:
    """`scaled` * 2**-1074 as exact partial text (`exact_text` of a finite sum)."""
    if not scaled & _FRACTION:
        return str(scaled >> SCALE_BITS)
    low = (scaled & -scaled).bit_length() - 1  # trailing zero bits
    return f"{scaled >> low}p{low - SCALE_BITS}"


def scaled_value(text: bytes) -> int | float | None:
    """A partial's value text in units of 2**-1074 (an int) when finite, the float
    itself when NaN or infinite, None when it is not a number."""
    if text.isdigit() or (text[:1] == b"-" and text[1:].isdigit()):
        return int(text) << SCALE_BITS
    if b"p" in text:
        return _exact_scaled(text)
    try:
        x = float(text)
    except ValueError:
        return None
    if x - x != 0.0:  # NaN or an infinity
        return x
    numerator, denominator = x.as_integer_ratio()
    return numerator << (SCALE_BITS + 1 - denominator.bit_length())


def _exact_scaled(text: bytes) -> int | None:
    """The value of `<m>p<e>` text in units of 2**-1074, None if it is not such text."""
    mantissa, _, exponent = text.partition(b"p")
    digits = mantissa[1:] if mantissa[:1] == b"-" else mantissa
    if not digits.isdigit() or len(digits) > MAX_EXACT_DIGITS:
        return None
    if not (exponent[1:] if exponent[:1] == b"-" else exponent).isdigit():
        return None
    shift = int(exponent) + SCALE_BITS
    if not 0 <= shift < SCALE_BITS:
        return None
    return int(mantissa) << shift


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

    def add_text(self, key: K, text: bytes, n: int = 1) -> bool:
        """`add` of the value written `text` (sample text), `n` times; False if it does
        not parse. Integers (the usual values) are summed as ints, exactly."""
        total = None
        if self.function in ("count", "sum"):
            total = self.sums.get(key)
            if total is None:
                total = self.sums[key] = ExactSum()
            if text.isdigit() or (text[:1] == b"-" and text[1:].isdigit()):
                total.add_int(int(text) * n)
                return True
            if b"p" in text:
                scaled = _exact_scaled(text)
                if scaled is None:
                    return False
                total.add_scaled(scaled * n)
                return True
        try:
            value = float(text)
        except ValueError:
            return False
        if total is None:
            self.add(key, value)
            return True
        for _ in range(n):
            total.add(value)
        return True

    def __len__(self) -> int:
        return len(self.sums) + len(self.best)

    def partial_lines(self) -> list[tuple[K, str]]:
        """Each group's figure as partial text, in key order, exact (`exact_text`): what
        a shard stores for a bucket, for `Combiner` to add to the other buckets'."""
        if self.sums:
            return sorted((key, exact_text(total)) for key, total in self.sums.items())
        return sorted((key, format_number(best)) for key, best in self.best.items())

    def items(self) -> list[tuple[K, float]]:
        """Each group's figure, in key order."""
        if self.sums:
            return sorted((key, total.value()) for key, total in self.sums.items())
        return sorted(self.best.items())


class Combiner:
    """An aggregate family's partial lines, as served: fed in chunks of whole lines.

    Identical lines are counted first, in C, across chunks: partials repeat (a count's
    `1`, small integers such as restarts), so the Python work of a family is per
    distinct line, not per object. Memory is bounded by `MAX_PENDING` distinct lines,
    after which they are combined and forgotten."""

    __slots__ = ("groups", "malformed", "pending")

    def __init__(self, function: str) -> None:
        self.groups: Groups[bytes] = Groups(function)
        self.malformed = 0
        """Lines that were not `<name>{<labels>} <number>` (none a shard writes)."""
        self.pending: Counter[bytes] = Counter()

    def feed(self, chunk: bytes) -> None:
        self.pending.update(chunk.split(b"\n"))
        if len(self.pending) > MAX_PENDING:
            self._drain()

    def _drain(self) -> None:
        lines, self.pending = self.pending, Counter()
        lines.pop(b"", None)
        add = self.groups.add_text
        for line, n in lines.items():
            key, _, text = line.rpartition(b" ")
            if not key or not add(key, text, n):
                self.malformed += n

    def partial(self) -> bytes:
        """One exact partial line per group, in key order ("" when nothing was fed): what
        was fed, as one partial that combines with others to the same `result()`."""
        self._drain()
        items = self.groups.partial_lines()
        return b"".join(key + b" " + text.encode() + b"\n" for key, text in items)

    def result(self) -> bytes:
        """One line per group, in key order ("" when nothing was fed)."""
        self._drain()
        items = self.groups.items()
        return b"".join(key + b" " + format_number(value).encode() + b"\n" for key, value in items)


def combine(function: str, chunks: Iterable[bytes]) -> bytes:
    """The served lines of an aggregate family whose partial lines are `chunks`."""
    combiner = Combiner(function)
    for chunk in chunks:
        combiner.feed(chunk)
    return combiner.result()
