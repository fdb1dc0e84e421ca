"""Per-kind render state: what this shard last stored for each owned object.

The shard keeps no objects and no rendered bytes, only, per owned object, one int:
the families present (a bit mask over the kind's family table), the object's
resourceVersion (64 bits), its bucket (16 bits) and a 64-bit digest of the rendered
text. The digest tells an update that changes no series (most watch events) from one
that does, and the mask which fields to delete when a family stops appearing.

The same record is the reflector's view of the kind (`TableView`): which objects the
shard holds and at which resourceVersion, so that a relist skips unchanged objects
without a second uid-keyed map. That is what keeps a shard under the 300 bytes per
owned object it may spend: the uid string and one dict entry with its int.

When anything an object shows changes, all its families are written again: a few
more fields per real change, in exchange for one small int per object.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from panopticon.kube.discovery import ResourceRef
from panopticon.kube.events import Event
from panopticon.kube.view import Seen
from panopticon.render.exposition import encode
from panopticon.render.program import Program, RenderError
from panopticon.sharding.buckets import BucketSpace, ShardFilter
from panopticon.store.batch import Op

DIGEST_BITS = 64
DIGEST_MASK = (1 << DIGEST_BITS) - 1
STALE = 1 << (DIGEST_BITS - 1)
"""Set in a digest by `invalidate`; a render's digest never has it (63 bits)."""
BUCKET_BITS = 16
VERSION_SHIFT = DIGEST_BITS + BUCKET_BITS
VERSION_BITS = 64
VERSION_FIELD = ((1 << VERSION_BITS) - 1) << VERSION_SHIFT
MASK_SHIFT = VERSION_SHIFT + VERSION_BITS
_HASHED = 1 << (VERSION_BITS - 1)
MAX_MASKS = 1024
"""Distinct sets of rendered families whose bit masks a table remembers."""
Admit = Callable[[str, str, int, dict[str, str]], bool]
"""(config, uid, bucket, the object's families under that config) -> written or not."""


def version_key(rv: str) -> int:
    """A resourceVersion as the table keeps it: never 0 (0 is "unknown": the next
    event re-renders). Only equality matters (RVs are opaque): etcd's decimal RVs
    are kept exactly, others by a 63-bit hash."""
    if rv.isdigit() and rv.isascii() and len(rv) < 18 and (rv[0] != "0" or rv == "0"):
        return int(rv) + 1
    return _HASHED | (hash(rv) & (_HASHED - 1)) if rv else 0


@dataclass(slots=True)
class Rendered:
    """The outcome of applying one event: what to store for the object, and render
    errors by config. `sets` are (family, lines) to write, `dels` families to delete."""

    uid: str = ""
    bucket: int = 0
    sets: list[tuple[str, bytes]] = field(default_factory=list)
    dels: list[str] = field(default_factory=list)
    errors: list[tuple[str, RenderError]] = field(default_factory=list)
    changed: bool = False

    @property
    def ops(self) -> list[Op]:
        """The same as loose operations (tests, and callers that are not hot)."""
        out = [Op(family, self.bucket, self.uid, lines) for family, lines in self.sets]
        out.extend(Op(family, self.bucket, self.uid, None) for family in self.dels)
        return out


