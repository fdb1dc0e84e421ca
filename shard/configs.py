"""The MetricsConfigurations a shard knows: compiled, resolved, and their status.

Every shard compiles every config (they are few) and resolves families the same way
(`panopticon.render.families`: first by config name), so all shards agree on the programs,
the family registry and the conflicts without coordination. An invalid config is
reported and skipped; the others keep working (invariant 6). A config that was
valid and turns invalid (a bad edit, or a CRD change) keeps its last valid program
served, and its status says so (docs/operations.md, "What happens when a config is
bad").
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from panopticon.config.findings import Finding
from panopticon.config.model import TargetRef
from panopticon.render.families import Resolution, resolve_families
from panopticon.render.isolation import ErrorLog, ErrorTally
from panopticon.render.limits import LimitCount, limited_condition
from panopticon.render.program import CompiledConfig, Program, compile_config
from panopticon.render.schema import SchemaIndex, native_schemas
from panopticon.store.layout import RegistryEntry

MAX_STATUS_FINDINGS = 10
"""Findings quoted in a config's status message; the rest are counted."""


@dataclass(slots=True)
class ConfigState:
    name: str
    uid: str
    generation: int
    """The generation last seen (`observedGeneration`), valid or not."""
    compiled: CompiledConfig
    """The compile of the generation last seen."""
    body: dict[str, Any] = field(repr=False)
    """Kept to recompile when a CRD schema arrives after the config (configs are few)."""
    conflicts: list[Finding] = field(default_factory=list)
    last_good: CompiledConfig | None = None
    """The last valid compile of this object (same uid), served while the generation
    last seen is invalid: Prometheus keeps its old configuration when a reload fails.
    None when the config was never valid (it serves nothing)."""
    last_good_generation: int = 0
    reported: bool = False
    """Whether this version's problems were logged (and a compile fault counted)."""

    @property
    def valid(self) -> bool:
        """Whether the generation last seen is valid."""
        return self.compiled.program is not None

    @property
    def served(self) -> CompiledConfig | None:
        """The compile whose program renders: the generation last seen if valid, else
        the last valid one, else None."""
        return self.compiled if self.valid else self.last_good

    def status(
        self,
        *,
        target_found: bool = True,
        discovery_error: str = "",
        errors: ErrorTally | None = None,
        limited: LimitCount | None = None,
    ) -> dict[str, Any]:
        """The `status` this config should carry (conditions with field-level messages).

        `observedGeneration` is the generation last seen, valid or not; when it is
        invalid and an older generation is served, the conditions say which."""
        problems = [f for f in self.compiled.findings if f.severity == "error"] + self.conflicts
        warnings = [f for f in self.compiled.findings if f.severity == "warning"]
        if not self.valid:
            message = _summary(problems)
            if self.last_good is not None:
                message = f"{message}; serving generation {self.last_good_generation}, the last valid one"
                ready = _condition("Ready", True, "ServingLastValid", message)
            else:
                ready = _condition("Ready", False, "Invalid", message)
            invalid = _condition("Invalid", True, "ValidationFailed", message)
        elif not target_found:
            ready = _condition(
                "Ready", False, "TargetNotFound", "the target kind is not served by the API server"
            )
            invalid = _condition("Invalid", False, "Valid", "")
        elif discovery_error:
            message = f"discovery of the target kind failed (retrying; series kept): {discovery_error}"
            ready = _condition("Ready", False, "TargetDiscoveryFailed", message)
            invalid = _condition("Invalid", False, "Valid", "")
        elif self.conflicts:
            ready = _condition("Ready", True, "PartiallyReady", _summary(self.conflicts))
            invalid = _condition("Invalid", False, "Valid", "")
        else:
            ready = _condition("Ready", True, "Rendering", _summary(warnings) if warnings else "")
            invalid = _condition("Invalid", False, "Valid", "")
        conditions = [ready, invalid]
        if errors is not None and errors.errors:
            conditions.append(_render_errors(errors))
        if limited is not None and self.served is not None:
            conditions.append(limited_condition(limited))
        status: dict[str, Any] = {"observedGeneration": self.generation, "conditions": conditions}
        return status


def _render_errors(tally: ErrorTally) -> dict[str, Any]:
    """The RenderErrors condition: series that failed since the served program started."""
    faults = f", {tally.faults} of them unexpected errors" if tally.faults else ""
    message = f"{tally.errors} series failed to render{faults}; first: {tally.first}"
    return _condition("RenderErrors", True, "Faults" if tally.faults else "BadValues", message)


def _condition(kind: str, value: bool, reason: str, message: str) -> dict[str, Any]:
    return {"type": kind, "status": "True" if value else "False", "reason": reason, "message": message}


def _summary(findings: list[Finding]) -> str:
    shown = "; ".join(str(f) for f in findings[:MAX_STATUS_FINDINGS])
    more = len(findings) - MAX_STATUS_FINDINGS
    return shown + (f"; and {more} more" if more > 0 else "")


