"""Write sequences: telling that a store forgot writes it acknowledged.

Every fenced write bumps a counter of the writing shard in the slot it writes
(`{p}:{s<slot>}:writes`, field = shard index), in the same script and therefore in
the same persisted state as the write itself, and answers the new value. A store
that comes back with less than it acknowledged (an `appendfsync everysec` crash, a
failover to a lagging replica, a restore from an older snapshot, one Redis Cluster
node restarting empty) comes back with a lower counter, whatever its run id says.

`WriteMarks` keeps, per (writer, slot), what the store acknowledged to this
process, and finds a slot that forgot some in two ways:

- a write answers a number it had already answered (the counter went back, then
  climbed again): every answer is unique while nothing is lost, and the counter
  cannot climb back past the highest acknowledged value without answering it;
- a read of the counter (the heartbeat's check of quiet slots) finds it below the
  highest value acknowledged *before the read was sent* (a write acknowledged
  while the read is in flight may have been applied after it).

Replies of concurrent writes arrive out of order, so an answer lower than the
highest seen is not by itself a loss; one more than `WINDOW` lower is (fewer than
that many writes of one slot are ever in flight at once). Pure bookkeeping: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field

WINDOW = 1024
"""Acknowledged numbers remembered per slot, below the highest."""

Mark = tuple[str, int]
"""(writer, slot): the writer is the shard index the write script counts under."""


def writer_of(owner: str) -> str:
    """The counter field of an owner token (`<shard>:...`): its shard index, so a
    shard's counters do not multiply with ring generations."""
    return owner.split(":", 1)[0]


@dataclass(slots=True)
class _Acked:
    highest: int = 0
    recent: set[int] = field(default_factory=set)


class WriteMarks:
    def __init__(self) -> None:
        self._acked: dict[Mark, _Acked] = {}
        self._lost: set[int] = set()

    def acknowledged(self, writer: str, slot: int, number: int) -> None:
        """A write to `slot` was applied and answered `number`."""
        mark = (writer, slot)
        acked = self._acked.get(mark)
        if acked is None:
            self._acked[mark] = _Acked(number, {number})
            return
        if number in acked.recent or number <= acked.highest - WINDOW:
            self._forgot(mark)
            return
        acked.recent.add(number)
        acked.highest = max(acked.highest, number)
        if len(acked.recent) > 2 * WINDOW:
            floor = acked.highest - WINDOW
            acked.recent = {n for n in acked.recent if n > floor}

    def floors(self) -> dict[Mark, int]:
        """The highest acknowledged number of each mark, taken before reading the
        counters (`compare`)."""
        return {mark: acked.highest for mark, acked in self._acked.items()}

    def compare(self, floors: dict[Mark, int], current: dict[Mark, int]) -> None:
        """Counters read after `floors` was taken (0 for a missing one): a counter
        below its floor lost acknowledged writes."""
        for mark, floor in floors.items():
            acked = self._acked.get(mark)
            if acked is None or acked.highest < floor:
                continue  # found lost by a write meanwhile: already reported
            if current.get(mark, 0) < floor:
                self._forgot(mark)

    def take_lost(self) -> set[int]:
        """Slots found to have forgotten acknowledged writes since the last call."""
        lost, self._lost = self._lost, set()
        return lost

    def _forgot(self, mark: Mark) -> None:
        # Reported once: what the store answers from now on is the new baseline.
        self._acked.pop(mark, None)
        self._lost.add(mark[1])
