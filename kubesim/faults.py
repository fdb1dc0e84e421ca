"""Request-level faults and the request log (README.md, "Faults").

`Faults` holds what the next requests will suffer (429 in JSON or text form,
503 as during start-up, 503 for one group-version's discovery document) and how
watch bytes are cut (random chunk boundaries,
preferably inside UTF-8 sequences). Faults on open watches (ERROR events, close,
abort, stall) act on `Watch` objects directly; see `Simulator`.
"""

from __future__ import annotations

import itertools
import random
import re
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from kubesim import errors

ThrottleForm = Literal["json", "text"]
_CONTINUATION = re.compile(rb"[\x80-\xbf]")


@dataclass(slots=True)
class Throttle:
    """Answer the next `count` matching requests 429 (None: until cleared)."""

    count: int | None = 1
    form: ThrottleForm = "text"
    retry_after: int = 1
    path_prefix: str = ""
    verbs: tuple[str, ...] = ()


@dataclass(slots=True)
class Unavailable:
    """Answer matching requests 503 ServiceUnavailable, by count or until a time."""

    count: int | None = None
    until: float = 0.0
    """`time.monotonic()` deadline (0: by count only)."""


@dataclass(frozen=True, slots=True)
class DiscoveryOutage:
    """Answer one group-version's discovery document (`/apis/{group}/{version}`, or
    `/api/v1`) 503 until a time: an aggregated API server down, or a CRD group whose
    document fails to load. Its objects stay listable, as with a real aggregator whose
    discovery merely timed out."""

    path: str
    until: float
    """`time.monotonic()` deadline."""


@dataclass(slots=True)
class ChunkSplit:
    """Cut every watch write into pieces of 1..`max_piece` bytes, sent apart."""

    max_piece: int = 64
    utf8: bool = True
    """Prefer cutting inside multi-byte UTF-8 sequences when the data has any."""
    delay: float = 0.001
    """Seconds between pieces, so they reach the client in separate reads."""


@dataclass(slots=True)
class Faults:
    throttles: list[Throttle] = field(default_factory=list)
    unavailable: Unavailable | None = None
    discovery_outages: list[DiscoveryOutage] = field(default_factory=list)
    split: ChunkSplit | None = None
    rng: random.Random = field(default_factory=lambda: random.Random(0))  # noqa: S311 - reproducible faults

    def clear(self) -> None:
        self.throttles.clear()
        self.unavailable = None
        self.discovery_outages.clear()
        self.split = None

    def check(self, *, path: str, verb: str) -> errors.ApiError | None:
        """The fault this request suffers, if any (consumes one use of it)."""
        una = self.unavailable
        if una is not None:
            if una.until and time.monotonic() >= una.until:
                self.unavailable = None
            elif una.count is None or una.count > 0:
                if una.count is not None:
                    una.count -= 1
                    if una.count == 0:
                        self.unavailable = None
                return errors.service_unavailable()
        if self.discovery_outages and self._discovery_down(path):
            # As kube-aggregator's proxy answers for an unavailable APIService: plain
            # text, no Retry-After (so clients do not wait it out, they fail discovery).
            return errors.ApiError(503, text="service unavailable\n")
        for t in self.throttles:
            if t.path_prefix and not path.startswith(t.path_prefix):
                continue
            if t.verbs and verb not in t.verbs:
                continue
            if t.count is not None:
                t.count -= 1
                if t.count <= 0:
                    self.throttles.remove(t)
            if t.form == "json":
                return errors.too_many_requests_json(t.retry_after)
            return errors.too_many_requests_text(t.retry_after)
        return None

    def _discovery_down(self, path: str) -> bool:
        now = time.monotonic()
        self.discovery_outages = [o for o in self.discovery_outages if o.until > now]
        return any(o.path == path.rstrip("/") for o in self.discovery_outages)

    def pieces(self, data: bytes) -> list[bytes]:
        """`data` cut as the chunk-split fault says (one piece when it is off)."""
        split = self.split
        if split is None or len(data) <= 1:
            return [data]
        cuts: set[int] = set()
        if split.utf8:
            inside = [m.start() for m in _CONTINUATION.finditer(data)]
            if inside:
                cuts.update(
                    self.rng.sample(inside, k=min(len(inside), 1 + len(data) // split.max_piece // 4))
                )
        pos = 0
        while pos < len(data):
            pos += self.rng.randint(1, max(1, split.max_piece))
            if pos < len(data):
                cuts.add(pos)
        bounds = [0, *sorted(c for c in cuts if 0 < c < len(data)), len(data)]
        return [data[a:b] for a, b in itertools.pairwise(bounds) if b > a]

    def describe(self) -> dict[str, Any]:
        return {
            "throttles": [asdict(t) for t in self.throttles],
            "unavailable": asdict(self.unavailable) if self.unavailable else None,
            "discovery": [asdict(o) for o in self.discovery_outages],
            "split": asdict(self.split) if self.split else None,
        }


@dataclass(slots=True)
class RequestRecord:
    seq: int
    time: float
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    user: str = ""
    verb: str = ""
    status: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class RequestLog:
    """The last `size` requests, for assertions in the style of kmock."""

    def __init__(self, size: int) -> None:
        self._records: deque[RequestRecord] = deque(maxlen=max(1, size))
        self._seq = 0

    def add(self, *, method: str, path: str, query: dict[str, str], headers: dict[str, str]) -> RequestRecord:
        self._seq += 1
        rec = RequestRecord(self._seq, time.time(), method, path, query, headers)
        self._records.append(rec)
        return rec

    def since(self, seq: int = 0) -> list[RequestRecord]:
        return [r for r in self._records if r.seq > seq]

    def clear(self) -> None:
        self._records.clear()

    @property
    def last_seq(self) -> int:
        return self._seq
