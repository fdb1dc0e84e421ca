"""The in-flight checks catch what they are there to catch (no processes: their judging parts)."""

from __future__ import annotations

from tests.chaos.inflight import (
    STALE_BOUND,
    InFlight,
    Scrape,
    StaleObjects,
    check_exposition,
    judge_families,
    why_not_synced,
)

GOOD = (
    '# HELP a_total A.\n# TYPE a_total counter\na_total{x="1"} 1\na_total{x="2"} 2\n'
    "# HELP b B.\n# TYPE b gauge\nb 3\n"
)


def test_a_valid_scrape_counts_nothing_and_lists_its_families() -> None:
    counts = InFlight()
    assert check_exposition(GOOD, counts) == {"a_total", "b"}
    assert counts.violations == 0


def test_an_empty_200_is_a_valid_exposition_of_no_family() -> None:
    counts = InFlight()
    assert check_exposition("", counts) == set()
    assert counts.violations == 0
    check_exposition("\n", counts)
    assert counts.invalid == 1


def test_an_invalid_line_a_duplicate_series_and_a_repeated_family_are_each_counted() -> None:
    counts = InFlight()
    check_exposition(GOOD + "c{x=1} 2\n", counts)
    assert counts.invalid == 1
    counts = InFlight()
    check_exposition(GOOD.replace('a_total{x="2"} 2', 'a_total{x="1"} 5'), counts)
    assert counts.duplicate_series == 1
    counts = InFlight()
    check_exposition(GOOD + "# HELP b B.\n# TYPE b gauge\nb 4\n", counts)
    assert counts.duplicate_headers == 1


def test_a_recreated_objects_series_served_twice_is_a_violation_counted_apart_too() -> None:
    counts = InFlight()
    body = GOOD.replace('a_total{x="2"} 2', 'a_total{x="1"} 5')
    check_exposition(body, counts, recreated=['x="1"'])
    assert (counts.duplicate_series, counts.recreated_overlap, counts.violations) == (1, 1, 1)
    counts = InFlight()
    check_exposition(body, counts, recreated=['x="9"'])
    assert (counts.duplicate_series, counts.recreated_overlap, counts.violations) == (1, 0, 1)


def test_a_covered_200_lacking_a_family_the_truth_had_throughout_is_counted() -> None:
    polls = [(t, {"a_total", "b"}) for t in range(0, 20)]
    scrapes = [
        Scrape(10.0, 10.5, {"a_total"}, covered=True),  # lacks b: counted
        Scrape(11.0, 11.5, {"a_total"}, covered=False),  # a shard was not synced: not judged
        Scrape(12.0, 12.5, {"a_total", "b"}, covered=True),
    ]
    counts = InFlight()
    judge_families(polls, scrapes, counts)
    assert counts.missing_families == 1


def test_a_family_the_truth_lost_around_the_scrape_is_not_due() -> None:
    polls = [(t, {"a_total", "b"} if t != 11 else {"a_total"}) for t in range(0, 20)]
    counts = InFlight()
    judge_families(polls, [Scrape(10.0, 10.5, {"a_total"}, covered=True)], counts)
    assert counts.missing_families == 0


def test_an_object_stored_longer_than_the_bound_after_it_was_deleted_is_stale() -> None:
    stale, counts = StaleObjects(), InFlight()
    stale.polled({"u1", "u2"}, 0.0)
    stale.check({"u1", "u2"}, 0.5, counts)
    stale.polled({"u2"}, 1.0)  # u1 deleted
    stale.check({"u1", "u2"}, STALE_BOUND - 1, counts)
    assert counts.stale_objects == 0
    stale.check({"u1", "u2"}, STALE_BOUND + 1, counts)
    assert counts.stale_objects == 1
    assert counts.oldest_stale > STALE_BOUND


def test_a_restore_restarts_the_clock_of_objects_it_brought_back() -> None:
    stale, counts = StaleObjects(), InFlight()
    stale.polled({"u1"}, 0.0)
    stale.polled(set(), 1.0)
    stale.restored_at = STALE_BOUND
    stale.check({"u1"}, STALE_BOUND + 2, counts)
    assert counts.stale_objects == 0


def test_scrapes_are_judged_only_while_every_shard_of_the_newest_ring_beats_synced() -> None:
    now = 1000.0
    beats = {
        0: {"time": now, "synced": True, "ring": [2, 5]},
        1: {"time": now - 0.5, "synced": True, "ring": [2, 5]},
        3: {"time": now - 60, "synced": True, "ring": [4, 4]},  # killed, then scaled away
    }
    assert why_not_synced(beats, now) == ""
    assert why_not_synced({**beats, 1: {**beats[1], "synced": False}}, now) == "a shard relisting"
    assert why_not_synced({**beats, 1: {**beats[1], "time": now - 5}}, now) == "a heartbeat missing or stale"
    assert why_not_synced({**beats, 1: {**beats[1], "ring": [2, 4]}}, now) == "a shard on another ring"
    assert why_not_synced({}, now) == "no fresh heartbeat"
