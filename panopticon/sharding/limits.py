"""The keep order of series caps: objects by FNV-1a 64 of their uid, the bucket order.

`panopticon.render.limits` holds the rule (the longest prefix, in this order, whose
series fit the cap); the order lives here, with the hash the buckets are made of,
because it is what lets shards apply the rule bucket by bucket (`shard/limiting.py`).
"""

from __future__ import annotations

from panopticon.sharding.buckets import fnv1a64


def order_key(uid: str) -> tuple[int, str]:
    """An object's place in the keep order (ties, which need a hash collision, by uid)."""
    return fnv1a64(uid), uid
