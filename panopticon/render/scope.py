"""Which objects a config renders: `spec.selector` and `spec.filter` at render time.

An object outside a config's scope gets no series from it: its render is empty, so
on a change that takes it out (a relabel, a status that makes the filter false) the
shard deletes its lines as it does for any metric that stops applying, and on a
change that brings it back they are written again. The same holds offline, in
`panopticon run` and in the embedded library, since all of them render through the
compiled program. (Reading: `panopticon.config.scopespec`.)

A filter that cannot be evaluated for an object (a bad value, a type error) drops
that object's series and is counted as a render error of family `spec.filter`; an
unexpected exception is left to `Program.render`'s isolation boundary (a fault). It
never stops the render of other objects.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from panopticon.config.scopespec import FilterSpec, Requirement, SelectorSpec
from panopticon.errors import EvaluationError, ExpressionError, MissingValueError
from panopticon.render.expr.compiler import compile_expression
from panopticon.render.expr.functions import SUMMARY_CACHE
from panopticon.render.paths import MISSING, Path
from panopticon.render.shapes.metrics import RenderError, param_value

FILTER_FAMILY = "spec.filter"
"""The `family` under which filter errors are counted (render_errors_total)."""

Gate = Callable[[Any, list[RenderError]], bool]
"""Whether an object is in a config's scope; errors are appended to the list."""


def selector_matches(requirements: tuple[Requirement, ...]) -> Callable[[Any], bool]:
    """A LabelSelector as a test of an object's `metadata.labels`, as the API server applies it."""

    def matches(obj: Any) -> bool:
        meta = obj.get("metadata") if isinstance(obj, dict) else None
        labels = meta.get("labels") if isinstance(meta, dict) else None
        if not isinstance(labels, dict):
            labels = {}
        for r in requirements:
            value = labels.get(r.key)
            present = isinstance(value, str)
            if r.operator == "In":
                if not present or value not in r.values:
                    return False
            elif r.operator == "NotIn":
                if present and value in r.values:
                    return False
            elif r.operator == "Exists":
                if not present:
                    return False
            elif present:  # DoesNotExist
                return False
        return True

    return matches


def compile_filter(
    spec: FilterSpec, path: Callable[[str, str], Path | None], error: Callable[[str, str], None]
) -> Gate | None:
    """The filter as a test of an object; None (errors reported) when it does not compile."""
    getters: list[tuple[str, Any]] = []
    constants: dict[str, Any] = {}
    names: set[str] = set()
    for param in spec.params:
        key, value_path, where = param.key, param.value_path, param.where
        if param.value is not None:
            constants[key] = param.value
            continue
        compiled = path(value_path or "", f"{where}.valuePath")
        if compiled is None:
            return None
        if compiled.wildcards:
            error(f"{where}.valuePath", f"{value_path!r}: [*] has no meaning in a filter")
            return None
        getters.append((key, None if compiled.is_root else compiled.getters[0]))
        names.add(key)
    try:
        expression = compile_expression(spec.expression, names, constants=constants)
    except ExpressionError as e:
        error(f"{spec.where}.expression", str(e))
        return None
    evaluate, text = expression.evaluate, spec.expression

    def keep(obj: Any, errors: list[RenderError]) -> bool:
        env: dict[str, Any] = {SUMMARY_CACHE: {}}
        for key, getter in getters:
            v = obj if getter is None else getter(obj)
            env[key] = v if type(v) is dict or type(v) is str else param_value(MISSING if v is None else v)
        try:
            result = evaluate(env)
        except MissingValueError:
            return False
        except EvaluationError as e:  # anything else is a fault: Program.render's boundary
            errors.append(RenderError(FILTER_FAMILY, f"{text!r}: {e}"))
            return False
        if result is True:
            return True
        if result is not False and result is not None:
            errors.append(
                RenderError(FILTER_FAMILY, f"{text!r} gave {type(result).__name__}, not true or false")
            )
        return False

    return keep


def gate_of(
    selector: SelectorSpec | None, keep: Callable[[Any, list[RenderError]], bool] | None
) -> Gate | None:
    """One test for both (the selector first: it is cheap and needs no environment)."""
    matches = (
        selector_matches(selector.requirements) if selector is not None and selector.requirements else None
    )
    if matches is None:
        return keep
    if keep is None:
        return lambda obj, errors: matches(obj)
    return lambda obj, errors: matches(obj) and keep(obj, errors)
