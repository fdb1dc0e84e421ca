"""`python -m tests.support.raising_run <panopticon arguments>`: the `panopticon`
command with one extra expression function, `explode(x)`, that raises `RuntimeError`
(not one of the project's errors) when `x` is the text 'boom' and returns 1 otherwise.

It stands for a bug, or an input nobody thought of, deep inside a compiled program:
a config that calls it compiles like any other, and rendering an object named `boom`
raises from inside the program. Everything else is the real command."""

from __future__ import annotations

import sys
from typing import Any

from panopticon.cli import main
from panopticon.render.expr.functions import FUNCTIONS, Env, Function


def _explode(env: Env, args: list[Any]) -> int:
    if args[0] == "boom":
        raise RuntimeError("injected fault for boom")
    return 1


FUNCTIONS["explode"] = Function("explode", 1, 1, _explode, pure=False)

if __name__ == "__main__":
    sys.exit(main())
