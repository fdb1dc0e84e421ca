"""Settings shared by the shard and the aggregator: how to reach the store.

Parsed once at start-up from flags, with environment fallbacks so a Secret can carry
the password (`PANOPTICON_REDIS_URL`, `PANOPTICON_REDIS_PASSWORD`, `REDIS_PASSWORD`).
"""

from __future__ import annotations

import argparse
import os

from panopticon import flags
from panopticon.flags import UsageError
from panopticon.store.layout import DEFAULT_SLOTS, Layout
from panopticon.store.redisstore import RedisOptions


def add_store_arguments(parser: argparse.ArgumentParser, *, redis_required: bool) -> None:
    group = parser.add_argument_group("store")
    group.add_argument(
        "--redis",
        default=os.environ.get("PANOPTICON_REDIS_URL"),
        required=redis_required and not os.environ.get("PANOPTICON_REDIS_URL"),
        metavar="URL",
        help="redis://[:password@]host:port/db or rediss://... (env PANOPTICON_REDIS_URL)",
    )
    group.add_argument("--redis-cluster", action="store_true", help="the URL points at a Redis Cluster")
    group.add_argument(
        "--redis-ca-file",
        type=flags.ca_bundle,
        metavar="FILE",
        help="CA bundle for rediss:// (default: system CAs)",
    )
    group.add_argument("--redis-timeout", type=flags.seconds, default=10.0, metavar="SECONDS")
    group.add_argument(
        "--prefix",
        type=flags.key_prefix,
        default="pan",
        help="key prefix, to share one Redis between installations",
    )
    group.add_argument(
        "--buckets",
        type=flags.power_of_two,
        default=4096,
        help="ownership buckets (power of two; same everywhere)",
    )
    group.add_argument(
        "--slots",
        type=flags.power_of_two,
        default=DEFAULT_SLOTS,
        help="storage slots (power of two, at most --buckets; same everywhere)",
    )


def redis_options(args: argparse.Namespace) -> RedisOptions:
    if args.redis_ca_file and not str(args.redis).startswith("rediss://"):
        raise UsageError("--redis-ca-file: only used with a rediss:// (TLS) URL in --redis")
    password = os.environ.get("PANOPTICON_REDIS_PASSWORD") or os.environ.get("REDIS_PASSWORD")
    return RedisOptions(
        url=args.redis,
        password=password or None,
        cluster=args.redis_cluster,
        ca_file=args.redis_ca_file,
        timeout=args.redis_timeout,
    )


def layout(args: argparse.Namespace) -> Layout:
    if args.slots > args.buckets:
        raise UsageError(f"--slots {args.slots}: more than --buckets {args.buckets}")
    return Layout(prefix=args.prefix, buckets=args.buckets, slots=args.slots)
