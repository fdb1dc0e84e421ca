"""Kubernetes resource quantities (`500m`, `1.5`, `128Mi`, `1e3`), parsed exactly.

A quantity is a signed decimal number with an optional suffix, as Kubernetes'
`resource.ParseQuantity` reads it:

- binary SI: `Ki Mi Gi Ti Pi Ei` (powers of 1024);
- decimal SI: `n u m` (10^-9, 10^-6, 10^-3), none, `k M G T P E`;
- or a decimal exponent: `e3`, `E-2` (`1E` alone is one exa, not an exponent).

Values are `fractions.Fraction`, so sums never pick up binary rounding error; a
JSON number is read through its shortest decimal text (`0.1` is one tenth, as
Kubernetes reads the JSON token, not the nearest binary double).

Inputs are untrusted, so the parser is bounded: text over `MAX_TEXT` characters
and exponents beyond `MAX_EXPONENT` are rejected before any big integer is built.
Parsed strings are cached (bounded LRU): a cluster repeats the same few strings
(`500m`, `1Gi`) across thousands of objects.

Why hand-written rather than `kubernetes.utils.parse_quantity`: the render layer may
not import the `kubernetes` package (an I/O library; import-linter forbids it), and
that function reads differently from the apiserver: a JSON `0.1` becomes the binary
double's 55-digit expansion, and `12e-3m` (an exponent and a suffix, which
`resource.ParseQuantity` refuses) is accepted. Speed is not the reason: on distinct
strings this parser is slower (0.4-0.7x the library's speed, exact Fractions and
bounds checks); on the repeated strings of a real cluster the cache makes it 9-33x
faster (`benchmarks/handwritten.py`, CPython 3.11.7, loaded 2-core machine).
"""

from __future__ import annotations

import functools
import math
import re
from fractions import Fraction
from typing import Final

from panopticon.errors import QuantityError

MAX_TEXT: Final = 64
"""Longest quantity text accepted, in characters: real ones are under 20."""

MAX_EXPONENT: Final = 40
"""Largest decimal exponent accepted (either sign): exa is 10^18, nano 10^-9; this
leaves room while keeping every value (and float conversion) far from overflow."""

CACHE_SIZE: Final = 4096
"""Distinct strings kept parsed; a cluster uses a few hundred at most."""

_MAGNITUDE_LIMIT: Final = 10**MAX_TEXT
"""JSON integers at or above this are rejected, like over-long text."""

# Kubernetes' grammar: <sign>? <digits>[.<digits>] then a suffix or an exponent.
# `[0-9]`, not `\d`: Unicode digits are not part of the grammar.
_QUANTITY: Final = re.compile(
    r"([+-]?)([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:([KMGTPE]i|[numkMGTPE])|[eE]([+-]?[0-9]+))?"
)

_SUFFIX: Final[dict[str, Fraction]] = {
    "n": Fraction(1, 10**9),
    "u": Fraction(1, 10**6),
    "m": Fraction(1, 10**3),
    "k": Fraction(10**3),
    "M": Fraction(10**6),
    "G": Fraction(10**9),
    "T": Fraction(10**12),
    "P": Fraction(10**15),
    "E": Fraction(10**18),
    "Ki": Fraction(2**10),
    "Mi": Fraction(2**20),
    "Gi": Fraction(2**30),
    "Ti": Fraction(2**40),
    "Pi": Fraction(2**50),
    "Ei": Fraction(2**60),
}


def parse_quantity(value: object) -> Fraction:
    """The exact value of a quantity given as a string or a JSON number.

    Raises `QuantityError`, naming the offending text, for anything else: other
    types, booleans, NaN and infinities, malformed or over-long text, exponents
    beyond `MAX_EXPONENT`, integers of more than `MAX_TEXT` digits.
    """
    if isinstance(value, str):
        return _parse_text(value)
    if isinstance(value, bool):
        raise QuantityError(f"not a quantity: {value!r} (a boolean)")
    if isinstance(value, int):
        if not -_MAGNITUDE_LIMIT < value < _MAGNITUDE_LIMIT:
            # Not echoed: str() refuses integers of more than a few thousand digits.
            raise QuantityError(f"quantity integer of more than {MAX_TEXT} digits")
        return Fraction(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise QuantityError(f"not a quantity: {value!r}")
        # repr is the shortest text that reads back as this float: the JSON token.
        return _parse_text(repr(value))
    raise QuantityError(f"not a quantity: expected a string or a number, got {type(value).__name__}")


def cpu_cores(value: object) -> float:
    """A CPU quantity in cores (`500m` is 0.5). Raises `QuantityError` like `parse_quantity`."""
    return float(parse_quantity(value))


def to_bytes(value: object) -> float:
    """A memory or storage quantity in bytes (`1Ki` is 1024.0).

    Integral values below 2**53 convert exactly; others round to the nearest double.
    Raises `QuantityError` like `parse_quantity`.
    """
    return float(parse_quantity(value))


def milli_value(value: object) -> int:
    """The quantity in thousandths, rounded away from zero, as Kubernetes' `MilliValue`.

    Resource totals sum these integers: exact, and far cheaper than fractions. A
    sub-milli remainder (`1n` of CPU) rounds up to one milli, as Kubernetes does
    when it multiplies a quantity. Raises `QuantityError` like `parse_quantity`.
    """
    if isinstance(value, str):
        return milli_text(value)
    if type(value) is int and -_MAGNITUDE_LIMIT < value < _MAGNITUDE_LIMIT:  # not bool: a subclass
        return value * 1000
    return _to_milli(parse_quantity(value))


@functools.lru_cache(maxsize=CACHE_SIZE)
def milli_text(text: str) -> int:
    """`milli_value` of a string, cached; for hot loops that already know they hold a string."""
    return _to_milli(_parse_text(text))


def _to_milli(q: Fraction) -> int:
    whole, rest = divmod(abs(q.numerator) * 1000, q.denominator)
    if rest:
        whole += 1
    return -whole if q.numerator < 0 else whole


@functools.lru_cache(maxsize=CACHE_SIZE)
def _parse_text(text: str) -> Fraction:
    if len(text) > MAX_TEXT:
        raise QuantityError(f"quantity {_excerpt(text)} is longer than {MAX_TEXT} characters")
    # Kubernetes trims surrounding space when it decodes a quantity from JSON.
    match = _QUANTITY.fullmatch(text.strip())
    if match is None:
        raise QuantityError(f"invalid quantity {text!r}")
    sign, number, suffix, exponent = match.groups()
    whole, _, fraction = number.partition(".")
    value = Fraction(int(whole + fraction or "0"), 10 ** len(fraction))
    if suffix is not None:
        value *= _SUFFIX[suffix]
    elif exponent is not None:
        power = int(exponent)
        if abs(power) > MAX_EXPONENT:
            raise QuantityError(f"quantity {text!r} has an exponent beyond ±{MAX_EXPONENT}")
        value *= Fraction(10) ** power
    return -value if sign == "-" else value


def _excerpt(text: str) -> str:
    """The text for an error message, cut short: hostile input can be megabytes."""
    return repr(text if len(text) <= MAX_TEXT else text[:MAX_TEXT] + "…")
