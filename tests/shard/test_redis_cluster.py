"""Redis Cluster, for real: three redis-server masters joined by `redis-cli --cluster create`.

Every multi-key operation must stay within one hash slot (the `{s<slot>}` hash tag),
or the cluster answers CROSSSLOT. The store's contract is checked directly, then
two shard processes and an aggregator run against the cluster and what Prometheus
would scrape must equal the offline render.
"""

from __future__ import annotations

import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis.asyncio import RedisCluster

from kubesim import SimProcess
from panopticon.errors import StoreError
from panopticon.render.exposition import FamilyHeader
from panopticon.store.batch import Batch, Burial, Op
from panopticon.store.layout import Layout, RegistryEntry, token
from panopticon.store.redisstore import RedisOptions, RedisStore
from tests.shard.test_aggregate_sharded import CONFIGS as AGGREGATE_CONFIGS
from tests.shard.test_cluster import churn
from tests.support import aio
from tests.support.cluster import AggregatorProcess, ShardProcess, converge, expected_lines, stored_lines
from tests.support.redis_server import RedisClusterServers

LAYOUT = Layout(prefix="c", buckets=256, slots=16)


@pytest.fixture(scope="module")
def redis_cluster() -> Iterator[RedisClusterServers]:
    servers = RedisClusterServers(3)
    try:
        servers.start()
        yield servers
    finally:
        servers.close()


def uid_in(bucket: int) -> str:
    """A uid that falls in `bucket`."""
    i = 0
    while LAYOUT.space.bucket(f"uid-{i}") != bucket:
        i += 1
    return f"uid-{i}"


def test_the_store_contract_holds_on_a_redis_cluster(redis_cluster: RedisClusterServers) -> None:
    async def body() -> None:
        store = RedisStore.connect(RedisOptions(url=redis_cluster.url, cluster=True), LAYOUT)
        try:
            await store.ensure_layout()
            epoch, created = await store.epoch()
            assert created and (await store.epoch()) == (epoch, False)
            per_slot = LAYOUT.buckets // LAYOUT.slots
            mine = [slot * per_slot for slot in range(LAYOUT.slots)]  # one bucket in every slot
            theirs = [slot * per_slot + 1 for slot in range(LAYOUT.slots)]
            for slot in range(LAYOUT.slots):
                got = await store.claim(slot, 0, 1, [mine[slot]])
                assert got.claimed == (mine[slot],)
                await store.claim(slot, 1, 1, [theirs[slot]])
            owner = token(0, 1)

            batches = []
            for slot in range(LAYOUT.slots):
                ops = [Op("fam", mine[slot], uid_in(mine[slot]), f'fam{{s="{slot}"}} 1\n'.encode())]
                ops.append(Op("fam", theirs[slot], uid_in(theirs[slot]), b'fam{x="refused"} 1\n'))
                ops.append(Op("other", mine[slot], uid_in(mine[slot]), f'other{{s="{slot}"}} 2\n'.encode()))
                batches.append((slot, Batch.of(ops)))
            outcomes = await store.write_batches(owner, batches)
            assert outcomes == [[theirs[slot]] for slot in range(LAYOUT.slots)]  # fenced, per slot

            entry = RegistryEntry.of(FamilyHeader("fam", "h"), ["c"])
            await store.set_registry({"fam": entry, "other": entry, "gone": entry}, [])
            await store.set_registry({}, ["gone"])
            assert set(await store.registry()) == {"fam", "other"}
            assert await store.retired() == {"gone"}

            lines: Counter[str] = Counter()
            async for _, chunk in store.read_families(["fam", "other"]):
                lines.update(chunk.decode().splitlines())
            expected = {f'fam{{s="{slot}"}} 1' for slot in range(LAYOUT.slots)}
            expected |= {f'other{{s="{slot}"}} 2' for slot in range(LAYOUT.slots)}
            assert lines == Counter(expected)
            # A partitioned scrape's reads (slot mod 3), over the nodes: disjoint, and together all.
            parts: Counter[str] = Counter()
            for i in range(3):
                async for _, chunk in store.read_families(["fam", "other"], range(i, LAYOUT.slots, 3)):
                    parts.update(chunk.decode().splitlines())
            assert parts == Counter(expected)

            # Deletes through the same fenced script, then the fields are gone.
            deletes = [
                (slot, Batch.of([Op("fam", mine[slot], uid_in(mine[slot]), None)])) for slot in range(4)
            ]
            assert await store.write_batches(owner, deletes) == [[], [], [], []]
            assert [await store.fields(slot, "fam") for slot in range(4)] == [[], [], [], []]
            # Keys on every node: EXISTS is split by node; the retired set is one key.
            assert await store.family_stored("fam") and not await store.family_stored("gone")
            since = (await store.retired_since())["gone"]
            assert await store.drop_retired("gone", since) and await store.retired() == set()

            # Burials (dead objects' fields, unfenced) in one pipeline over every node:
            # the other shard's buckets too, and nothing else of the slots.
            dead = {bucket: f"dead-{bucket}" for bucket in (theirs[4], mine[5], theirs[15])}
            for bucket, uid in dead.items():
                writer = token(1 if bucket in theirs else 0, 1)
                assert (
                    await store.write(LAYOUT.slot_of(bucket), writer, [Op("fam", bucket, uid, b"x 1\n")])
                    == []
                )
            before = {slot: set(await store.fields(slot, "fam")) for slot in (4, 5, 15)}
            assert set(dead.values()) <= set().union(*before.values())
            burials = [Burial(LAYOUT.slot_of(bucket), uid, ("fam", "other")) for bucket, uid in dead.items()]
            await store.bury(burials)
            after = {slot: set(await store.fields(slot, "fam")) for slot in (4, 5, 15)}
            assert after == {slot: uids - set(dead.values()) for slot, uids in before.items()}
            assert after[4] and after[5]  # the slots' other objects stay

            await store.heartbeat(0, {"synced": True})
            assert (await store.shards())[0] == {"synced": True}
        finally:
            await store.close()

    aio.run(body())


