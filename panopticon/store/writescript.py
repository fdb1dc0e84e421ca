"""The write script's wire form: `WRITE_SCRIPT`, its KEYS and ARGV for one slot's batch
(`write_arguments`), and the same call as RESP bytes (`write_command`).

Split from `panopticon.store` (the store's contract and layout) and `panopticon.store.redisstore`
(the Redis adapter) because packing a batch is its own concern: the hot part of a shard's
writes, pure data transformation with no I/O, tested byte for byte against hiredis. It
imports no Redis library; `panopticon.store.redisstore` sends what it builds.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar, cast

from panopticon.store.batch import Batch
from panopticon.store.layout import Layout

_T = TypeVar("_T")

# KEYS[1] = owners hash of the slot, KEYS[2] = its writes hash, KEYS[3..] = family
# hashes of the slot.
# ARGV[1] = owner token, then one group per bucket in the batch:
#   bucket, span (how many ARGV entries the bucket's objects take), then per object
#   uid, number of sets n, number of deletes m, n (key index, lines) pairs, m key
#   indexes.
# Applies the groups of the buckets whose owner is still the token and returns
# {the writer's new write count in the slot, the refused buckets}: the count is
# bumped in the same script as the writes, so a store that lost some of them
# answers less (`panopticon.store.writemarks`). One HSET or HDEL per field: a relist's
# batches hold about one object per bucket, so grouping fields per key would save
# Redis little and cost the shard more to build. The uid travels once per object, not
# once per field: packing the arguments is the shard's cost, and a uid is a third of a
# field's arguments.
WRITE_SCRIPT = """
local owner = ARGV[1]
local written = redis.call('HINCRBY', KEYS[2], string.match(owner, '^[^:]*'), 1)
local refused = {}
local i, n = 2, #ARGV
while i <= n do
  local bucket = ARGV[i]
  local stop = i + 2 + tonumber(ARGV[i + 1])
  i = i + 2
  if redis.call('HGET', KEYS[1], bucket) == owner then
    while i < stop do
      local uid = ARGV[i]
      local deletes = i + 3 + 2 * tonumber(ARGV[i + 1])
      local finish = deletes + tonumber(ARGV[i + 2])
      for j = i + 3, deletes - 1, 2 do
        redis.call('HSET', KEYS[tonumber(ARGV[j])], uid, ARGV[j + 1])
      end
      for j = deletes, finish - 1 do
        redis.call('HDEL', KEYS[tonumber(ARGV[j])], uid)
      end
      i = finish
    end
  else
    refused[#refused + 1] = bucket
  end
  i = stop
end
return {written, refused}
"""


class KeyIndexes(dict[str, _T]):
    """Family -> the `KEYS` index of its hash in one slot's `WRITE_SCRIPT` call, in the
    caller's form (`str`, or RESP bytes); a family seen first gets the next index.
    `hashes` is `KEYS` itself (the owners and writes hashes first). A hit is a plain
    dict lookup."""

    def __init__(self, layout: Layout, slot: int, form: Callable[[int], _T]) -> None:
        super().__init__()
        self.layout = layout
        self.slot = slot
        self.form = form
        self.hashes = [layout.owners_key(slot), layout.writes_key(slot)]

    def __missing__(self, family: str) -> _T:
        self.hashes.append(self.layout.family_key(self.slot, family))
        index = self[family] = self.form(len(self.hashes))
        return index


def write_arguments(
    layout: Layout, slot: int, owner: str, batch: Batch
) -> tuple[list[str], list[bytes | str]]:
    """KEYS and ARGV of `WRITE_SCRIPT` for one slot's batch (a large initial sync
    writes millions of fields: one loop step per field, lists extended in C)."""
    key_index = KeyIndexes(layout, slot, str)
    args: list[bytes | str] = [owner]
    for bucket, objects in batch.segments.items():
        group: list[bytes | str] = []
        for uid, fields in objects.items():
            if None not in fields.values():  # only sets: the usual case, one pass
                group += (uid, _count(len(fields)), "0")
                for family, lines in cast("dict[str, bytes]", fields).items():
                    group += (key_index[family], lines)
                continue
            sets: list[bytes | str] = []
            dels: list[bytes | str] = []
            for family, value in fields.items():
                ki = key_index[family]
                if value is None:
                    dels.append(ki)
                else:
                    sets += (ki, value)
            group += (uid, _count(len(sets) >> 1), _count(len(dels)))
            group += sets
            group += dels
        if group:
            args += (str(bucket), str(len(group)))
            args += group
    return key_index.hashes, args


_COUNTS = tuple(str(n) for n in range(256))


def _count(n: int) -> str:
    return _COUNTS[n] if n < 256 else str(n)


_CRLF = b"\r\n"
_HEADS = tuple(b"$%d\r\n" % n for n in range(2048))
"""RESP bulk-string headers of the usual lengths of a field's lines."""
_SMALL = tuple(b"$%d\r\n%d\r\n" % (len(str(n)), n) for n in range(256))
"""Whole RESP arguments of small counts and key indexes."""
_EVALSHA = b"$7\r\nEVALSHA\r\n"


def _argument(value: str | bytes) -> bytes:
    data = value.encode() if isinstance(value, str) else value
    return b"$%d\r\n%s\r\n" % (len(data), data)


def _small(n: int) -> bytes:
    return _SMALL[n] if n < 256 else _argument(str(n))


def write_command(layout: Layout, slot: int, owner: str, batch: Batch, sha: str) -> bytes | None:
    """The EVALSHA of `WRITE_SCRIPT` for one slot's batch, as RESP bytes: the same
    command as `hiredis.pack_command` of `write_arguments`, built in one walk without
    the argument list (an initial sync packs millions of fields; this costs about half).
    None when the batch writes nothing."""
    key_index = KeyIndexes(layout, slot, _small)
    parts: list[bytes] = [_argument(owner)]
    count = 1
    heads = _HEADS
    for bucket, objects in batch.segments.items():
        group: list[bytes] = []
        size = 0
        for uid, fields in objects.items():
            if None not in fields.values():  # only sets: the usual case, one pass
                u = uid.encode()
                n = len(u)
                group += (heads[n] if n < 2048 else b"$%d\r\n" % n, u, _CRLF, _small(len(fields)), _SMALL[0])
                for family, lines in cast("dict[str, bytes]", fields).items():
                    n = len(lines)
                    group += (key_index[family], heads[n] if n < 2048 else b"$%d\r\n" % n, lines, _CRLF)
                size += 3 + 2 * len(fields)
                continue
            sets: list[bytes] = []
            dels: list[bytes] = []
            for family, value in fields.items():
                ki = key_index[family]
                if value is None:
                    dels.append(ki)
                else:
                    n = len(value)
                    sets += (ki, heads[n] if n < 2048 else b"$%d\r\n" % n, value, _CRLF)
            nsets = len(sets) >> 2
            group += (_argument(uid), _small(nsets), _small(len(dels)))
            group += sets
            group += dels
            size += 3 + 2 * nsets + len(dels)
        if size:
            parts += (_argument(str(bucket)), _argument(str(size)))
            parts += group
            count += 2 + size
    if count == 1:
        return None
    keys = key_index.hashes
    head = [b"*%d\r\n" % (3 + len(keys) + count), _EVALSHA, _argument(sha), _argument(str(len(keys)))]
    head += map(_argument, keys)
    head += parts
    return b"".join(head)
