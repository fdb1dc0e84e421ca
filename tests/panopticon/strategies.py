"""Hypothesis strategies for the engines' inputs, drawn from their grammars.

- `expressions()`: expression text from the grammar of `panopticon.render.expr.syntax`:
  every operator, every function (and alias) at each of its arities, every kind of
  literal (numbers at the float64 edges, strings that look like numbers, quantities,
  times and patterns), params, lists after `in`, nesting up to the limits;
- `paths()`: path text from the grammar of `panopticon.render.paths` (keys, escapes, quoted
  keys, indexes, `[*]`, `[name=text]`, `key=value`), sometimes broken;
- `configs()`: MetricsConfiguration objects built from those, with every value
  form (value maps too), labels, params, states, fields, `each` metrics, selectors,
  filters, and hostile junk anywhere;
- `objects()`: objects of the targets with edge values where configs read.
"""

from __future__ import annotations

import math
from typing import Any

from hypothesis import strategies as st

from panopticon.render.expr.functions import ALIASES, FUNCTIONS

# Numbers at the edges: ±0, subnormals, the float64 limits, NaN/Inf, huge integers.
EDGE_FLOATS = [0.0, -0.0, 5e-324, -5e-324, 2.2250738585072014e-308, 1e308, -1e308, 1.7976931348623157e308,
               math.inf, -math.inf, math.nan, 0.1, 2.5, -1.5, 1e-7, 1e17, 9007199254740993.0]  # fmt: skip
EDGE_INTS = [0, 1, -1, 2, 3, 2**53 + 1, 2**63, -(2**63) - 1, 10**30, -(10**30), 10**400]
# Strings that read as something else: numbers, quantities, percentages, times, bools.
LOOKALIKES = ["0", "-0", "+0", "1", "-1", "3", "2.5", "1e308", "1e309", "-1e309", "1e-400", "5e-324", "NaN",
              "nan", "+Inf", "-Inf", "inf", "Infinity", "0x10", "1_000", "١٢٣", " 12 ", "1.5.5", ".5", "5.",
              "1" * 64, "9" * 65, "25%", "150%", "-5%", "%", "1Gi", "500m", "1.5Ki", "1e3", "2E-3", "1Ei",
              "100Ti", "-1Mi", "0.000000001n", "1e1000m", "true", "false", "True", "yes", "nil", "null", "",
              "2021-08-23T10:00:00Z", "2021-02-30T10:00:00Z", "0001-01-01T00:00:00Z",
              "9999-12-31T23:59:59.999999999Z", "2021-08-23T10:00:00+25:00", "2021-08-23", "Ready", "Running",
              '"', "\\", "\n", "\x00", "\ud800", "(a+)+$", "[", "x" * 300]  # fmt: skip
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.sampled_from(EDGE_INTS),
    st.integers(),
    st.sampled_from(EDGE_FLOATS),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(LOOKALIKES),
    st.text(max_size=12),
)
JSON = st.recursive(
    SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(
            st.sampled_from(["a", "b", "name", "type", "cpu", "memory", "x.y", ""]), children, max_size=4
        ),
    ),
    max_leaves=12,
)

PARAMS = ("a", "b", "obj")
"""The params every generated expression may use (`obj` is the whole object)."""
NUMBER_LITERALS = ["0", "1", "2", "3", "0.5", "2.5", ".5", "5.", "1e308", "1e309", "1e-320", "5e-324", "2e-3",
                   "1" * 64, "100000000000000000000", "9007199254740993"]  # fmt: skip
STRING_LITERALS = ["''", "'x'", "'Ready'", "'25%'", "'1Gi'", "'500m'", "'-1'", "'1e309'", "'NaN'", "'nil'",
                   "'true'", "'2021-08-23T10:00:00Z'", "'(a+)+$'", "'['", "'a|b'", '"double"', "'\\''",
                   "'cpu'", "'memory'", "'storage'", "'gpu'"]  # fmt: skip
BINARY = ["==", "!=", "<", "<=", ">", ">=", "=~", "!~", "+", "-", "*", "/", "%", "**", "&&", "||", "??"]
FUNCTION_NAMES = sorted(FUNCTIONS) + sorted(ALIASES)


