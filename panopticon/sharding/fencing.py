"""Ring fences: the number bucket owners carry, kept growing by the store itself.

Owners are `"<shard>:<fence>"` and a claim wins over an owner with a smaller fence
(`CLAIM_SCRIPT`), so every newer ring must get a larger fence. The ring's generation
alone does not give one: a StatefulSet deleted and created again (`kubectl delete
sts --cascade=orphan`, a Helm or Argo replace, a reinstall over a kept Redis) starts
again at `metadata.generation` 1, and `--ring-generation` can be kept or lowered when
`--shards` changes. Every owner in the store would then carry a larger number than
the new ring, every claim of the new ring would be refused, and Redis would serve
frozen series for ever.

So the store keeps, in one hash `{p}:rings`, the *lineages* it has seen (a lineage
is one StatefulSet, by uid, or one static `--shards`/`--ring-generation` pair), each
with a *base*; a ring's fence is its lineage's base plus its generation:

- the current lineage keeps its base: fences grow with the generation, as before;
- a lineage never seen gets a base at the highest fence handed out (`top`) or above
  every owner in the store (`floor`), whichever is larger, and becomes current;
- a lineage seen before that is not current: a StatefulSet that was replaced (a
  lagging watch can still deliver it) gets fence 0, meaning "superseded, do not
  adopt"; a static lineage started again (a rollback to earlier flags) is the
  operator's latest word, and gets a new base as if never seen.

The first lineage of an empty store gets base 0, so fence = generation. A shard's
*first* ring over owners while no lineage is recorded (`first_floor`) fences strictly
above them: those owners were written by a version before lineages, which assigned
buckets by a consistent-hash ring, not by this version's contiguous ranges, so the
two must never claim at the same fence (at an equal fence neither wins, and the new
shard would leave most of its range to old owners that are being replaced; the
rolling upgrade test, `tests/upgrade/rolling.py`, found it). A shard that already
has a ring and finds the lineages lost (recovery) keeps its own fence as the floor,
as before. The owner format and the layout version are unchanged, so no series is
rewritten or lost by the upgrade. One hash on one key, changed by one script: atomic on a single Redis
and on Redis Cluster alike.
"""

from __future__ import annotations

from collections.abc import Iterable, MutableMapping

SUPERSEDED = 0
"""The fence of a replaced StatefulSet's rings: not to be adopted."""

# KEYS[1] = the rings hash. ARGV = lineage, generation, floor, renew ("1": a static
# lineage, which may become current again). Returns the fence, or 0 (superseded).
RING_FENCE_SCRIPT = """
local lineage, gen, floor = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local current = redis.call('HGET', KEYS[1], 'current')
local top = tonumber(redis.call('HGET', KEYS[1], 'top') or '0')
local base = redis.call('HGET', KEYS[1], 'base:' .. lineage)
if current == lineage and base then
  base = tonumber(base)
elseif base and ARGV[4] ~= '1' then
  return 0
else
  if not current and floor <= gen then
    base = 0
  else
    base = math.max(top, floor)
  end
  redis.call('HSET', KEYS[1], 'current', lineage, 'base:' .. lineage, base)
end
local fence = base + gen
if fence > top then
  redis.call('HSET', KEYS[1], 'top', fence)
end
return fence
"""


def ring_fence(
    rings: MutableMapping[str, int | str], lineage: str, generation: int, *, floor: int, renew: bool
) -> int:
    """`RING_FENCE_SCRIPT` over a dict (the in-process store)."""
    current = rings.get("current")
    top = int(rings.get("top", 0))
    known = rings.get(f"base:{lineage}")
    if current == lineage and known is not None:
        base = int(known)
    elif known is not None and not renew:
        return SUPERSEDED
    else:
        base = 0 if current is None and floor <= generation else max(top, floor)
        rings["current"] = lineage
        rings[f"base:{lineage}"] = base
    fence = base + generation
    if fence > top:
        rings["top"] = fence
    return fence


def first_floor(highest: int, own: int) -> int:
    """The `floor` a shard passes to `ring_fence`: `highest` is the largest owner fence
    in the store, `own` the fence of the shard's current ring (0 before its first).

    A shard's first ring over existing owners must beat them all (one above the
    highest), in case no lineage is recorded: they are then an earlier version's,
    with another assignment. With a ring of its own (recovery), at least that."""
    return highest + 1 if own == 0 and highest > 0 else max(highest, own)


def highest_fence(owners: Iterable[bytes | str]) -> int:
    """The largest fence among owner tokens (`"<shard>:<fence>"`); 0 for none."""
    highest = 0
    for owner in owners:
        text = owner.decode() if isinstance(owner, bytes) else owner
        _, _, fence = text.partition(":")
        if fence.isdigit():
            highest = max(highest, int(fence))
    return highest