class KindTable:
    """Renders one target kind's owned objects through its programs, with digests."""

    def __init__(
        self, programs: Iterable[Program], space: BucketSpace, *, namespaced: bool | None = None
    ) -> None:
        self.space = space
        self.namespaced = namespaced
        self.programs: tuple[Program, ...] = tuple(programs)
        self._family_bits: dict[str, int] = {}
        self._families: list[str] = []
        self._state: dict[str, int] = {}
        self._masks: dict[tuple[str, ...], int] = {}
        self.admit: Admit | None = None
        """Whether an object's series under a capped config are written (set by the
        target when a config of the kind has a cap: `shard.limiting`)."""
        for program in self.programs:
            for header in program.families:
                self._bit(header.name)

    def __len__(self) -> int:
        return len(self._state)

    def __contains__(self, uid: object) -> bool:
        return uid in self._state

    def uids(self) -> Iterator[str]:
        return iter(self._state)

    def has(self, uid: str, family: str) -> bool:
        """Whether the object's last render (as stored) has lines in `family`."""
        holds = self.holders(family)
        return holds is not None and holds(uid)

    def holders(self, family: str) -> Callable[[str], bool] | None:
        """`has(uid, family)` as a test of uids alone (garbage collection asks it of
        every stored field); None when no object of this kind can have `family`."""
        bit = self._family_bits.get(family)
        if bit is None:
            return None
        shift = MASK_SHIFT + bit
        get = self._state.get

        def holds(uid: str) -> bool:
            state = get(uid)
            return state is not None and (state >> shift) & 1 == 1

        return holds

    def _bit(self, family: str) -> int:
        bit = self._family_bits.get(family)
        if bit is None:
            # Append-only between compactions: masks stored before a config change
            # stay meaningful until every object was rendered again.
            bit = self._family_bits[family] = len(self._families)
            self._families.append(family)
        return bit

    def compact(self) -> int:
        """Give up the bits of families that no program renders and no object holds
        any more; return how many were dropped.

        Each family a kind's configs ever defined keeps a bit, and a bit's position
        sets the size of every object's int: a family renamed every few minutes would
        add four bytes per object every 30 renames, for as long as the shard runs.
        Called at the end of a sync (every object then rendered by the current
        programs): dead bits are dropped, the others renumbered, every record's mask
        rewritten (one dict lookup per object)."""
        live = {header.name for program in self.programs for header in program.families}
        if len(self._families) == len(live):
            return 0  # every family known is a current one (the usual case: no scan)
        held = 0
        for value in self._state.values():
            held |= value
        held >>= MASK_SHIFT
        keep = [f for bit, f in enumerate(self._families) if f in live or (held >> bit) & 1]
        dropped = len(self._families) - len(keep)
        if not dropped:
            return 0
        bits = {family: bit for bit, family in enumerate(keep)}
        moved = {old: bits[family] for old, family in enumerate(self._families) if family in bits}
        renumbered: dict[int, int] = {}
        low = (1 << MASK_SHIFT) - 1
        state = self._state
        for uid, value in state.items():
            mask = value >> MASK_SHIFT
            new = renumbered.get(mask)
            if new is None:
                new = 0
                for old, bit in moved.items():
                    if (mask >> old) & 1:
                        new |= 1 << bit
                renumbered[mask] = new
            state[uid] = (value & low) | (new << MASK_SHIFT)
        self._families, self._family_bits = keep, bits
        self._masks.clear()
        return dropped

    def set_programs(self, programs: Iterable[Program]) -> None:
        """New programs for this kind; objects are re-rendered as the caller replays them."""
        self.programs = tuple(programs)
        for program in self.programs:
            for header in program.families:
                self._bit(header.name)

    def families_of(self, state: int) -> Iterator[str]:
        mask = state >> MASK_SHIFT
        bit = 0
        while mask:
            if mask & 1:
                yield self._families[bit]
            mask >>= 1
            bit += 1

    def apply(self, event: str, obj: Any, uid: str, bucket: int | None = None, rv: str = "") -> Rendered:
        """Apply one ADDED/MODIFIED/DELETED event for an owned object (`bucket`: its
        bucket when the caller already computed it; `rv`: its resourceVersion)."""
        old = self._state.get(uid)
        if event == "DELETED":
            if old is None:
                return Rendered(uid)
            del self._state[uid]
            return Rendered(uid, _bucket(old), [], list(self.families_of(old)), [], True)
        if bucket is None:
            bucket = _bucket(old) if old is not None else self.space.bucket(uid)
        errors: list[tuple[str, RenderError]] = []
        programs = self.programs
        if len(programs) == 1:  # the usual case: one config per kind
            program = programs[0]
            result = program.render(obj, namespaced=self.namespaced)
            if result.errors:
                errors = [(program.config_name, e) for e in result.errors]
            families = result.families
            if self.admit is not None and not self.admit(program.config_name, uid, bucket, families):
                families = {}
        else:
            families = {}
            for program in programs:
                result = program.render(obj, namespaced=self.namespaced)
                if result.errors:
                    errors.extend((program.config_name, e) for e in result.errors)
                admit = self.admit
                if admit is not None and not admit(program.config_name, uid, bucket, result.families):
                    continue
                families.update(result.families)  # family names are unique across a kind's programs
        names = tuple(families)
        mask = self._masks.get(names)
        if mask is None:
            mask = self._mask_of(names)
        state = (
            (mask << MASK_SHIFT)
            | (version_key(rv) << VERSION_SHIFT)
            | (bucket << DIGEST_BITS)
            | (hash(tuple(families.values())) & (STALE - 1))
        )
        if old is not None and (old ^ state) & ~VERSION_FIELD == 0:
            # Nothing new to store (the same event again, or a new resourceVersion that
            # shows nothing new): only the version, if it changed, is recorded.
            if old != state:
                self._state[uid] = state
            return Rendered(uid, bucket, [], [], errors, False)
        self._state[uid] = state
        try:
            sets = [(family, text.encode()) for family, text in families.items()]
        except UnicodeEncodeError:  # lone surrogates (hostile input): replaced
            sets = [(family, encode(text)) for family, text in families.items()]
        dels: list[str] = []
        if old is not None:
            gone = (old >> MASK_SHIFT) & ~mask
            if gone:
                dels = list(self.families_of(gone << MASK_SHIFT))
        return Rendered(uid, bucket, sets, dels, errors, True)

    def _mask_of(self, names: tuple[str, ...]) -> int:
        """The bit mask of `names` (remembered: a kind's renders show few distinct sets
        of families, and building the mask costs a call per family)."""
        mask = 0
        for family in names:
            mask |= 1 << self._bit(family)
        if len(self._masks) >= MAX_MASKS:
            self._masks.clear()
        self._masks[names] = mask
        return mask

    def version_of(self, uid: str) -> int | None:
        """The object's `version_key` (0: unknown), None when the table lacks it."""
        state = self._state.get(uid)
        return None if state is None else (state >> VERSION_SHIFT) & ((1 << VERSION_BITS) - 1)

    def forget_versions(self) -> None:
        """Forget every resourceVersion (not the objects): the next sync delivers every
        object again, for the table to re-render (new programs, a lost store)."""
        state = self._state
        for uid, value in state.items():
            state[uid] = value & ~VERSION_FIELD

    def forget_version(self, uid: str) -> None:
        """Forget one object's resourceVersion: the next sync delivers it again."""
        state = self._state.get(uid)
        if state is not None:
            self._state[uid] = state & ~VERSION_FIELD

    def withdraw(self, uid: str, families: frozenset[str]) -> tuple[int, list[str]] | None:
        """Take `families` out of the object's record, as if its last render lacked
        them, and return its bucket and those it held (to delete): a capped config's
        series past its cap. The digest is marked stale, so the next render of the
        object writes again whatever it then has. None if the object is unknown."""
        state = self._state.get(uid)
        if state is None:
            return None
        bits = 0
        for family in families:
            bit = self._family_bits.get(family)
            if bit is not None:
                bits |= 1 << bit
        held = (state >> MASK_SHIFT) & bits
        self._state[uid] = (state & ~(held << MASK_SHIFT)) | STALE
        return _bucket(state), list(self.families_of(held << MASK_SHIFT))

    def drop(self, uids: Iterable[str]) -> None:
        """Forget objects silently (no store operations)."""
        for uid in uids:
            self._state.pop(uid, None)

    def outside(self, buckets: frozenset[int]) -> list[str]:
        """The uids whose stored bucket is not in `buckets` (no hashing)."""
        return [uid for uid, state in self._state.items() if _bucket(state) not in buckets]

    def forget(self, buckets: frozenset[int] | set[int]) -> int:
        """Drop the state of objects in `buckets` (ownership moved away); no store operations."""
        gone = [uid for uid, state in self._state.items() if _bucket(state) in buckets]
        for uid in gone:
            del self._state[uid]
        return len(gone)

    def invalidate(self) -> None:
        """Forget every digest (not the objects): the next event for each object rewrites it.

        Used when the store lost its data (a new epoch). Idempotent: a second epoch
        change before an object is rendered again leaves it stale, not current."""
        state = self._state
        for uid, value in state.items():
            state[uid] = value | STALE

    def clear_ops(self) -> list[Op]:
        """Delete everything this table stored (its kind is no longer targeted)."""
        ops = [
            Op(f, _bucket(state), uid, None)
            for uid, state in self._state.items()
            for f in self.families_of(state)
        ]
        self._state.clear()
        return ops

    def bucket_of(self, uid: str) -> int | None:
        state = self._state.get(uid)
        return None if state is None else _bucket(state)


