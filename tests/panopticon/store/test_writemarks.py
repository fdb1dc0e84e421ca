"""Write counters: what tells a store that forgot acknowledged writes from one that did not."""

from __future__ import annotations

from panopticon.store.writemarks import WINDOW, WriteMarks, writer_of


def test_answers_of_concurrent_writes_arriving_out_of_order_are_not_a_loss() -> None:
    marks = WriteMarks()
    for number in (1, 3, 2, 5, 4):
        marks.acknowledged("0", 7, number)
    assert marks.take_lost() == set()


def test_an_answer_given_before_means_the_counter_went_back() -> None:
    marks = WriteMarks()
    for number in (1, 2, 3):
        marks.acknowledged("0", 7, number)
    marks.acknowledged("0", 7, 2)  # restored to 1, then one write: 2 again
    assert marks.take_lost() == {7}
    assert marks.take_lost() == set()  # reported once
    marks.acknowledged("0", 7, 3)  # the new baseline
    marks.acknowledged("0", 7, 4)
    assert marks.take_lost() == set()


def test_an_answer_far_below_the_highest_is_a_loss_even_if_never_seen() -> None:
    marks = WriteMarks()
    marks.acknowledged("1", 0, 5000)
    marks.acknowledged("1", 0, 5000 - WINDOW)
    assert marks.take_lost() == {0}


def test_a_counter_read_below_what_was_acknowledged_before_the_read_is_a_loss() -> None:
    marks = WriteMarks()
    marks.acknowledged("0", 1, 10)
    marks.acknowledged("0", 2, 4)
    floors = marks.floors()
    marks.acknowledged("0", 2, 5)  # acknowledged while the read was in flight
    marks.compare(floors, {("0", 1): 9, ("0", 2): 4})
    assert marks.take_lost() == {1}
    marks.compare(marks.floors(), {("0", 2): 5})
    assert marks.take_lost() == set()


def test_a_missing_counter_reads_as_zero() -> None:
    marks = WriteMarks()
    marks.acknowledged("3", 4, 1)
    marks.compare(marks.floors(), {})
    assert marks.take_lost() == {4}


def test_the_counter_field_is_the_owner_tokens_shard_index() -> None:
    assert writer_of("3:17") == "3"
    assert writer_of("12") == "12"
