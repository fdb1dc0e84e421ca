"""Memory management for bulk writes to the simulator, and their result shape.

Split out of `simulator.py` so that module holds the simulator's control API
while this one holds how a large load is kept fast: cyclic GC paused while it
writes, and the long-lived stored versions frozen out of later collections.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator
from typing import Any

from kubesim.storage import ObjVersion

FREEZE_AFTER = 10_000
"""Loads at least this big end with `gc.freeze()`."""


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic GC during a bulk write: it creates no cycles, and with 100,000 stored
    versions each collection would rescan them all (halves load time)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def freeze_if_large(n: int) -> None:
    """After a load of `n` objects: freeze the heap if the load reached `FREEZE_AFTER`."""
    if n >= FREEZE_AFTER:
        gc.freeze()  # stored versions live long: keep later collections from rescanning them


def bulk_result(v: ObjVersion) -> dict[str, Any]:
    """The result of one successful bulk operation, naming the version it wrote."""
    return {
        "code": 200,
        "name": v.name,
        "namespace": v.namespace,
        "uid": v.uid,
        "resourceVersion": str(v.rev),
    }
