"""The Redis store: the only module that talks to `redis`.

Implements `panopticon.store.Store` on a single Redis or a Redis Cluster (every
multi-key operation — the claim and write scripts — touches keys of one `{s<slot>}`
hash tag). URLs carry credentials and TLS: `redis://:password@host:6379/0`,
`rediss://host:6380?ssl_ca_certs=/ca.pem` (redis-py's URL options).
"""

from __future__ import annotations

import secrets
import ssl
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import orjson
import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.connection import parse_url
from redis.exceptions import NoScriptError, RedisError, ResponseError

from panopticon.errors import StoreError
from panopticon.sharding.fencing import RING_FENCE_SCRIPT
from panopticon.store.batch import Batch, Burial, Op
from panopticon.store.contract import ClaimResult, write_each
from panopticon.store.layout import Layout, RegistryEntry, layout_advice
from panopticon.store.scan import Endpoint, HvalsStream
from panopticon.store.scripts import CLAIM_SCRIPT, DROP_RETIRED_SCRIPT
from panopticon.store.writemarks import WriteMarks, writer_of
from panopticon.store.writescript import WRITE_SCRIPT, write_arguments, write_command

READ_BATCH = 16
"""HVALS pipelined per round trip when streaming a family: bounds scrape memory to
about 16 slot hashes of one family."""


@dataclass(frozen=True, slots=True)
class RedisOptions:
    """How to reach Redis. `url` may hold a password and TLS options."""

    url: str = "redis://127.0.0.1:6379/0"
    password: str | None = None
    """Overrides the URL's password (e.g. from a Secret in the environment)."""
    cluster: bool = False
    ca_file: str | None = None
    """CA bundle for `rediss://`; the system store when unset."""
    timeout: float = 10.0
    """Seconds for connecting and for each command."""


def endpoint_of(url: str, *, password: str | None, timeout: float, ca_file: str | None) -> Endpoint | None:
    """The endpoint of a `redis://` or `rediss://` URL; None for other schemes (unix sockets)."""
    try:
        parsed: dict[str, Any] = dict(parse_url(url))
    except ValueError:
        return None
    if "path" in parsed or "host" not in parsed:
        return None
    tls = None
    if url.startswith("rediss://"):
        tls = ssl.create_default_context(cafile=ca_file or parsed.get("ssl_ca_certs"))
    return Endpoint(
        host=parsed["host"],
        port=int(parsed.get("port", 6379)),
        db=int(parsed.get("db", 0) or 0),
        username=parsed.get("username"),
        password=password if password is not None else parsed.get("password"),
        tls=tls,
        timeout=timeout,
    )


def _without_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = (f"{parts.username}@" if parts.username else "") + (f"[{host}]" if ":" in host else host)
    if parts.port is not None:
        netloc += f":{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc))


