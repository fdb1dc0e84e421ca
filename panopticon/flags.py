"""Command-line flags: every value is checked when it is parsed, in this one module.

An ordinary mistake on the command line must cost the operator one line naming the
flag and exit status 2, never a traceback, and never a silently different behaviour:
`bind()` takes a port modulo 65536, so `--port 70000` used to listen on 4464, and a
zero-sized thread pool or a negative interval failed far from the flag that caused it.

- The argparse types below check one flag's value (`type=flags.port`, ...); argparse
  names the flag in its message.
- `Parser` prints argparse's errors as one line (argparse prints the usage first,
  which hides the one line that matters in a pod's log).
- Checks across flags (`distinct_ports`, `--slots` against `--buckets`) and problems
  found when the value is used (a port already in use: `listen_error`) raise
  `UsageError`, which the CLI prints as one line with exit status 2.
"""

from __future__ import annotations

import argparse
import logging
import math
import socket
import ssl
from collections.abc import Callable, Mapping
from typing import NoReturn

from panopticon.errors import PanopticonError

MAX_PORT = 65535
MAX_BUCKETS = 1 << 16
"""The bucket space's limit (`panopticon.sharding.buckets.BucketSpace`)."""
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
PREFIX_FORBIDDEN = "{}"
"""Characters a key prefix may not hold: braces would change the keys' Redis Cluster
hash tag. Whitespace is refused too."""


class UsageError(PanopticonError):
    """A flag's value cannot be used; the message names the flag."""


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line (`PROG: error: MESSAGE`), exit 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def port(text: str) -> int:
    """A TCP port, 0-65535 (0: any free port)."""
    value = _integer(text)
    if not 0 <= value <= MAX_PORT:
        raise argparse.ArgumentTypeError(f"{text} is not a port number (0-{MAX_PORT})")
    return value


def integer(minimum: int | None = None) -> Callable[[str], int]:
    """An integer, at least `minimum` when given."""

    def parse(text: str) -> int:
        value = _integer(text)
        if minimum is not None and value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, not {text}")
        return value

    parse.__name__ = "integer"
    return parse


def number(*, minimum: float = 0.0, allow_minimum: bool = True) -> Callable[[str], float]:
    """A finite number (seconds, a rate...) at least `minimum`, or above it when
    `allow_minimum` is false (an interval of 0 would spin)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"must be a finite number, not {text}")
        if value < minimum or (value == minimum and not allow_minimum):
            bound = "at least" if allow_minimum else "more than"
            raise argparse.ArgumentTypeError(f"must be {bound} {minimum:g}, not {text}")
        return value

    parse.__name__ = "number"
    return parse


seconds = number(minimum=0.0, allow_minimum=False)
"""A duration that must be positive (intervals, timeouts)."""
non_negative = number(minimum=0.0)
"""A duration or rate that may be zero (a grace period, "no churn")."""


def power_of_two(text: str) -> int:
    """A power of two from 1 to 65536 (buckets, slots)."""
    value = _integer(text)
    if value < 1 or value & (value - 1) or value > MAX_BUCKETS:
        raise argparse.ArgumentTypeError(f"must be a power of two from 1 to {MAX_BUCKETS}, not {text}")
    return value


def log_level(text: str) -> str:
    """A Python logging level name, any case."""
    name = text.upper()
    if name not in LOG_LEVELS or not isinstance(logging.getLevelName(name), int):
        raise argparse.ArgumentTypeError(f"{text!r} is not one of {', '.join(LOG_LEVELS)}")
    return name


def key_prefix(text: str) -> str:
    """A Redis key prefix: not empty, no braces, no whitespace."""
    if not text or any(c in PREFIX_FORBIDDEN or c.isspace() for c in text):
        raise argparse.ArgumentTypeError(f"{text!r}: must be non-empty, without braces or whitespace")
    return text


def ca_bundle(path: str) -> str:
    """A readable file of PEM CA certificates (loaded once here to check it)."""
    try:
        ssl.create_default_context(cafile=path)
    except FileNotFoundError:
        raise argparse.ArgumentTypeError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise argparse.ArgumentTypeError(f"{path}: is a directory, not a file") from None
    except (OSError, ssl.SSLError, ValueError) as e:
        raise argparse.ArgumentTypeError(f"{path}: not a readable PEM CA bundle ({e})") from None
    return path


def _integer(text: str) -> int:
    try:
        return int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None


def distinct_ports(ports: Mapping[str, int]) -> None:
    """Raise when two flags ask one process for the same (non-zero) port."""
    seen: dict[int, str] = {}
    for flag, value in ports.items():
        if value and value in seen:
            raise UsageError(f"{flag} {value}: the same port as {seen[value]}; give each its own")
        seen.setdefault(value, flag)


def listen_error(flag: str, host: str, port: int, error: OSError) -> UsageError:
    """A failed bind, as one line naming the flag (`--port 8080: cannot listen ...`),
    or `--host` when the address does not resolve."""
    reason = error.strerror or str(error)
    if isinstance(error, socket.gaierror):
        return UsageError(f"--host {host}: cannot listen there: {reason}")
    if "address already in use" in str(error).lower():
        reason = "address already in use"
    where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return UsageError(f"{flag} {port}: cannot listen on {where}: {reason}")
