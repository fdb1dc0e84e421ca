"""`panopticon validate FILE...`: check MetricsConfigurations offline.

Prints every problem as `FILE: CONFIG: FIELD: MESSAGE` (warnings too), checks that
configs loaded together do not define conflicting families, and exits 1 when any
error was found, 0 otherwise.
"""

from __future__ import annotations

import argparse
import sys

from panopticon.render.loading import load_configs

HELP = "validate MetricsConfiguration files offline (every problem listed; exit 1 on errors)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="+", metavar="FILE", help="YAML/JSON files, or - for standard input")
    parser.add_argument("-q", "--quiet", action="store_true", help="print errors only, not warnings")


def run(args: argparse.Namespace) -> int:
    loaded = load_configs(args.files)
    for line in loaded.report(warnings=not args.quiet):
        print(line, file=sys.stdout)
    print(loaded.summary(), file=sys.stderr)
    return 1 if loaded.error_count else 0
