"""The `panopticon` command.

Core commands live in `panopticon.commands.*`; the shard, aggregator and kubesim
(simulator: `sim`, `demo`) packages plug their own commands in through the
`panopticon.commands` entry-point group, so the core never imports them (the layering
rule) and a command's dependencies are imported only when that command runs.

A command module exposes `HELP: str`, `add_arguments(parser)` and
`run(args) -> int`.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys
from collections.abc import Callable, Sequence
from importlib.metadata import entry_points
from types import ModuleType

from panopticon import __version__
from panopticon.errors import PanopticonError
from panopticon.flags import Parser

CORE_COMMANDS = {
    "validate": "panopticon.commands.validate",
    "render": "panopticon.commands.render",
    "run": "panopticon.commands.run",
    "convert": "panopticon.commands.convert",
}


def _command_modules() -> dict[str, str]:
    modules = dict(CORE_COMMANDS)
    for ep in entry_points(group="panopticon.commands"):
        # An installation may lack a plugin's package (the image ships no simulator):
        # its command is then not offered, rather than failing when chosen.
        if _importable(ep.value):
            modules.setdefault(ep.name, ep.value)
    return modules


def _importable(module_name: str) -> bool:
    try:
        return importlib.util.find_spec(module_name) is not None
    except (ImportError, ValueError):
        return False


def _load(module_name: str) -> ModuleType:
    return importlib.import_module(module_name)


def build_parser(commands: dict[str, str], selected: str | None) -> argparse.ArgumentParser:
    parser = Parser(
        prog="panopticon",
        description="Kubernetes state metrics from MetricsConfiguration objects, sharded over Redis.",
    )
    parser.add_argument("--version", action="version", version=f"panopticon {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name, module_name in sorted(commands.items()):
        if selected is not None and name != selected:
            # Only the chosen command's module is imported; the rest get a stub entry.
            sub.add_parser(name, add_help=False)
            continue
        module = _load(module_name)
        cmd = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(cmd)
        cmd.set_defaults(_module=module)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    commands = _command_modules()
    selected = args_list[0] if args_list and args_list[0] in commands else None
    parser = build_parser(commands, selected)
    args = parser.parse_args(args_list)
    module: ModuleType = args._module
    return run_command(module.run, args, prog=f"panopticon {args.command}")


def run_command(run: Callable[[argparse.Namespace], int], args: argparse.Namespace, *, prog: str) -> int:
    """Run a command; a PanopticonError (a bad flag value, an unreachable store, a
    broken kubeconfig...) is printed as one line and exits 2, also when it ended a
    task group (`panopticon run` starts its components in one)."""
    try:
        return int(run(args))
    except PanopticonError as e:
        print(f"{prog}: {e}", file=sys.stderr)
        return 2
    except BaseExceptionGroup as group:
        errors = _expected_errors(group)
        if errors is None:
            raise
        for message in dict.fromkeys(str(e) for e in errors):
            print(f"{prog}: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _expected_errors(group: BaseExceptionGroup[BaseException]) -> list[PanopticonError] | None:
    """The group's PanopticonErrors, or None when it holds anything else (a bug,
    which keeps its traceback)."""
    found: list[PanopticonError] = []
    for error in group.exceptions:
        if isinstance(error, PanopticonError):
            found.append(error)
        elif isinstance(error, BaseExceptionGroup):
            inner = _expected_errors(error)
            if inner is None:
                return None
            found.extend(inner)
        else:
            return None
    return found


if __name__ == "__main__":
    sys.exit(main())
