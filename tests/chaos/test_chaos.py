"""A short, seeded run of the chaos suite (the full one: `python -m tests.chaos.suite`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.chaos.suite import run


@pytest.mark.slow
def test_a_short_chaos_run_ends_with_zero_missing_duplicate_or_stale_series(tmp_path: Path) -> None:
    report = run(duration=25, seed=2, churn_rate=150, logs=tmp_path)
    assert sum(report.actions.values()) >= 5
    assert report.ok, report
    assert (report.missing, report.unexpected, report.duplicated) == (0, 0, 0)
