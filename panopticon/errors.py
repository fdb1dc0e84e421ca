"""The project's exception tree.

Every error Panopticon raises on purpose derives from `PanopticonError`. Adapters
translate library errors at the edge (`raise ConfigError(...) from e`), and every
message names the thing and the field it is about.
"""

from __future__ import annotations


class PanopticonError(Exception):
    """Root of every error Panopticon raises on purpose."""


class DocumentError(PanopticonError):
    """A file or stream could not be read as YAML/JSON Kubernetes documents."""


class ConfigError(PanopticonError):
    """A MetricsConfiguration is invalid. `problems` lists every finding."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        super().__init__(f"{source}: " + "; ".join(problems))


class StoreError(PanopticonError):
    """The store is unusable: wrong layout, unreachable, or it refused a command."""


class PathError(PanopticonError):
    """A JSON path does not parse."""


class ExpressionError(PanopticonError):
    """An expression does not parse or compile (syntax, unknown function, limits)."""


class EvaluationError(PanopticonError):
    """An expression or value failed for one object (type mismatch, bad quantity...)."""


class MissingValueError(EvaluationError):
    """An input the computation needs is nil (its path resolves to nothing).

    Missing data is not bad data: the renderer skips the series without counting an
    error, as it does for a `valueFromPath` that resolves to nothing."""


class ResourceCalcError(EvaluationError):
    """A resource function cannot compute a figure for this object (unknown kind, bad spec)."""


class QuantityError(EvaluationError):
    """A Kubernetes quantity string does not parse."""
