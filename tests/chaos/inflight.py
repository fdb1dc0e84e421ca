"""What must hold at every moment of the chaos suite, checked on scrapes taken during it.

A thread repeats two rounds side by side, for as long as the disruptions last: read
the shards' heartbeats from the store, scrape a real aggregator process over HTTP,
read the heartbeats again; and read the ground truth from the simulator
(`render_truth`: which objects exist, which families have series), then the store's
fields with their object uids. Each scrape answered 200 is checked for:

- valid exposition: every line matches the strict text-format grammar, and
  Prometheus' own parser reads the whole body;
- no duplicate: no series (name and labels) twice, no family header twice. This
  includes an object deleted and created again under the same name (the suite's
  `recreate_statefulset`): its new uid lives in another bucket, usually another
  shard's, and both uids' series used to be served until the old one's delete was
  applied. The shards now bury the old uid's series first (`shard.successors`), so
  such a duplicate is a violation like any other; it is also counted apart, as
  `recreated_overlap` (a part of `duplicate_series`, which must be 0), to tell it
  from other duplicates;
- no whole family missing: a family that had series in the ground truth at every
  poll from `FAMILY_BOUND` seconds before the scrape to the first poll after it
  must be in a scrape taken while every shard's heartbeat in the store was fresh
  and synced, before and after it (a shard that is rewriting, or heartbeats lost
  with Redis, say not synced);

and each read of the store for:

- no stale object: no field of an object absent from the ground truth for more
  than `STALE_BOUND` seconds (counted from the latest of: its last poll alive, when
  the store was first seen holding it, the last restore of Redis from an older
  snapshot, which brings back objects deleted since the snapshot was taken).

`STALE_BOUND` is derived from the suite's timings. A deleted object's series are
removed by its owner within a flush (20 ms) of the watch event, unless its bucket
has no running, synced owner: after a scale-up the old owners let the new shard's
buckets go at once, and the new shard deletes what was deleted meanwhile after its
first sync. On this shared 2-core machine, a shard started by a scale-up took 16 s
from its launch to adopting its ring, before its first list (the suite's
`wait_ready` allows 60 s for start to sync); with a list under churn, the kill's
restart delay (2 s), a stalled watch (3 s), a failed collection's retry (5 s) and a
heartbeat to notice a Redis restore (0.5 s), 60 s leaves a margin. `FAMILY_BOUND` (5 s) is a flush
plus the truth and scrape polls' spacing. The counts, and the oldest stale object
seen (which shows how far inside the bound a run stayed), go in the report.
"""

from __future__ import annotations

import asyncio
import collections
import http.client
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.parser import text_string_to_metric_families
from redis.asyncio import Redis
from redis.exceptions import RedisError

from kubesim import SimProcess
from panopticon.errors import StoreError
from panopticon.store.layout import Layout, field_bucket
from panopticon.store.redisstore import RedisOptions, RedisStore
from tests.support.cluster import render_truth

STALE_BOUND = 60.0
FAMILY_BOUND = 5.0
HEARTBEAT_FRESH = 2.0
"""Seconds a heartbeat stays fresh (the shards beat every 0.5 s)."""


