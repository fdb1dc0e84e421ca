"""`panopticon convert --from ksm-crs FILE...`: kube-state-metrics CRS configs to
MetricsConfigurations.

Prints one MetricsConfiguration per resource to standard output (or writes
`<name>.yaml` files to `--out DIR`); problems go to standard error, one line each,
naming the file and the field. Exit status: 0 when everything converted (warnings
allowed), 1 when anything could not be, in which case nothing is written.
"""

from __future__ import annotations

import argparse
import sys

from panopticon.convert.ksmcrs import Conversion, convert_ksm_crs, read_crds
from panopticon.convert.output import to_yaml, write_files

HELP = "convert kube-state-metrics custom resource state configs to MetricsConfigurations"
SOURCES = ("ksm-crs",)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--from", dest="source", required=True, choices=SOURCES, help="the input format")
    parser.add_argument(
        "files",
        nargs="+",
        metavar="FILE",
        help="CRS configs (YAML: CustomResourceStateMetrics, spec:, Helm values; - for stdin)",
    )
    parser.add_argument("--out", metavar="DIR", help="write one <config name>.yaml per config here")
    parser.add_argument(
        "--crds",
        nargs="+",
        action="extend",
        default=[],
        metavar="FILE",
        help="CustomResourceDefinitions (kubectl get crd -o yaml): to expand wildcards and check paths",
    )
    parser.add_argument(
        "--ignore-unknown",
        action="store_true",
        help="warn about unknown fields instead of failing (what kube-state-metrics does: it ignores them)",
    )
    parser.add_argument(
        "--name-prefix", default="ksm-", metavar="TEXT", help="prefix of the config names (default: ksm-)"
    )


def run(args: argparse.Namespace) -> int:
    texts = {"-": sys.stdin.read()} if "-" in args.files else None
    result = Conversion()
    crds = read_crds(args.crds, result) if args.crds else None
    convert_ksm_crs(
        args.files,
        crds=crds,
        ignore_unknown=args.ignore_unknown,
        name_prefix=args.name_prefix,
        texts=texts,
        out=result,
    )
    for problem in result.problems:
        print(problem, file=sys.stderr)
    errors = len(result.errors)
    if errors:
        print(f"{errors} error(s): nothing written", file=sys.stderr)
        return 1
    if args.out:
        for path in write_files(result.configs, args.out):
            print(f"wrote {path}", file=sys.stderr)
    else:
        sys.stdout.write(to_yaml(result.configs))
        sys.stdout.flush()
    print(f"converted {len(result.configs)} resource(s)", file=sys.stderr)
    return 0
