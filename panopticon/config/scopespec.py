"""Reading `spec.selector` and `spec.filter`: which objects of the target kind a config covers.

Panopticon extensions of MetricsConfiguration (kube-state-metrics#2820 and #3035 ask
for them; the Panoptes design calls the second a resource filter). The config layer's
half: structure and field-path errors for untrusted input. What they do at render
time is `panopticon.render.scope`.

- `selector` is a Kubernetes LabelSelector on the target object's labels
  (`matchLabels`, `matchExpressions` with In, NotIn, Exists, DoesNotExist), with the
  API server's rules: In/NotIn need values, Exists/DoesNotExist take none, and an
  empty selector selects everything.
- `filter` is an expression of the existing language over params read from the
  object; the object has series only when it evaluates to true.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from panopticon.config.model import ParamSpec

OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")
MAX_REQUIREMENTS = 64
MAX_VALUES = 256
MAX_EXPRESSION = 4096
LABEL_KEY = re.compile(
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
)
LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")
"""Kubernetes' label key (optional DNS-subdomain prefix, name of at most 63
characters) and value (at most 63 characters) syntax; lengths are checked apart."""

Report = Callable[[str, str], None]


@dataclass(frozen=True, slots=True)
class Requirement:
    key: str
    operator: str
    values: frozenset[str]


@dataclass(frozen=True, slots=True)
class SelectorSpec:
    requirements: tuple[Requirement, ...]
    where: str


@dataclass(frozen=True, slots=True)
class FilterSpec:
    params: tuple[ParamSpec, ...]
    """Read as a metric's params are (`panopticon.config.model`)."""
    expression: str
    where: str


def _label_key(key: Any, where: str, error: Report) -> str | None:
    if not isinstance(key, str):
        error(where, f"must be a label key (a string), not {type(key).__name__}")
        return None
    name = key.rpartition("/")[2]
    if len(key) > 317 or len(name) > 63 or not LABEL_KEY.match(key):
        error(where, f"{key[:80]!r} is not a valid label key")
        return None
    return key


def _label_value(value: Any, where: str, error: Report) -> str | None:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        error(where, f"must be a label value (a string), not {type(value).__name__}")
        return None
    text = value if isinstance(value, str) else str(value)
    if len(text) > 63 or not LABEL_VALUE.match(text):
        error(where, f"{text[:80]!r} is not a valid label value")
        return None
    return text


def read_selector(raw: Any, where: str, error: Report) -> SelectorSpec | None:
    """A LabelSelector at `where`; None when absent or invalid (errors reported)."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        error(where, f"must be a LabelSelector (an object), not {type(raw).__name__}")
        return None
    unknown = sorted(set(raw) - {"matchLabels", "matchExpressions"})
    if unknown:
        error(where, f"unknown field {unknown[0]!r} (a LabelSelector has matchLabels and matchExpressions)")
    requirements: list[Requirement] = []
    ok = not unknown
    labels = raw.get("matchLabels")
    if labels is not None:
        if not isinstance(labels, dict):
            error(
                f"{where}.matchLabels",
                f"must be an object of label keys to values, not {type(labels).__name__}",
            )
            ok = False
        else:
            for key, value in labels.items():
                k = _label_key(key, f"{where}.matchLabels", error)
                v = _label_value(value, f"{where}.matchLabels[{str(key)[:80]!r}]", error)
                if k is None or v is None:
                    ok = False
                else:
                    requirements.append(Requirement(k, "In", frozenset([v])))
    expressions = raw.get("matchExpressions")
    if expressions is not None:
        if not isinstance(expressions, list):
            error(f"{where}.matchExpressions", f"must be a list, not {type(expressions).__name__}")
            ok = False
            expressions = []
        for i, item in enumerate(expressions):
            requirement = _requirement(item, f"{where}.matchExpressions[{i}]", error)
            if requirement is None:
                ok = False
            else:
                requirements.append(requirement)
    if len(requirements) > MAX_REQUIREMENTS:
        error(where, f"has {len(requirements)} requirements; at most {MAX_REQUIREMENTS} are allowed")
        ok = False
    return SelectorSpec(tuple(requirements), where) if ok else None


def _requirement(item: Any, where: str, error: Report) -> Requirement | None:
    if not isinstance(item, dict):
        error(where, f"must be an object (key, operator, values), not {type(item).__name__}")
        return None
    key = _label_key(item.get("key"), f"{where}.key", error)
    operator = item.get("operator")
    if operator not in OPERATORS:
        error(f"{where}.operator", f"{str(operator)[:40]!r} is not one of {', '.join(OPERATORS)}")
        return None
    values = item.get("values")
    if operator in ("In", "NotIn"):
        if not isinstance(values, list) or not values:
            error(f"{where}.values", f"{operator} needs a non-empty list of values")
            return None
        if len(values) > MAX_VALUES:
            error(f"{where}.values", f"has {len(values)} values; at most {MAX_VALUES} are allowed")
            return None
    elif values:
        error(f"{where}.values", f"{operator} takes no values")
        return None
    texts = [_label_value(v, f"{where}.values[{i}]", error) for i, v in enumerate(values or [])]
    if key is None or any(t is None for t in texts):
        return None
    return Requirement(key, operator, frozenset(t for t in texts if t is not None))


def read_filter(
    raw: Any, where: str, error: Report, read_param: Callable[[Any, str], ParamSpec | None]
) -> FilterSpec | None:
    """`spec.filter`: params (read by `read_param`, as a metric's) and an expression;
    None when absent or invalid."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        error(where, f"must be an object (params, expression), not {type(raw).__name__}")
        return None
    expression = raw.get("expression")
    if not isinstance(expression, str) or not expression.strip():
        error(f"{where}.expression", "is required (an expression that is true for the objects to keep)")
        return None
    if len(expression) > MAX_EXPRESSION:
        error(f"{where}.expression", f"is longer than {MAX_EXPRESSION} characters")
        return None
    raw_params = raw.get("params") or []
    if not isinstance(raw_params, list):
        error(f"{where}.params", f"must be a list, not {type(raw_params).__name__}")
        return None
    params = [
        read_param(item, f"{where}.params[{i}]") for i, item in enumerate(raw_params[:MAX_REQUIREMENTS])
    ]
    if any(param is None for param in params):
        return None
    return FilterSpec(tuple(p for p in params if p is not None), expression, where)
