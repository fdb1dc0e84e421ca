"""Compile an expression AST into a closure, once per configuration change.

`compile_expression(text, params)` checks everything that can be checked without an
object (syntax, parameter names, function names and arities, constant regular
expressions, constant sub-expressions) and returns an `Expression` whose
`evaluate(env)` runs the closures against one object's parameters. Evaluation
raises only `EvaluationError`.

Regular expressions (`=~`, `!~`) run on RE2, which matches in linear time, so an
untrusted pattern cannot backtrack catastrophically; pattern and subject sizes are
bounded as well. String results are capped so that `+` cannot build huge strings.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, NamedTuple

import re2

from panopticon.errors import EvaluationError, ExpressionError, MissingValueError
from panopticon.render.expr.floats import go_div, go_mod, go_pow, to_float
from panopticon.render.expr.functions import ALIASES, FUNCTIONS, Env
from panopticon.render.expr.syntax import Binary, Call, ListExpr, Literal, Name, Node, Ternary, Unary, parse
from panopticon.render.expr.values import describe, equals, to_bool, to_number
from panopticon.text import numeric_or_none, to_text

Fn = Callable[[Env], Any]

MAX_PATTERN_LENGTH = 1024
MAX_MATCH_SUBJECT = 1 << 20
"""Longest string a regular expression is matched against (1 MiB, linear time)."""
MAX_STRING_RESULT = 1 << 16
"""Longest string `+` may build (64 KiB)."""

_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False
_RE2_OPTIONS.max_mem = 8 << 20


@dataclass(frozen=True, slots=True)
class Expression:
    """A compiled expression: `evaluate(env)` maps parameter values to a result."""

    text: str
    evaluate: Fn = field(repr=False, compare=False)
    constant: bool
    warnings: tuple[str, ...] = ()
    indicator: Indicator | None = None
    """Set when the expression is `int(param == 'text')` (or `!=`, `toInt`, the
    literal first): its result depends only on whether the param holds that text.
    Renderers use it to evaluate a whole state set with one lookup."""
    call: BoundCall | None = None
    """When the expression is a call of a function on a bare param and constants
    (`total_resource_requests(obj, 'cpu')`): which, for renderers that specialise."""


class Indicator(NamedTuple):
    """`int(param == text)`, or `int(param != text)` when `equal` is false."""

    param: str
    text: str
    equal: bool


@dataclass(frozen=True, slots=True)
class BoundCall:
    """A call `function(param, *constants)`; `function` is the canonical name."""

    function: str
    param: str
    constants: tuple[Any, ...]


def compile_expression(
    text: str, params: frozenset[str] | set[str], *, constants: dict[str, Any] | None = None
) -> Expression:
    """Compile `text`; names must be among `params`. Raises ExpressionError.

    `constants` are params whose value is fixed by the config (`value: cpu`): they
    are substituted at compile time, so `total_resource_requests(obj, resourceType)`
    checks `resourceType` once and folds whatever depends only on constants."""
    compiler = _Compiler(frozenset(params), constants or {})
    node = parse(text)
    fn, const = compiler.compile(node)
    indicator = None if const is not _NOT_CONST else _indicator(node, compiler.constants)
    call = compiler.bound.get(id(node))
    return Expression(text, fn, const is not _NOT_CONST, tuple(compiler.warnings), indicator, call)


def _indicator(node: Node, constants: dict[str, Any]) -> Indicator | None:
    """The indicator `node` is, if it is `int(param == 'text')` or `!=`, with a string literal."""
    if not isinstance(node, Call) or len(node.args) != 1:
        return None
    alias = ALIASES.get(node.func)
    test = node.args[0]
    if (alias.target if alias else node.func) != "int" or not isinstance(test, Binary):
        return None
    if test.op not in ("==", "!="):
        return None
    for name, literal in ((test.left, test.right), (test.right, test.left)):
        if (
            isinstance(name, Name)
            and name.name not in constants
            and isinstance(literal, Literal)
            and type(literal.value) is str
        ):
            return Indicator(name.name, literal.value, test.op == "==")
    return None


class _NotConst:
    __slots__ = ()


_NOT_CONST: Any = _NotConst()


@lru_cache(maxsize=256)
def _regex(pattern: str) -> Any:
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise EvaluationError(f"regular expression longer than {MAX_PATTERN_LENGTH} characters")
    try:
        return re2.compile(pattern, _RE2_OPTIONS)
    except re2.error as e:
        msg = e.args[0].decode() if e.args and isinstance(e.args[0], bytes) else str(e)
        raise EvaluationError(f"invalid regular expression {describe(pattern)}: {msg}") from None


def _match(subject: Any, regex: Any) -> bool:
    text = to_text(subject)
    if len(text) > MAX_MATCH_SUBJECT:
        raise EvaluationError(f"string of {len(text)} characters is too long to match")
    return regex.search(text) is not None


def _add(a: Any, b: Any) -> Any:
    # Two numbers or numeric strings add as numbers ('1' + '2' == 3: params arrive as
    # strings); otherwise a string on either side concatenates.
    na, nb = numeric_or_none(a), numeric_or_none(b)
    if na is not None and nb is not None:
        return to_float(na) + to_float(nb)
    if (type(a) is str and (type(b) is str or nb is not None)) or (type(b) is str and na is not None):
        out = to_text(a) + to_text(b)
        if len(out) > MAX_STRING_RESULT:
            raise EvaluationError(f"string result longer than {MAX_STRING_RESULT} characters")
        return out
    if a is None or b is None:
        raise MissingValueError("operand of + is nil")
    raise EvaluationError(f"cannot add {describe(a)} and {describe(b)}")


def _div(a: Any, b: Any) -> float:
    return go_div(to_number(a, "dividend"), to_number(b, "divisor"))


def _mod(a: Any, b: Any) -> float:
    return go_mod(to_number(a, "dividend"), to_number(b, "divisor"))


def _pow(a: Any, b: Any) -> float:
    return go_pow(to_number(a, "base"), to_number(b, "exponent"))


def _order(op: str) -> Callable[[Any, Any], bool]:
    def compare(a: Any, b: Any) -> bool:
        na, nb = numeric_or_none(a), numeric_or_none(b)
        if na is None or nb is None:
            if type(a) is str and type(b) is str:
                na, nb = a, b  # type: ignore[assignment]
            elif a is None or b is None:
                raise MissingValueError(f"operand of {op} is nil")
            else:
                raise EvaluationError(f"cannot compare {describe(a)} {op} {describe(b)}")
        if op == "<":
            return na < nb  # type: ignore[operator]
        if op == "<=":
            return na <= nb  # type: ignore[operator]
        if op == ">":
            return na > nb  # type: ignore[operator]
        return na >= nb  # type: ignore[operator]

    return compare


_BINARY: dict[str, Callable[[Any, Any], Any]] = {
    "+": _add,
    "-": lambda a, b: to_number(a, "operand") - to_number(b, "operand"),
    "*": lambda a, b: to_number(a, "operand") * to_number(b, "operand"),
    "/": _div,
    "%": _mod,
    "**": _pow,
    "==": equals,
    "!=": lambda a, b: not equals(a, b),
    "<": _order("<"),
    "<=": _order("<="),
    ">": _order(">"),
    ">=": _order(">="),
}


def _call(impl: Callable[[Env, list[Any]], Any], args: list[tuple[Fn, Any]], keys: list[str | None]) -> Fn:
    """A call of `impl` on compiled arguments; `keys` names those that are bare params.

    Arguments that are a bare param or a constant are read in place rather than
    through their closures (`total_resource_requests(obj, 'cpu')`, `int(x)`): one
    Python call less per argument, on every evaluation."""
    fns = [f for f, _ in args]
    key = keys[0] if keys else None
    if len(args) == 1:
        only = fns[0]
        if key is not None:
            name: str = key
            return lambda env: impl(env, [env[name]])
        return lambda env: impl(env, [only(env)])
    if len(args) == 2:
        first, second = fns
        const = args[1][1]
        if key is not None and const is not _NOT_CONST:
            param: str = key
            return lambda env: impl(env, [env[param], const])
        return lambda env: impl(env, [first(env), second(env)])
    return lambda env: impl(env, [f(env) for f in fns])


def _text_comparison(left: Fn, key: str | None, literal: str, *, negate: bool) -> Fn:
    """`left == literal` (or `!=`) for a string literal; `key` if `left` is a bare param."""
    if key is not None:

        def param_equals(env: Env) -> bool:
            v = env[key]
            return (v == literal if type(v) is str else equals(v, literal)) != negate

        return param_equals

    def equals_literal(env: Env) -> bool:
        v = left(env)
        return (v == literal if type(v) is str else equals(v, literal)) != negate

    return equals_literal


class _Compiler:
    def __init__(self, params: frozenset[str], constants: dict[str, Any]) -> None:
        self.params = params | frozenset(constants)
        self.constants = constants
        self.warnings: list[str] = []
        self.bound: dict[int, BoundCall] = {}
        """Calls on a bare param and constants, by id of their node."""

    def compile(self, node: Node) -> tuple[Fn, Any]:
        """Return the closure and, when the node is constant, its value (else _NOT_CONST)."""
        if isinstance(node, Literal):
            value = node.value
            return (lambda env: value), value
        if isinstance(node, Name):
            return self.name(node)
        if isinstance(node, Unary):
            return self.unary(node)
        if isinstance(node, Binary):
            return self.binary(node)
        if isinstance(node, Ternary):
            return self.ternary(node)
        if isinstance(node, Call):
            return self.call(node)
        raise ExpressionError("a parenthesised list is only allowed after 'in'")

    def param_key(self, node: Node) -> str | None:
        """The param `node` reads, if it is a bare, non-constant param (compiled already)."""
        if isinstance(node, Name) and node.name not in self.constants:
            return node.name
        return None

    def name(self, node: Name) -> tuple[Fn, Any]:
        key = node.name
        if key not in self.params:
            known = ", ".join(sorted(self.params)) or "none"
            hint = f"; did you mean {key}() (a function)?" if key in FUNCTIONS else ""
            raise ExpressionError(
                f"unknown parameter {key!r} at position {node.pos} (this metric's params: {known}){hint}"
            )
        if key in self.constants:
            value = self.constants[key]
            return (lambda env: value), value
        return (lambda env: env[key]), _NOT_CONST

    def fold(self, fn: Fn, consts: list[Any]) -> tuple[Fn, Any]:
        if any(c is _NOT_CONST for c in consts):
            return fn, _NOT_CONST
        try:
            value = fn({})
        except EvaluationError as e:
            raise ExpressionError(str(e)) from None
        return (lambda env: value), value

    def unary(self, node: Unary) -> tuple[Fn, Any]:
        inner, const = self.compile(node.operand)
        if node.op == "!":
            return self.fold(lambda env: not to_bool(inner(env), "operand of !"), [const])
        return self.fold(lambda env: -to_number(inner(env), "operand of -"), [const])

    def ternary(self, node: Ternary) -> tuple[Fn, Any]:
        cond, c1 = self.compile(node.cond)
        then, c2 = self.compile(node.then)
        other, c3 = self.compile(node.otherwise)
        fn: Fn = lambda env: then(env) if to_bool(cond(env), "condition of ?:") else other(env)  # noqa: E731
        return self.fold(fn, [c1, c2, c3])

    def binary(self, node: Binary) -> tuple[Fn, Any]:
        op = node.op
        if op == "in":
            return self.membership(node)
        left, c1 = self.compile(node.left)
        if op in ("=~", "!~"):
            return self.regex(node, left, c1)
        right, c2 = self.compile(node.right)
        fn: Fn
        if op == "&&":
            fn = lambda env: to_bool(left(env), "operand of &&") and to_bool(right(env), "operand of &&")  # noqa: E731
        elif op == "||":
            fn = lambda env: to_bool(left(env), "operand of ||") or to_bool(right(env), "operand of ||")  # noqa: E731
        elif op == "??":
            fn = lambda env: v if (v := left(env)) is not None else right(env)  # noqa: E731
        elif op in ("==", "!=") and c2 is not _NOT_CONST and type(c2) is str:
            # The common case (`phase == 'Ready'`): a parameter string against a literal.
            fn = _text_comparison(left, self.param_key(node.left), c2, negate=op == "!=")
        else:
            impl = _BINARY[op]
            fn = lambda env: impl(left(env), right(env))  # noqa: E731
        return self.fold(fn, [c1, c2])

    def regex(self, node: Binary, left: Fn, c1: Any) -> tuple[Fn, Any]:
        negate = node.op == "!~"
        right, c2 = self.compile(node.right)
        if c2 is not _NOT_CONST:
            if not isinstance(c2, str):
                raise ExpressionError(f"the pattern after {node.op} at position {node.pos} must be a string")
            try:
                compiled = _regex(c2)
            except EvaluationError as e:
                raise ExpressionError(f"{e} (position {node.pos})") from None
            return self.fold(lambda env: _match(left(env), compiled) != negate, [c1])

        def dynamic(env: Env) -> bool:
            pattern = right(env)
            if not isinstance(pattern, str):
                raise EvaluationError(f"pattern {describe(pattern)} is not a string")
            return _match(left(env), _regex(pattern)) != negate

        return dynamic, _NOT_CONST

    def membership(self, node: Binary) -> tuple[Fn, Any]:
        left, c1 = self.compile(node.left)
        items_nodes = node.right.items if isinstance(node.right, ListExpr) else (node.right,)
        compiled = [self.compile(item) for item in items_nodes]
        fns = [f for f, _ in compiled]

        def fn(env: Env) -> bool:
            v = left(env)
            for item_fn in fns:
                item = item_fn(env)
                if isinstance(item, list):
                    if any(equals(v, x) for x in item):
                        return True
                elif equals(v, item):
                    return True
            return False

        return self.fold(fn, [c1, *(c for _, c in compiled)])

    def call(self, node: Call) -> tuple[Fn, Any]:
        name = node.func
        args_nodes = list(node.args)
        alias = ALIASES.get(name)
        if alias is not None:
            self.warnings.append(
                f"{name}() is the old name of {alias.target}(); accepted as an alias"
                + (", with its arguments swapped" if alias.argument_order else "")
            )
            if alias.argument_order and len(args_nodes) == len(alias.argument_order):
                args_nodes = [args_nodes[i] for i in alias.argument_order]
            name = alias.target
        func = FUNCTIONS.get(name)
        if func is None:
            known = ", ".join(sorted(FUNCTIONS))
            raise ExpressionError(f"unknown function {node.func!r} at position {node.pos} (known: {known})")
        if not func.min_args <= len(args_nodes) <= func.max_args:
            want = (
                str(func.min_args) if func.min_args == func.max_args else f"{func.min_args}-{func.max_args}"
            )
            raise ExpressionError(f"{node.func}() takes {want} argument(s), got {len(args_nodes)}")
        compiled = [self.compile(a) for a in args_nodes]
        keys = [self.param_key(a) for a in args_nodes]
        fn = _call(func.impl, compiled, keys)
        constants = tuple(c for _, c in compiled[1:])
        if keys and keys[0] is not None and _NOT_CONST not in constants:
            self.bound[id(node)] = BoundCall(name, keys[0], constants)
            if func.bind is not None:
                fn = func.bind(keys[0], constants) or fn
        if not func.pure:
            return fn, _NOT_CONST
        return self.fold(fn, [c for _, c in compiled])