class ConfigSet:
    """All known configs; recompiles on change and re-resolves families."""

    def __init__(self, schemas: SchemaIndex | None = None) -> None:
        self.schemas = schemas if schemas is not None else native_schemas()
        self.configs: dict[str, ConfigState] = {}
        self.resolution = Resolution()
        self.errors = ErrorLog()
        """Render errors by config, counted by the targets, quoted by the status."""

    def upsert(self, body: dict[str, Any]) -> ConfigState | None:
        """Add or replace a config from its object; None if it has no name.

        A new generation that is invalid leaves the last valid one of the same object
        served (`ConfigState.last_good`)."""
        raw_meta = body.get("metadata")
        meta: dict[str, Any] = raw_meta if isinstance(raw_meta, dict) else {}
        name = meta.get("name")
        if not isinstance(name, str) or not name:
            return None
        before = self.configs.get(name)
        if before is not None and _compiled_from(before.body) == _compiled_from(body):
            # Only the status or other metadata changed (every status write comes back as
            # a MODIFIED event): the same program keeps rendering, nothing re-renders.
            before.body = body
            return before
        compiled = compile_config(body, schemas=self.schemas)
        raw_generation = meta.get("generation")
        generation = raw_generation if type(raw_generation) is int else 0
        state = ConfigState(
            name=name, uid=str(meta.get("uid") or ""), generation=generation, compiled=compiled, body=body
        )
        if compiled.program is None and before is not None and before.uid == state.uid:
            state.last_good, state.last_good_generation = (
                (before.compiled, before.generation)
                if before.valid
                else (before.last_good, before.last_good_generation)
            )
        if before is None or _program_of(before) is not _program_of(state):
            self.errors.forget(name)  # counts are of the program served
        self.configs[name] = state
        self._resolve()
        return state

    def restore(self, name: str, body: dict[str, Any], generation: int) -> bool:
        """Serve `body`, generation `generation` of config `name` (its last valid version,
        kept by the store), if the config is known, never valid here yet and `body` is
        this version or an older one of the same object (the same generation, when a
        CRD change made it invalid here). True when it is served now.

        It is compiled without schemas: it was valid when it was kept, and a CRD change
        since then does not stop a shard that saw it valid from serving it either."""
        state = self.configs.get(name)
        meta = body.get("metadata")
        uid = meta.get("uid") if isinstance(meta, dict) else None
        if state is None or state.served is not None or uid != state.uid or generation > state.generation:
            return False
        compiled = compile_config(body)
        if compiled.program is None:
            return False
        state.last_good, state.last_good_generation = compiled, generation
        self._resolve()
        return True

    def delete(self, name: str) -> ConfigState | None:
        state = self.configs.pop(name, None)
        self.errors.forget(name, entirely=True)
        if state is not None:
            self._resolve()
        return state

    def recompile(self) -> list[str]:
        """Recompile against the current schemas (a CRD arrived or changed); return the
        configs whose findings changed. A config whose findings did not change keeps
        its program, so its target is not re-rendered for nothing. A served config
        that the new schemas make invalid keeps being served, as after a bad edit."""
        changed = []
        for name, state in self.configs.items():
            compiled = compile_config(state.body, schemas=self.schemas)
            if compiled.findings != state.compiled.findings:
                if compiled.program is None and state.valid:
                    state.last_good, state.last_good_generation = state.compiled, state.generation
                state.compiled = compiled
                changed.append(name)
        if changed:
            self._resolve()
        return changed

    def _resolve(self) -> None:
        programs = [p for s in self.configs.values() if (p := _program_of(s)) is not None]
        self.resolution = resolve_families(programs)
        for name, state in self.configs.items():
            state.conflicts = list(self.resolution.conflicts.get(name, []))

    def programs_by_target(self) -> dict[TargetRef, list[Program]]:
        out: dict[TargetRef, list[Program]] = {}
        for program in sorted(self.resolution.programs.values(), key=lambda p: p.config_name):
            out.setdefault(program.target, []).append(program)
        return out

    def registry(self) -> dict[str, RegistryEntry]:
        return {
            name: RegistryEntry.of(family.header, family.configs)
            for name, family in self.resolution.families.items()
        }

    def families(self) -> list[str]:
        return sorted(self.resolution.families)

    def invalid(self) -> Iterable[ConfigState]:
        return (s for s in self.configs.values() if not s.valid)


def _compiled_from(body: dict[str, Any]) -> tuple[Any, ...]:
    """What `compile_config` reads from a config object (all but status and the
    metadata it ignores)."""
    raw_meta = body.get("metadata")
    meta: dict[str, Any] = raw_meta if isinstance(raw_meta, dict) else {}
    return (
        body.get("apiVersion"),
        body.get("kind"),
        body.get("spec"),
        *(meta.get(key) for key in ("name", "uid", "generation", "annotations")),
    )


def _program_of(state: ConfigState) -> Program | None:
    served = state.served
    return served.program if served is not None else None
