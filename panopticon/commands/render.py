"""`panopticon render --config FILE... --object FILE...`: render offline.

Prints the exposition of every valid config whose target (group and kind) matches
each object, as Prometheus text 0.0.4 or OpenMetrics. Config problems and per-object
render errors go to standard error. Exit status: 1 when a config was invalid (the
others still render) or, with --strict, when any object had render errors.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from typing import Any

from panopticon import flags
from panopticon.config.documents import read_documents
from panopticon.flags import UsageError
from panopticon.render.exposition import Format
from panopticon.render.loading import load_configs
from panopticon.render.offline import render_exposition
from panopticon.sharding.limits import order_key

HELP = "render configs against objects from files, offline, as Prometheus exposition"
MAX_ERRORS_SHOWN = 20


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", "-c", nargs="+", action="extend", required=True, metavar="FILE")
    parser.add_argument(
        "--object",
        "-o",
        nargs="+",
        action="extend",
        required=True,
        metavar="FILE",
        help="object files (YAML/JSON, multi-document and List supported; - for stdin)",
    )
    parser.add_argument("--format", choices=[f.value for f in Format], default=Format.TEXT.value)
    parser.add_argument("--output", metavar="FILE", help="write the exposition here instead of stdout")
    parser.add_argument("--strict", action="store_true", help="exit 1 if any object had render errors")
    parser.add_argument(
        "--max-series-per-config",
        type=flags.integer(minimum=0),
        default=0,
        metavar="SERIES",
        help="cap every config's series at this many, as the shards do (0: only spec.limits.series)",
    )


def _objects(files: list[str]) -> Iterator[Any]:
    for path in files:
        for doc in read_documents(path):
            yield doc.body


def run(args: argparse.Namespace) -> int:
    loaded = load_configs(args.config)
    for line in loaded.report(warnings=False):
        print(line, file=sys.stderr)
    expo = render_exposition(
        loaded.resolution,
        _objects(args.object),
        max_series_per_config=args.max_series_per_config or None,
        order=order_key,
    )
    data = expo.to_bytes(Format(args.format))
    if args.output:
        try:
            with open(args.output, "wb") as fh:
                fh.write(data)
        except OSError as e:
            raise UsageError(f"--output {args.output}: {e.strerror or e}") from e
    else:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    for ref in expo.duplicates:
        print(f"skipped {ref}: an earlier object has the same kind, namespace and name", file=sys.stderr)
    for err in expo.errors[:MAX_ERRORS_SHOWN]:
        print(f"render error: {err}", file=sys.stderr)
    if len(expo.errors) > MAX_ERRORS_SHOWN:
        print(f"... and {len(expo.errors) - MAX_ERRORS_SHOWN} more render errors", file=sys.stderr)
    for config, count in sorted(expo.limits.items()):
        if count.dropped:
            print(
                f"config {config}: {count.dropped} of {count.kept + count.dropped} series not written "
                f"(cap {count.cap}; kept the objects first in uid-hash order)",
                file=sys.stderr,
            )
    print(
        f"rendered {expo.objects} (object, config) pair(s): {expo.series_count()} series in "
        f"{sum(1 for v in expo.lines.values() if v)} families, {len(expo.errors)} render error(s)",
        file=sys.stderr,
    )
    if loaded.error_count or (args.strict and expo.errors):
        return 1
    return 0
