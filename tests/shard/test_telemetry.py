"""The shard's per-event counters: plain ints exposed as Prometheus counters."""

from __future__ import annotations

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from shard.telemetry import ShardMetrics


def samples(metrics: ShardMetrics, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    text = generate_latest(metrics.registry).decode()
    return {
        tuple(sorted(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name
    }


def test_a_resolved_label_set_shows_zero_then_every_count() -> None:
    metrics = ShardMetrics()
    assert samples(metrics, "panopticon_shard_events_total") == {}
    added = metrics.events.key("v1/Pod", "ADDED")
    deleted = metrics.events.key("v1/Pod", "DELETED")
    assert samples(metrics, "panopticon_shard_events_total") == {
        (("target", "v1/Pod"), ("type", "ADDED")): 0.0,
        (("target", "v1/Pod"), ("type", "DELETED")): 0.0,
    }
    for _ in range(3):
        metrics.events.counts[added] += 1
    metrics.events.counts[deleted] += 1
    # Resolving a key again (a restarted target) keeps what was counted.
    assert metrics.events.key("v1/Pod", "ADDED") == added
    assert samples(metrics, "panopticon_shard_events_total") == {
        (("target", "v1/Pod"), ("type", "ADDED")): 3.0,
        (("target", "v1/Pod"), ("type", "DELETED")): 1.0,
    }
    assert metrics.events.value("v1/Pod", "ADDED") == 3


def test_a_label_set_of_the_wrong_size_is_refused() -> None:
    metrics = ShardMetrics()
    with pytest.raises(ValueError, match="panopticon_shard_renders takes labels"):
        metrics.renders.key("v1/Pod", "ADDED")
