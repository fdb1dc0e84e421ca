"""Exponential backoff with jitter and reset, as client-go's reflector uses it.

`NewExponentialBackoffManager(800ms, 30s, 2min, 2.0, 1.0)` in `reflector.go`: each
wait is the current duration plus up to `jitter` times it at random; the duration
doubles up to the cap; after `reset_after` seconds without a wait it starts over.

Why hand-written rather than backoff or tenacity: those wrap one call in a retry loop
(decorators or context managers) and forget their state when it returns. The
reflector needs client-go's backoff manager instead: state that outlives each
attempt of a loop that runs for the process's life, jitter added the way client-go
adds it, and a reset after a quiet period. That is forty lines; no speed claim.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class BackoffSettings:
    initial: float = 0.8
    """Seconds of the first wait (client-go 800 ms)."""
    factor: float = 2.0
    cap: float = 30.0
    """Seconds; the duration stops growing here (jitter may add up to as much again)."""
    jitter: float = 1.0
    """A wait is `d + random() * jitter * d` (client-go `wait.Jitter`)."""
    reset_after: float = 120.0
    """Seconds without a wait after which the duration returns to `initial`."""


class Backoff:
    """The next delay to wait; not a timer, so callers choose how to wait."""

    def __init__(
        self,
        settings: BackoffSettings | None = None,
        *,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings or BackoffSettings()
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not security
        self._clock = clock
        self._duration = self.settings.initial
        self._last: float | None = None

    def next_delay(self) -> float:
        s = self.settings
        now = self._clock()
        if self._last is not None and now - self._last > s.reset_after:
            self._duration = s.initial
        self._last = now
        duration = self._duration
        self._duration = min(duration * s.factor, s.cap)
        return duration + self._rng.random() * s.jitter * duration

    def reset(self) -> None:
        self._duration = self.settings.initial
        self._last = None
