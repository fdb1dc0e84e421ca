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
- a static lineage that is not current (never seen, or a rollback to earlier flags)
  is the operator's latest word: it gets a base at the highest fence handed out
  (`top`) or above every owner in the store (`floor`), whichever is larger, and
  becomes current;
- a StatefulSet's lineage that is not current becomes current the same way only on
  the API server's word: its shard read the current lineage (`ring_lineage`), then
  the StatefulSet (a GET, a quorum read, not its watch cache: `shard.ownershiploops`)
  and passes what it read as `expect`; the store makes the lineage current only if
  the current one is still `expect` (else 0: it changed meanwhile, read and confirm
  again). Without `expect` it gets 0, meaning "superseded, do not adopt": a lagging
  watch can still deliver a replaced StatefulSet.

The store alone cannot tell a replaced StatefulSet from a new one: a Redis restore
(or an empty restart) rolls `{p}:rings` back, and a lineage it forgot looks new. Until
this rule, a shard whose watch lagged presented the replaced StatefulSet after a
restore, the store made it current above the live one, and the live ring's shards
were fenced out for good (a chaos run found it). A confirmed lineage the store holds
as superseded (a rolled-back store's word is older than the API server's) is made
current again with a new base above every fence, so the live ring always wins; a
replaced StatefulSet is never confirmed, so it never becomes current again, whatever
the store forgot.

A shard that confirms the live StatefulSet for a lagging peer does not know the
fences the store handed out for it before the rollback; the live ring's own shards
do. Each passes the fence it holds for the lineage and generation it presents
(`held`), and the current lineage's base rises to it if the store's is lower: the
base the store itself gave before the rollback, so the ring's fence never goes back
(a shard that re-claimed its buckets at its old fence before noticing the rollback
would otherwise be refused by its own claims), and no other ring's fence is passed.

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
"""The fence of a ring not to be adopted: its StatefulSet was replaced, or is not
confirmed current, or the current lineage changed since the caller read it."""

# KEYS[1] = the rings hash. ARGV = lineage, generation, floor, renew ("1": a static
# lineage, which may become current again), expect ("": unconfirmed; else "=" and the
# current lineage the caller read before the API server confirmed `lineage`), held (the
# fence the caller holds for this lineage and generation, 0 for none). Returns the
# fence, or 0 (superseded, unconfirmed, or the current lineage changed meanwhile).
RING_FENCE_SCRIPT = """
local lineage, gen, floor = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local current = redis.call('HGET', KEYS[1], 'current')
local top = tonumber(redis.call('HGET', KEYS[1], 'top') or '0')
local base = redis.call('HGET', KEYS[1], 'base:' .. lineage)
local expect = ARGV[5] or ''
if current == lineage and base then
  base = tonumber(base)
  local held = tonumber(ARGV[6] or '0') - gen
  if held > base then
    base = held
    redis.call('HSET', KEYS[1], 'base:' .. lineage, base)
  end
elseif ARGV[4] ~= '1' and (expect == '' or expect ~= '=' .. (current or '')) then
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
    rings: MutableMapping[str, int | str],
    lineage: str,
    generation: int,
    *,
    floor: int,
    renew: bool,
    expect: str | None = None,
    held: int = 0,
) -> int:
    """`RING_FENCE_SCRIPT` over a dict (the in-process store). `expect`: None when
    unconfirmed, else the current lineage read before the confirmation ("" for none).
    `held`: the fence the caller holds for this lineage and generation (0: none)."""
    current = rings.get("current")
    top = int(rings.get("top", 0))
    known = rings.get(f"base:{lineage}")
    if current == lineage and known is not None:
        base = max(int(known), held - generation)
        rings[f"base:{lineage}"] = base
    elif not renew and (expect is None or expect != (current or "")):
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