def test_a_failed_registry_update_on_a_redis_cluster_never_leaves_a_family_neither_registered_nor_retired(
    redis_cluster: RedisClusterServers,
) -> None:
    """The registry and the retired set live on different slots of a cluster, so their
    update is not atomic there. A family being removed is retired before it is
    unregistered: when the retired write fails (here the key holds a string, so HSET
    fails with WRONGTYPE), the family stays registered and the removal is retried by
    the next publication. (Before, the pipeline unregistered it anyway, and its fields
    were left for nobody to collect.)"""

    async def body() -> None:
        layout = Layout(prefix="reg", buckets=LAYOUT.buckets, slots=LAYOUT.slots)
        store = RedisStore.connect(RedisOptions(url=redis_cluster.url, cluster=True), layout)
        raw = RedisCluster.from_url(redis_cluster.url)
        try:
            entry = RegistryEntry.of(FamilyHeader("fam", "h"), ["c"])
            await store.set_registry({"fam": entry, "gone": entry}, [])
            await raw.set(layout.retired_key, "not a hash")
            with pytest.raises(StoreError):
                await store.set_registry({}, ["gone"])
            assert set(await store.registry()) == {"fam", "gone"}
            await raw.delete(layout.retired_key)
            await store.set_registry({}, ["gone"])  # the next publication completes it
            assert set(await store.registry()) == {"fam"}
            assert await store.retired() == {"gone"}
        finally:
            await raw.aclose()
            await store.close()

    aio.run(body())


@pytest.mark.slow
def test_shards_and_an_aggregator_serve_the_offline_render_from_a_redis_cluster(
    redis_cluster: RedisClusterServers, tmp_path: Path
) -> None:
    sim = SimProcess(["--with-configs", "--scale", "1", "--seed", "13"]).start()
    procs: list[ShardProcess | AggregatorProcess] = []
    try:
        # Aggregate families too: each bucket's partial in its bucket's slot (hash tag).
        result = sim.admin.bulk([{"op": "create", "object": body} for body in AGGREGATE_CONFIGS])
        assert {r["code"] for r in result["results"]} == {200}, result
        for index in (0, 1):
            shard = ShardProcess(
                index,
                kubeconfig=sim.kubeconfig_path,
                redis_url=redis_cluster.url,
                log_dir=tmp_path,
                extra=("--shards", "2", "--redis-cluster"),
            ).start()
            procs.append(shard)
        for proc in procs:
            assert isinstance(proc, ShardProcess)
            proc.wait_ready()
        stored = converge(sim, redis_cluster.url, cluster=True, what="two shards on a Redis Cluster")
        assert sum(stored.values()) > 100

        aggregator = AggregatorProcess(
            redis_url=redis_cluster.url, log_dir=tmp_path, extra=("--redis-cluster",)
        ).start()
        procs.append(aggregator)
        with urllib.request.urlopen(f"http://{aggregator.target}/metrics", timeout=30) as response:
            text = response.read().decode()
        served = Counter(line for line in text.splitlines() if line and not line.startswith("#"))
        assert served == expected_lines(sim)
        assert any(line.startswith("agg_phase{") for line in served)
    finally:
        for proc in procs:
            proc.stop()
        sim.stop()


def _node_without(servers: RedisClusterServers, key: str, *, besides: int = -1) -> int:
    """The index of a node that does not hold `key`'s slot (redis-cli answers MOVED)."""
    for i, server in enumerate(servers.servers):
        if i != besides and server.command("EXISTS", key) != "1":
            return i
    raise AssertionError(f"every node holds {key}")


@pytest.mark.slow
def test_a_redis_cluster_node_restarting_empty_or_from_an_older_snapshot_is_rewritten(tmp_path: Path) -> None:
    """A node that comes back empty loses its slots' series, owners and write counters,
    and maybe the registry, while the store's epoch lives on another node: only the
    node's new run id (and the counters) tell. A node restarted from an older snapshot
    brings back series of deleted objects and old lines of updated ones."""
    servers = RedisClusterServers(3)
    sim = SimProcess(["--with-configs", "--scale", "1", "--seed", "17", "--mongodbs", "20"])
    shards: list[ShardProcess] = []
    try:
        servers.start()
        sim.start()
        for index in (0, 1):
            shard = ShardProcess(
                index,
                kubeconfig=sim.kubeconfig_path,
                redis_url=servers.url,
                log_dir=tmp_path,
                extra=("--shards", "2", "--redis-cluster"),
            )
            shards.append(shard.start())
        for shard in shards:
            shard.wait_ready()
        converge(sim, servers.url, cluster=True, what="two shards on a Redis Cluster")

        emptied = _node_without(servers, "pan:epoch")
        servers.servers[emptied].restart_empty()
        converge(sim, servers.url, cluster=True, timeout=60, what="after one node restarted empty")

        restored = _node_without(servers, "pan:epoch", besides=emptied)
        before = stored_lines(servers.url, cluster=True)
        snapshot = servers.servers[restored].snapshot()
        churn(sim, 600, rate=600, seed=9)
        after = converge(sim, servers.url, cluster=True, timeout=60, what="after the changes")
        assert before - after and after - before
        time.sleep(1.5)
        servers.servers[restored].restart_from(snapshot)
        converge(sim, servers.url, cluster=True, timeout=60, what="after one node restarted from a snapshot")
    finally:
        for shard in shards:
            shard.stop()
        sim.stop()
        servers.close()