def _arity(name: str) -> tuple[int, int]:
    alias = ALIASES.get(name)
    function = FUNCTIONS[alias.target if alias else name]
    return function.min_args, function.max_args


LEAVES = st.one_of(
    st.sampled_from(NUMBER_LITERALS),
    st.sampled_from(STRING_LITERALS),
    st.sampled_from(["true", "false", "nil"]),
    st.sampled_from(PARAMS),
    st.just("[a]"),
)


def _extend(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    def call(draw: st.DrawFn) -> str:
        name = draw(st.sampled_from(FUNCTION_NAMES))
        low, high = _arity(name)
        count = draw(st.integers(max(0, low - 1), high + 1))  # sometimes one too few or many
        return f"{name}({', '.join(draw(children) for _ in range(count))})"

    return st.one_of(
        st.tuples(children, st.sampled_from(BINARY), children).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        st.tuples(children, st.sampled_from(BINARY), children).map(" ".join),
        st.tuples(st.sampled_from(["!", "-", "+"]), children).map("".join),
        st.tuples(children, children, children).map(lambda t: f"({t[0]} ? {t[1]} : {t[2]})"),
        st.tuples(children, st.lists(children, min_size=1, max_size=4)).map(
            lambda t: f"{t[0]} in ({', '.join(t[1])})"
        ),
        st.composite(call)(),
    )


def expressions(max_leaves: int = 24) -> st.SearchStrategy[str]:
    """Expression text from the grammar; now and then past the nesting limit."""
    grammatical = st.recursive(LEAVES, _extend, max_leaves=max_leaves)
    deep = st.integers(40, 60).map(lambda n: "(" * n + "a" + ")" * n)
    chained = st.integers(2, 300).map(lambda n: " ** ".join(["a"] * n))
    return st.one_of(grammatical, grammatical, grammatical, deep, chained, st.text(max_size=40))


NUMERIC_LEAVES = st.one_of(
    st.sampled_from(NUMBER_LITERALS),
    st.sampled_from(NUMBER_LITERALS).map(lambda n: f"(0-{n})"),
    st.sampled_from(["a", "b", "-a", "(1/3)", "(0/0)", "(1/0)", "(0-1/0)"]),
)
ARITHMETIC = ["+", "-", "*", "/", "%", "**"]


def arithmetic(max_leaves: int = 8) -> st.SearchStrategy[str]:
    """Arithmetic on numbers only (edge literals, negatives, NaN and infinities made
    by division, params `a` and `b` holding numbers): Go's float64 rules never fail."""
    return st.recursive(
        NUMERIC_LEAVES,
        lambda children: st.tuples(children, st.sampled_from(ARITHMETIC), children).map(
            lambda t: f"({t[0]} {t[1]} {t[2]})"
        ),
        max_leaves=max_leaves,
    )


NUMBERS = st.one_of(
    st.sampled_from(EDGE_FLOATS),
    st.sampled_from([n for n in EDGE_INTS if abs(n) < 10**300]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["-0", "1e309", "-2.5", "NaN", "-Inf", "3"]),
)
"""Values of `a` and `b` for `arithmetic()`: numbers and numeric strings."""

KEYS = ["metadata", "name", "namespace", "labels", "spec", "replicas", "status", "phase", "conditions",
        "containers", "resources", "requests", "cpu", "type", "items", "x.y", "app.kubernetes.io/name", "a=b",
        "", "é", "0", "-1"]  # fmt: skip


@st.composite
def _step(draw: st.DrawFn) -> str:
    key = draw(st.sampled_from(KEYS))
    forms = [
        f".{key.replace('.', chr(92) + '.')}",
        f"['{key}']",
        f'["{key}"]',
        f"[{draw(st.integers(-3, 5))}]",
        "[*]",
        f"[{draw(st.sampled_from(['type', 'name', 'id']))}={draw(st.sampled_from(['Ready', '3', 'true', '']))}]",  # noqa: E501
        f".{key}={draw(st.sampled_from(['baz', '1', '']))}",
    ]
    return str(draw(st.sampled_from(forms)))


def paths() -> st.SearchStrategy[str]:
    """Path text from the grammar, sometimes broken or not a path at all."""
    grammatical = st.lists(_step(), min_size=1, max_size=6).map("".join)
    return st.one_of(
        grammatical,
        grammatical,
        grammatical.map(lambda p: p.lstrip(".")),
        grammatical.map(lambda p: "{" + p + "}"),
        grammatical.map(lambda p: "$" + p),
        st.just("."),
        st.sampled_from([".spec.replicas", ".metadata.name", ".status.phase", ".spec.containers[*].name"]),
        st.text(max_size=20),
    )


NAMES = st.one_of(
    st.sampled_from(["info", "replicas", "status_phase", "kube_pod_info", "bad name", "1x", "", "a" * 300]),
    st.from_regex(r"[a-z_][a-z0-9_]{0,12}", fullmatch=True),
)
LABEL_KEYS = st.one_of(
    st.sampled_from(["phase", "type", "namespace", "pod", "__name__", "le", "bad-key", ""]),
    st.from_regex(r"[a-z_][a-z0-9_]{0,8}", fullmatch=True),
)
TARGETS = [
    ("v1", "Pod"),
    ("apps/v1", "Deployment"),
    ("kubedb.com/v1", "MongoDB"),
    ("example.com/v1", "Widget"),
]


@st.composite
def _value(draw: st.DrawFn) -> dict[str, Any]:
    form = draw(st.integers(0, 3))
    if form == 0:
        return {"value": draw(st.one_of(st.sampled_from(LOOKALIKES), st.sampled_from(EDGE_FLOATS), SCALARS))}
    if form == 1:
        value: dict[str, Any] = {"valueFromPath": draw(paths())}
        if draw(st.booleans()):  # a value map (issue 17)
            keys = st.one_of(st.sampled_from(LOOKALIKES), st.text(max_size=6))
            value["valueMap"] = draw(st.dictionaries(keys, st.one_of(SCALARS, JSON), max_size=4))
            if draw(st.booleans()):
                value["default"] = draw(SCALARS)
        return value
    if form == 2:
        return {"valueFromExpression": draw(expressions())}
    return draw(
        st.dictionaries(st.sampled_from(["value", "valueFromPath", "valueFromExpression", "x"]), JSON)
    )


@st.composite
def _label(draw: st.DrawFn) -> dict[str, Any]:
    label: dict[str, Any] = {"key": draw(LABEL_KEYS)}
    if draw(st.booleans()):
        label["value"] = draw(st.one_of(st.sampled_from(LOOKALIKES), st.text(max_size=10)))
    else:
        label["valuePath"] = draw(paths())
    return label


@st.composite
def _metric(draw: st.DrawFn) -> Any:
    if draw(st.integers(0, 19)) == 0:
        return draw(JSON)
    metric: dict[str, Any] = {
        "name": draw(NAMES),
        "help": draw(st.sampled_from(["Help.", "", "new\nline \\ back"])),
        "type": draw(st.sampled_from(["gauge", "counter", "Gauge", "bogus"])),
    }
    if draw(st.booleans()):
        metric["field"] = {
            "path": draw(paths()),
            "type": draw(st.sampled_from(["Array", "String", "DateTime"])),
        }
    if draw(st.booleans()):
        metric["labels"] = draw(st.lists(_label(), max_size=3))
    metric["params"] = [{"key": p, "valuePath": draw(paths())} for p in ("a", "b")] + [
        {"key": "obj", "valuePath": "."}
    ]
    if draw(st.booleans()):
        metric["params"].append({"key": "c", "value": draw(st.sampled_from(LOOKALIKES))})
    if draw(st.integers(0, 3)) == 0:
        metric["states"] = {
            "labelKey": draw(LABEL_KEYS),
            "values": [
                {"labelValue": draw(st.sampled_from(LOOKALIKES)), "metricValue": draw(_value())}
                for _ in range(draw(st.integers(0, 4)))
            ],
        }
    else:
        metric["metricValue"] = draw(_value())
    return metric


@st.composite
def _each_metric(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(["Gauge", "Info", "StateSet", "Counter"]))
    each: dict[str, Any] = {"type": kind, "path": draw(paths())}
    if draw(st.booleans()):
        each["valueFrom"] = draw(paths())
    if kind == "StateSet":
        each["labelName"] = draw(LABEL_KEYS)
        each["list"] = draw(st.lists(st.sampled_from(LOOKALIKES), max_size=3))
    if draw(st.booleans()):
        each["labelsFromPath"] = {draw(LABEL_KEYS): draw(paths())}
    if draw(st.booleans()):
        each["nilIsZero"] = draw(st.sampled_from([True, False, "maybe"]))
    return {"name": draw(NAMES), "help": "Help.", "type": "gauge", "each": each}


@st.composite
def configs(draw: st.DrawFn) -> Any:
    """A MetricsConfiguration object: mostly well formed, some fields hostile."""
    api_version, kind = draw(st.sampled_from(TARGETS))
    each = draw(st.integers(0, 4)) == 0
    metrics = draw(st.lists(_each_metric() if each else _metric(), min_size=1, max_size=4))
    spec: dict[str, Any] = {"targetRef": {"apiVersion": api_version, "kind": kind}, "metrics": metrics}
    if draw(st.booleans()):
        spec["commonLabels"] = draw(st.lists(_label(), max_size=2))
    if draw(st.integers(0, 4)) == 0:
        spec["defaultLabels"] = draw(st.sampled_from([False, True, "no"]))
    if draw(st.integers(0, 3)) == 0:
        spec["selector"] = {
            "matchLabels": {draw(st.sampled_from(KEYS)): draw(st.sampled_from(LOOKALIKES))},
            "matchExpressions": [
                {"key": draw(st.sampled_from(KEYS)),
                 "operator": draw(st.sampled_from(["In", "NotIn", "Exists", "DoesNotExist", "Bogus"])),
                 "values": draw(st.lists(st.sampled_from(LOOKALIKES), max_size=2))}
            ],
        }  # fmt: skip
    if draw(st.integers(0, 3)) == 0:
        spec["filter"] = {
            "params": [{"key": p, "valuePath": draw(paths())} for p in ("a", "b")]
            + [{"key": "obj", "valuePath": "."}],
            "expression": draw(expressions()),
        }
    body: dict[str, Any] = {
        "apiVersion": "metrics.appscode.com/v1alpha1",
        "kind": "MetricsConfiguration",
        "metadata": {"name": draw(st.sampled_from(["fuzzed", "", "a" * 300])), "uid": "u", "generation": 1},
        "spec": spec,
    }
    if draw(st.integers(0, 9)) == 0:
        body["metadata"]["annotations"] = {
            "metrics.panopticon.dev/name-prefix": draw(st.sampled_from(["", "x", "bad prefix", "1"]))
        }
    if draw(st.integers(0, 9)) == 0:  # junk in one place
        where = draw(st.sampled_from(["spec", "targetRef", "metrics", "metadata"]))
        junk = draw(JSON)
        if where == "targetRef":
            spec["targetRef"] = junk
        elif where == "metrics":
            spec["metrics"] = junk
        else:
            body[where] = junk
    return body


@st.composite
def objects(draw: st.DrawFn, api_version: str, kind: str) -> Any:
    """An object of the target kind, edge values where configs read, JSON junk elsewhere."""
    if draw(st.integers(0, 9)) == 0:
        return draw(JSON)

    def value() -> Any:
        return draw(st.one_of(SCALARS, JSON))

    return {
        "apiVersion": api_version,
        "kind": kind,
        "metadata": {
            "name": draw(
                st.one_of(st.sampled_from(["obj", "a\\b", 'q"t', "n\nl", "\ud800", ""]), st.text(max_size=8))
            ),
            "namespace": draw(st.sampled_from(["default", "", "ns\\1"])),
            "labels": {draw(st.sampled_from(KEYS)): value() for _ in range(draw(st.integers(0, 2)))},
            "creationTimestamp": draw(st.sampled_from(LOOKALIKES)),
        },
        "spec": {
            "replicas": value(),
            "size": value(),
            "items": [value() for _ in range(draw(st.integers(0, 3)))],
            "containers": [
                {"name": value(), "resources": {"requests": {"cpu": value(), "memory": value()}}}
                for _ in range(draw(st.integers(0, 2)))
            ],
        },
        "status": {"phase": value(), "conditions": [{"type": "Ready", "status": value()}]},
        "x.y": value(),
        "a": value(),
    }