@dataclass
class InFlight:
    """The in-flight checks' counts (they go into the suite's report)."""

    scrapes: int = 0
    scrapes_ok: int = 0
    scrapes_failed: int = 0
    """Answers other than 200 (503 while Redis is down) and streams aborted mid-way
    (Redis gone mid-scrape: Prometheus discards those): allowed, counted."""
    scrapes_covered: int = 0
    """200s taken while every shard reported synced: the missing-family check's scope."""
    uncovered: dict[str, int] = field(default_factory=dict)
    """Why the other scrapes were not (a reason before or after the scrape)."""
    invalid: int = 0
    duplicate_series: int = 0
    recreated_overlap: int = 0
    """Of `duplicate_series`, those carrying a recreated object's labels within
    STALE_BOUND of its recreation (the old uid's series not buried): a violation too."""
    duplicate_headers: int = 0
    missing_families: int = 0
    store_reads: int = 0
    seconds: dict[str, float] = field(default_factory=dict)
    """Time spent per part of the rounds (truth polls, scrapes, store reads)."""
    store_unavailable: int = 0
    """Rounds cut short because Redis did not answer the checker (restarting)."""
    stale_objects: int = 0
    oldest_stale: float = 0.0
    """Seconds: the longest an object absent from the truth was seen still stored."""
    examples: list[str] = field(default_factory=list)

    @property
    def violations(self) -> int:
        return (
            self.invalid
            + self.duplicate_series
            + self.duplicate_headers
            + self.missing_families
            + self.stale_objects
        )

    def spent(self, part: str, since: float) -> None:
        self.seconds[part] = round(self.seconds.get(part, 0.0) + time.monotonic() - since, 1)

    def note(self, text: str) -> None:
        if len(self.examples) < 10:
            self.examples.append(text)


@dataclass
class Scrape:
    started: float
    ended: float
    families: set[str]
    covered: bool
    """Every shard's heartbeat said synced, before and after it."""


class StaleObjects:
    """When each object was last seen alive, to tell how long a stored one is stale."""

    def __init__(self) -> None:
        self.alive: dict[str, float] = {}
        """uid -> the last truth poll that found it."""
        self.last_poll = 0.0
        self.first_stored: dict[str, float] = {}
        self.restored_at = 0.0
        self.extra_bound: Callable[[], float] = lambda: 0.0
        """Seconds added to `STALE_BOUND` at a moment: the upgrade test's handover in
        progress, during which a stopped shard's buckets have no owner."""

    def polled(self, uids: set[str], at: float) -> None:
        self.last_poll = at
        for uid in uids:
            self.alive[uid] = at

    def check(self, stored: set[str], now: float, counts: InFlight) -> None:
        """Count the stored objects absent from the truth for more than `STALE_BOUND`."""
        counts.store_reads += 1
        for uid in stored:
            first = self.first_stored.setdefault(uid, now)
            last_alive = self.alive.get(uid)
            if last_alive is not None and last_alive >= self.last_poll:
                continue  # alive at the latest poll
            age = now - max(last_alive or first, first, self.restored_at)
            counts.oldest_stale = max(counts.oldest_stale, age)
            if age > STALE_BOUND + self.extra_bound():
                counts.stale_objects += 1
                counts.note(f"object {uid} stored {age:.0f}s after it was last seen alive")
                self.first_stored[uid] = now  # counted once per bound, not at every read


