"""Backoff as client-go's reflector uses it: 800 ms, x2, 30 s cap, jitter 1.0, reset after 2 min."""

from __future__ import annotations

import random

from panopticon.kube.backoff import Backoff


def test_delays_double_with_jitter_up_to_the_cap() -> None:
    now = [0.0]
    backoff = Backoff(rng=random.Random(1), clock=lambda: now[0])
    bases = [0.8, 1.6, 3.2, 6.4, 12.8, 25.6, 30.0, 30.0]
    for base in bases:
        delay = backoff.next_delay()
        assert base <= delay <= 2 * base
        now[0] += 1.0


def test_two_minutes_without_a_wait_start_over() -> None:
    now = [0.0]
    backoff = Backoff(rng=random.Random(2), clock=lambda: now[0])
    for _ in range(5):
        backoff.next_delay()
    now[0] += 119.0
    assert backoff.next_delay() >= 12.8  # still backing off
    now[0] += 121.0
    assert backoff.next_delay() <= 1.6  # reset to the initial 800 ms (plus jitter)