def _bucket(state: int) -> int:
    return (state >> DIGEST_BITS) & ((1 << BUCKET_BITS) - 1)


class TableView:
    """A `KindTable` as its reflector's view (`panopticon.kube.view.ObjectView`).

    The reflector asks it what an event means (new object, new resourceVersion,
    repeat) and the table records the answer when the event is rendered, so an
    object leaves only when its DELETED reaches the table, never before its
    families are known. An event the consumer drops (a bucket not owned) is not
    recorded and is offered again by the next sync."""

    __slots__ = ("resource", "table")

    def __init__(self, table: KindTable, resource: ResourceRef) -> None:
        self.table = table
        self.resource = resource

    def apply(self, etype: str, obj: dict[str, Any], uid: str, rv: str) -> Event | None:
        known = self.table.version_of(uid)
        if etype == "DELETED":
            return None if known is None else Event("DELETED", obj, uid, rv)
        if known is None:
            return Event("ADDED", obj, uid, rv)
        if known and known == version_key(rv):  # 0: unknown (forgotten, or an empty RV)
            return None
        return Event("MODIFIED", obj, uid, rv)

    def listed(self, obj: dict[str, Any], uid: str, rv: str, seen: Seen) -> Event | None:
        seen.add(uid)
        return self.apply("ADDED", obj, uid, rv)

    def vanished(self, seen: Seen) -> list[Event]:
        ref = self.resource
        return [
            Event(
                "DELETED",
                {"apiVersion": ref.api_version, "kind": ref.kind, "metadata": {"uid": uid}},
                uid,
                "",
                True,
            )
            for uid in self.table.uids()
            if uid not in seen
        ]

    def retain(self, shard_filter: ShardFilter, keep: Callable[[str], bool]) -> int:
        # By the bucket each record holds: hashing every uid again would block the
        # event loop ~0.4 s per 100,000 objects at every target restart.
        dropped = self.table.outside(shard_filter.buckets)
        self.table.drop(dropped)
        return len(dropped)