class RedisStore:
    def __init__(
        self, client: Any, layout: Layout, *, cluster: bool = False, endpoint: Endpoint | None = None
    ) -> None:
        self.layout = layout
        self._client = client
        self._cluster = cluster
        self._endpoint = None if cluster else endpoint
        """For the scrape path's own streaming connection (single Redis over TCP/TLS)."""
        self._claim = client.register_script(CLAIM_SCRIPT)
        self._write = client.register_script(WRITE_SCRIPT)
        self._drop_retired = client.register_script(DROP_RETIRED_SCRIPT)
        self._ring_fence = client.register_script(RING_FENCE_SCRIPT)
        self._marks = WriteMarks()
        """What the store acknowledged to this process, per slot (restore detection)."""

    @classmethod
    def connect(cls, options: RedisOptions, layout: Layout) -> RedisStore:
        kwargs: dict[str, Any] = {
            "decode_responses": False,
            "socket_timeout": options.timeout,
            "socket_connect_timeout": options.timeout,
        }
        if options.ca_file:
            kwargs["ssl_ca_certs"] = options.ca_file
        url = options.url
        if options.password is not None:
            # redis-py lets a password in the URL win over the keyword: drop it from the
            # URL so that the configured one (e.g. from a Secret) is the one used.
            url = _without_password(url)
            kwargs["password"] = options.password
        try:
            if options.cluster:
                client: Any = RedisCluster.from_url(url, **kwargs)
            else:
                client = aioredis.from_url(url, health_check_interval=30, **kwargs)
        except (RedisError, ValueError) as e:
            raise StoreError(f"redis {options.url.split('@')[-1]}: {e}") from e
        endpoint = endpoint_of(
            options.url, password=options.password, timeout=options.timeout, ca_file=options.ca_file
        )
        return cls(client, layout, cluster=options.cluster, endpoint=endpoint)

    async def _run(self, what: str, coro: Any) -> Any:
        try:
            return await coro
        except RedisError as e:
            raise StoreError(f"redis {what}: {e}") from e
        except OSError as e:
            raise StoreError(f"redis {what}: {e}") from e

    async def ping(self) -> None:
        await self._run("ping", self._client.ping())

    async def ensure_layout(self) -> None:
        mine = self.layout.describe()
        await self._run("layout", self._client.set(self.layout.layout_key, mine, nx=True))
        recorded = await self._run("layout", self._client.get(self.layout.layout_key))
        if recorded is not None and orjson.loads(recorded) != orjson.loads(mine):
            raise StoreError(
                f"redis key {self.layout.layout_key} records layout {recorded.decode()}, "
                f"this process uses {mine.decode()}: {layout_advice(recorded, mine)}"
            )

    async def epoch(self) -> tuple[str, bool]:
        candidate = secrets.token_hex(8)
        created = await self._run("epoch", self._client.set(self.layout.epoch_key, candidate, nx=True))
        if created:
            return candidate, True
        value = await self._run("epoch", self._client.get(self.layout.epoch_key))
        return (value.decode(), False) if value is not None else (candidate, False)

    async def servers(self) -> dict[str, str]:
        if self._cluster:
            replies = await self._run(
                "info", self._client.info("server", target_nodes=RedisCluster.PRIMARIES)
            )
            if "run_id" in replies:  # a single primary: redis-py answers its reply alone
                return {"": str(replies["run_id"])}
            return {str(node): str(info.get("run_id", "")) for node, info in replies.items()}
        info = await self._run("info", self._client.info("server"))
        return {"": str(info.get("run_id", ""))}

    async def lost_writes(self) -> set[int]:
        floors = self._marks.floors()
        if floors:
            marks = sorted(floors, key=lambda mark: mark[1])
            pipe = self._client.pipeline(transaction=False)
            for writer, slot in marks:
                pipe.hget(self.layout.writes_key(slot), writer)
            replies = await self._run("writes", pipe.execute())
            current = {mark: int(value or 0) for mark, value in zip(marks, replies, strict=True)}
            self._marks.compare(floors, current)
        return self._marks.take_lost()

    async def claim(self, slot: int, shard: int, generation: int, buckets: Sequence[int]) -> ClaimResult:
        if not buckets:
            return ClaimResult((), ())
        claimed, refused = await self._run(
            "claim",
            self._claim(keys=[self.layout.owners_key(slot)], args=[shard, generation, *buckets]),
        )
        return ClaimResult(tuple(int(b) for b in claimed), tuple(int(b) for b in refused))

    async def ring_fence(
        self,
        lineage: str,
        generation: int,
        *,
        floor: int,
        renew: bool,
        expect: str | None = None,
        held: int = 0,
    ) -> int:
        confirmed = "" if expect is None else "=" + expect
        keys = [self.layout.rings_key]
        args = [lineage, generation, floor, "1" if renew else "0", confirmed, held]
        return int(await self._run("ring fence", self._ring_fence(keys=keys, args=args)))

    async def ring_lineage(self) -> str | None:
        current = await self._run("ring lineage", self._client.hget(self.layout.rings_key, "current"))
        return None if current is None else bytes(current).decode()

    async def owners(self) -> dict[int, str]:
        pipe = self._client.pipeline(transaction=False)
        for slot in range(self.layout.slots):
            pipe.hgetall(self.layout.owners_key(slot))
        replies = await self._run("owners", pipe.execute())
        return {int(bucket): owner.decode() for reply in replies for bucket, owner in reply.items()}

    async def write(self, slot: int, owner: str, ops: Sequence[Op]) -> list[int]:
        return await self.write_batch(slot, owner, Batch.of(ops))

    async def write_batch(self, slot: int, owner: str, batch: Batch) -> list[int]:
        if not self._cluster:
            (outcome,) = await self.write_batches(owner, [(slot, batch)])
            if isinstance(outcome, StoreError):
                raise outcome
            return outcome
        keys, args = write_arguments(self.layout, slot, owner, batch)
        if len(args) == 1:
            return []
        reply = await self._run("write", self._write(keys=keys, args=args))
        return self._outcome(owner, slot, reply)

    def _outcome(self, owner: str, slot: int, reply: Any) -> list[int]:
        """The refused buckets of a write script's reply; its write count is noted."""
        written, refused = reply
        self._marks.acknowledged(writer_of(owner), slot, int(written))
        return [int(b) for b in refused]

    async def write_batches(
        self, owner: str, batches: Sequence[tuple[int, Batch]]
    ) -> list[list[int] | StoreError]:
        if self._cluster:
            # Slots live on different nodes: one script call each (redis-py routes them).
            return await write_each(self, owner, batches)
        commands: list[tuple[int, bytes]] = []
        sha = self._write.sha
        for index, (slot, batch) in enumerate(batches):
            packed = write_command(self.layout, slot, owner, batch, sha)
            if packed is not None:
                commands.append((index, packed))
        results: list[list[int] | StoreError] = [[] for _ in batches]
        replies = await self._run("write", self._pipeline_writes([packed for _, packed in commands]))
        for (index, _), reply in zip(commands, replies, strict=True):
            if isinstance(reply, Exception):
                results[index] = StoreError(f"redis write: {reply}")
            else:
                results[index] = self._outcome(owner, batches[index][0], reply)
        return results

    async def _pipeline_writes(self, packed: list[bytes]) -> list[Any]:
        """Send packed EVALSHAs back to back on one connection and read every reply
        (an error reply is returned in place, not raised). Calls that found the script
        missing (Redis restarted) are sent again once it is loaded."""
        if not packed:
            return []
        pool = self._client.connection_pool
        connection = await pool.get_connection()
        try:
            replies = await self._exchange(connection, packed)
            missing = [i for i, reply in enumerate(replies) if isinstance(reply, NoScriptError)]
            if missing:
                await self._client.script_load(self._write.script)
                again = await self._exchange(connection, [packed[i] for i in missing])
                for i, reply in zip(missing, again, strict=True):
                    replies[i] = reply
            return replies
        except BaseException:
            await connection.disconnect()  # replies may still be in flight
            raise
        finally:
            await pool.release(connection)

    @staticmethod
    async def _exchange(connection: Any, packed: list[bytes]) -> list[Any]:
        await connection.send_packed_command(packed, check_health=False)
        replies: list[Any] = []
        for _ in packed:
            try:
                replies.append(await connection.read_response())
            except ResponseError as e:
                replies.append(e)
        return replies

    async def bury(self, burials: Sequence[Burial]) -> None:
        # Plain HDELs, pipelined (on a cluster redis-py routes each to its node): no
        # owner to check, and each delete stands alone.
        if not burials:
            return
        pipe = self._client.pipeline(transaction=False)
        for burial in burials:
            for family in burial.families:
                pipe.hdel(self.layout.family_key(burial.slot, family), burial.uid)
        await self._run("bury", pipe.execute())

    async def fields(self, slot: int, family: str) -> list[str]:
        return (await self.fields_of(slot, [family]))[0]

    async def fields_of(self, slot: int, families: Sequence[str]) -> list[list[str]]:
        out: list[list[str]] = []
        for start in range(0, len(families), READ_BATCH):
            pipe = self._client.pipeline(transaction=False)
            for family in families[start : start + READ_BATCH]:
                pipe.hkeys(self.layout.family_key(slot, family))
            replies = await self._run("hkeys", pipe.execute())
            out.extend([f.decode("utf-8", "surrogatepass") for f in raw] for raw in replies)
        return out

    async def set_registry(self, entries: dict[str, RegistryEntry], remove: Sequence[str]) -> None:
        # Order matters where the update is not atomic. A family is registered before it
        # leaves the retired set, and retired before it is unregistered: a failure
        # between two steps leaves it both registered and retired, which is harmless
        # (each shard collects only its own buckets, keeping the fields of families its
        # configs define) and is completed by the next publication. It never leaves a
        # removed family neither registered nor retired: the publishing shard retries
        # the removal, but if it restarted first, nobody would ever collect the fields.
        registry, retired = self.layout.registry_key, self.layout.retired_key
        steps: list[Callable[[Any], Any]] = []  # each takes a client or a pipeline
        if entries:
            mapping = {k: v.encode() for k, v in entries.items()}
            steps.append(lambda c: c.hset(registry, mapping=mapping))
            steps.append(lambda c: c.hdel(retired, *entries))
        if remove:
            now = int(time.time())
            steps.append(lambda c: c.hset(retired, mapping=dict.fromkeys(remove, now)))
            steps.append(lambda c: c.hdel(registry, *remove))
        if not self._cluster:
            pipe = self._client.pipeline(transaction=True)  # a single Redis: one MULTI/EXEC
            for step in steps:
                step(pipe)
            await self._run("registry", pipe.execute())
            return
        # Redis Cluster keeps the two keys on different slots (no transaction spans
        # them) and sends a pipeline's commands to their nodes concurrently: one step
        # at a time, so that the order above holds whatever fails.
        for step in steps:
            await self._run("registry", step(self._client))

    async def retired(self) -> set[str]:
        raw = await self._run("registry", self._client.hkeys(self.layout.retired_key))
        return {f.decode() for f in raw}

    async def retired_since(self) -> dict[str, int]:
        raw = await self._run("registry", self._client.hgetall(self.layout.retired_key))
        return {k.decode(): int(v) for k, v in raw.items()}

    async def family_stored(self, family: str) -> bool:
        # EXISTS of every slot's hash in one command (redis-py splits it by node on a
        # Redis Cluster); Redis removes a hash whose last field is deleted.
        keys = [self.layout.family_key(slot, family) for slot in range(self.layout.slots)]
        return bool(await self._run("exists", self._client.exists(*keys)))

    async def drop_retired(self, family: str, since: int) -> bool:
        dropped = await self._run(
            "registry", self._drop_retired(keys=[self.layout.retired_key], args=[family, since])
        )
        return bool(dropped)

    async def registry(self) -> dict[str, RegistryEntry]:
        raw = await self._run("registry", self._client.hgetall(self.layout.registry_key))
        return {k.decode(): RegistryEntry.decode(v) for k, v in raw.items()}

    async def heartbeat(self, shard: int, info: dict[str, object]) -> None:
        await self._run(
            "heartbeat", self._client.hset(self.layout.shards_key, str(shard), orjson.dumps(info))
        )

    async def forget_shard(self, shard: int) -> None:
        await self._run("heartbeat", self._client.hdel(self.layout.shards_key, str(shard)))

    async def save_valid_config(self, name: str, record: bytes) -> None:
        await self._run("valid configs", self._client.hset(self.layout.valid_configs_key, name, record))

    async def valid_config(self, name: str) -> bytes | None:
        record = await self._run("valid configs", self._client.hget(self.layout.valid_configs_key, name))
        return bytes(record) if record is not None else None

    async def forget_valid_config(self, name: str) -> None:
        await self._run("valid configs", self._client.hdel(self.layout.valid_configs_key, name))

    async def shards(self) -> dict[int, dict[str, object]]:
        raw = await self._run("shards", self._client.hgetall(self.layout.shards_key))
        return {int(k): orjson.loads(v) for k, v in raw.items()}

    async def read_families(
        self, families: Sequence[str], slots: Sequence[int] | None = None
    ) -> AsyncIterator[tuple[str, bytes]]:
        chosen = range(self.layout.slots) if slots is None else slots
        if self._endpoint is not None:
            keys = {self.layout.family_key(slot, f): f for f in families for slot in chosen}
            async with HvalsStream(self._endpoint) as stream:
                async for key, chunk in stream.values(keys):
                    if chunk:
                        yield keys[key], chunk
            return
        for family in families:
            for start in range(0, len(chosen), READ_BATCH):
                pipe = self._client.pipeline(transaction=False)
                for slot in chosen[start : start + READ_BATCH]:
                    pipe.hvals(self.layout.family_key(slot, family))
                for values in await self._run("read", pipe.execute()):
                    if values:
                        yield family, b"".join(values)

    async def flushdb(self) -> None:
        """Drop every key of this Panopticon's prefix (tests and operators' resets)."""
        async for key in self._client.scan_iter(match=f"{self.layout.prefix}:*", count=1000):
            await self._run("unlink", self._client.unlink(key))

    async def close(self) -> None:
        await self._client.aclose()