class InFlightChecker(threading.Thread):
    def __init__(
        self, sim: SimProcess, redis_url: str, aggregator: str, *, node_urls: list[str], cluster: bool = False
    ) -> None:
        super().__init__(name="in-flight checks", daemon=True)
        self.sim = sim
        self.redis_url = redis_url
        self.node_urls = node_urls
        """Each Redis server (every node of a cluster), for reading fields node by node."""
        self.aggregator = aggregator
        self.cluster = cluster
        self.counts = InFlight()
        self._halt = threading.Event()
        self._polls: list[tuple[float, set[str]]] = []
        """(time, families with series) of every truth poll."""
        self._scrapes: list[Scrape] = []
        self._stale = StaleObjects()
        self._recreated: list[tuple[float, str]] = []
        """(time, labels) of objects deleted and created again under the same name."""
        self.error: BaseException | None = None

    def object_recreated(self, labels: str) -> None:
        """An object is about to be deleted and created again: `labels` (`k="v",...`)
        are on each of its series."""
        self._recreated.append((time.time(), labels))

    def store_restored(self) -> None:
        """Redis was just restored from an older snapshot: objects deleted since it was
        taken are stored again, and their time starts again from now."""
        self._stale.restored_at = time.time()

    def stop(self) -> InFlight:
        self._halt.set()
        self.join(120)
        judge_families(self._polls, self._scrapes, self.counts)
        return self.counts

    def run(self) -> None:
        try:
            # Left on asyncio's loop for now (not tests.support.aio): the redis-cluster chaos run
            # failed 3 of 3 with this observer on uvloop and 1 of 2 on asyncio's; undecided.
            asyncio.run(self._loop())
        except BaseException as e:  # reported by the suite, not lost in a thread
            self.error = e

    async def _loop(self) -> None:
        options = RedisOptions(url=self.redis_url, cluster=self.cluster, timeout=5)
        store = RedisStore.connect(options, Layout())
        nodes = [Redis.from_url(url, socket_timeout=5) for url in self.node_urls]
        try:
            await asyncio.gather(
                self._repeat(lambda: self._scrape_round(store)),
                self._repeat(lambda: self._truth_round(store, nodes)),
            )
            await self._poll_truth()  # the poll after the last scrape
        finally:
            for node in nodes:
                await node.aclose()
            await store.close()

    async def _repeat(self, round_: Callable[[], Awaitable[None]]) -> None:
        while not self._halt.is_set():
            try:
                await round_()
            except StoreError:
                self.counts.store_unavailable += 1  # Redis restarting: the next round reads again
            await asyncio.sleep(0.2)

    async def _scrape_round(self, store: RedisStore) -> None:
        before = await _synced(store)
        started, clock = time.time(), time.monotonic()
        status, body = await asyncio.to_thread(self._scrape)
        ended = time.time()
        self.counts.spent("scrape", clock)
        after = await _synced(store)
        self.counts.scrapes += 1
        for reason in {before, after} - {""}:
            self.counts.uncovered[reason] = self.counts.uncovered.get(reason, 0) + 1
        if status != 200:
            self.counts.scrapes_failed += 1
            return
        self.counts.scrapes_ok += 1
        recent = [labels for at, labels in self._recreated if started - at <= STALE_BOUND]
        families = check_exposition(body, self.counts, recreated=recent)
        covered = not (before or after)
        self.counts.scrapes_covered += covered
        self._scrapes.append(Scrape(started, ended, families, covered))

    async def _truth_round(self, store: RedisStore, nodes: list[Any]) -> None:
        clock = time.monotonic()
        await self._poll_truth()
        self.counts.spent("truth", clock)
        clock = time.monotonic()
        stored = await _stored_uids(store, nodes)
        self.counts.spent("store", clock)
        self._stale.check(stored, time.time(), self.counts)

    async def _poll_truth(self) -> None:
        try:
            truth = await asyncio.to_thread(render_truth, self.sim)
        except OSError:
            return  # the simulator is busy: the next round polls again
        now = time.time()
        self._polls.append((now, truth.families))
        self._stale.polled(truth.uids, now)

    def _scrape(self) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(f"http://{self.aggregator}/metrics", timeout=20) as r:
                return int(r.status), r.read().decode("utf-8")
        except urllib.error.HTTPError as e:
            return int(e.code), ""
        except (OSError, http.client.HTTPException):
            return 0, ""  # refused, or a stream the aggregator aborted (Redis gone mid-scrape)


def check_exposition(body: str, counts: InFlight, *, recreated: list[str] | None = None) -> set[str]:
    """The families in a 200's body, counting what is wrong with it."""
    from tests.panopticon.render.test_properties import LINE  # the strict line grammar

    families: list[str] = []
    series: collections.Counter[str] = collections.Counter()
    bad = 0
    # Only "\n" ends a line; an empty body (nothing registered yet) is a valid exposition.
    lines = body.split("\n")[:-1] if body.endswith("\n") else body.split("\n") if body else []
    for line in lines:
        if line.startswith("# TYPE "):
            families.append(line.split(" ")[2])
        elif line.startswith("# HELP "):
            continue
        elif not LINE.fullmatch(line):
            bad += 1
            counts.note(f"invalid line: {line[:120]}")
        else:
            series[line.rsplit(" ", 1)[0]] += 1
    try:
        list(text_string_to_metric_families(body))
    except ValueError as e:
        bad += 1
        counts.note(f"parser: {e}")
    if body and not body.endswith("\n"):
        bad += 1
    counts.invalid += bad > 0
    dupes = [s for s, n in series.items() if n > 1]
    counts.recreated_overlap += sum(1 for s in dupes if any(labels in s for labels in recreated or ()))
    if dupes:
        counts.duplicate_series += len(dupes)
        counts.note(f"duplicate series: {dupes[0][:120]}")
    headers = collections.Counter(families)
    counts.duplicate_headers += sum(1 for n in headers.values() if n > 1)
    return set(families)


