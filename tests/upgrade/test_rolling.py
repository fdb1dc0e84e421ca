"""A short rolling upgrade from a previous version (the full run: `python -m tests.upgrade.rolling`).

The previous version is 65e752c, the last landing before the layout move: it runs on
this tree's dependencies, so it needs no network, only the repository's history (CI
runs on a full `git clone`). Without git or that revision the run raises `SetupError`
and this test fails saying so; it is never skipped. d94eb1e (consistent-hash rings
before contiguous ranges) needs `hashring`, which this tree dropped: it is run by hand
(docs/operations.md, Upgrades)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.upgrade.rolling import run


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_a_rolling_upgrade_from_the_release_before_the_layout_move_loses_no_series(tmp_path: Path) -> None:
    report = run("65e752c", shards=2, seed=3, churn_rate=30, scale=1, before=2, after=4, logs=tmp_path)
    assert [h.what for h in report.handovers] == ["shard 1", "shard 0", "aggregator"]
    assert report.series_before > 0 and report.series > 0
    assert (report.missing, report.unexpected, report.duplicated) == (0, 0, 0), report
    assert (report.header_differences, report.served_differences) == (0, 0), report
    flight, missing = report.in_flight, report.missing_in_flight
    assert flight.violations == 0, flight
    assert flight.scrapes_ok > 0 and flight.store_reads > 0, flight
    assert missing.scrapes_judged > 0 and missing.violations == 0, missing
    assert report.ok
