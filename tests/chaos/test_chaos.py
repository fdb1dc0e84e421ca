"""Short, seeded runs of the chaos suite (the full one: `python -m tests.chaos.suite`).

Each checks the end state (series and HELP/TYPE headers equal to the offline render)
and the in-flight checks on scrapes taken during the disruptions (valid exposition,
no duplicates, no object stale past the bound, no 200 lacking a family while every
shard reported synced)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.chaos.suite import ACTIONS, Report, run


def assert_clean(report: Report) -> None:
    assert report.ok, report
    assert (report.missing, report.unexpected, report.duplicated, report.header_differences) == (0, 0, 0, 0)
    flight = report.in_flight
    assert flight.violations == 0, flight
    assert flight.scrapes_ok > 0 and flight.scrapes_covered > 0 and flight.store_reads > 0, flight


@pytest.mark.slow
def test_a_short_chaos_run_ends_with_zero_missing_duplicate_or_stale_series(tmp_path: Path) -> None:
    report = run(duration=25, seed=2, churn_rate=150, logs=tmp_path)
    assert sum(report.actions.values()) >= 5
    assert report.actions.get("redis_restore", 0) >= 1
    assert_clean(report)


@pytest.mark.slow
def test_a_short_chaos_run_over_a_redis_cluster_restarts_and_restores_single_nodes(tmp_path: Path) -> None:
    actions = ("kill", "redis_restart", "redis_restore", "drop_watches", "scale")
    report = run(duration=20, seed=4, churn_rate=120, logs=tmp_path, redis_cluster=True, actions=actions)
    assert set(actions) <= set(ACTIONS)
    assert report.actions.get("redis_restart", 0) + report.actions.get("redis_restore", 0) >= 1
    assert_clean(report)