def judge_families(polls: list[tuple[float, set[str]]], scrapes: list[Scrape], counts: InFlight) -> None:
    """Count the families missing from covered 200s that the truth had throughout
    (from `FAMILY_BOUND` before each scrape to the first poll after it)."""
    for scrape in scrapes:
        if not scrape.covered:
            continue
        after = [t for t, _ in polls if t > scrape.ended]
        if not after or not any(t < scrape.started - FAMILY_BOUND for t, _ in polls):
            continue  # no truth poll after it, or none reaching back far enough
        window = [fams for t, fams in polls if scrape.started - FAMILY_BOUND <= t <= after[0]]
        missing = set.intersection(*window) - scrape.families
        if missing:
            counts.missing_families += len(missing)
            counts.note(f"200 at {scrape.started:.1f} lacks {sorted(missing)[:3]}")


async def _synced(store: RedisStore) -> str:
    """ "" when every shard of the newest ring has a fresh heartbeat saying synced,
    else why not. Heartbeats of other rings (a shard killed, then scaled away) are
    ignored, as the aggregator does."""
    try:
        beats = await store.shards()
    except StoreError:
        return "store"
    return why_not_synced(beats, time.time())


def why_not_synced(beats: dict[int, dict[str, Any]], now: float) -> str:
    fresh = {i: b for i, b in beats.items() if now - _time(b) <= HEARTBEAT_FRESH}
    rings = [b["ring"] for b in fresh.values() if isinstance(b.get("ring"), list) and len(b["ring"]) == 2]
    if not rings:
        return "no fresh heartbeat"
    shards, generation = max(rings, key=lambda ring: (ring[1], ring[0]))
    for i in range(int(shards)):
        beat = fresh.get(i)
        if beat is None:
            return "a heartbeat missing or stale"
        if beat.get("ring") != [shards, generation]:
            return "a shard on another ring"
        if beat.get("synced") is not True:
            return "a shard relisting"
    return ""


def _time(beat: dict[str, Any]) -> float:
    value = beat.get("time")
    return float(value) if isinstance(value, int | float) else 0.0


async def _stored_uids(store: RedisStore, nodes: list[Any]) -> set[str]:
    """Every object uid the store holds a field of, in registered families (not the
    buckets' aggregate partials): each node's family hashes found by SCAN, their HKEYS
    in one pipeline per node (plain connections: a Redis Cluster node answers for its
    own keys)."""
    registered = set(await store.registry())
    marker = ":f:"
    uids: set[str] = set()
    try:
        for node in nodes:
            keys = [
                key
                async for key in node.scan_iter(match=f"{store.layout.prefix}:*{marker}*", count=1000)
                if key.decode().split(marker, 1)[1] in registered
            ]
            pipe = node.pipeline(transaction=False)
            for key in keys:
                pipe.hkeys(key)
            for fields in await pipe.execute():
                uids.update(uid.decode("utf-8", "surrogatepass") for uid in fields)
        # An aggregate family's fields are buckets' partials (`#<bucket>`), not objects:
        # they are checked at the end, served against the offline render's groups.
        uids = {uid for uid in uids if field_bucket(uid) is None}
    except (RedisError, OSError) as e:
        raise StoreError(f"reading the store's fields: {e}") from e
    return uids
