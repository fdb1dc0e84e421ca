"""The MetricsConfigurations a shard knows: compiled, resolved, and their status.

Every shard compiles every config (they are few) and resolves families the same way
(`panopticon.families`: first by config name), so all shards agree on the programs,
the family registry and the conflicts without coordination. An invalid config is
reported and skipped; the others keep working (invariant 6).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from panopticon.families import Resolution, resolve_families
from panopticon.model import Finding
from panopticon.program import CompiledConfig, Program, compile_config
from panopticon.schema import SchemaIndex, native_schemas
from panopticon.store import RegistryEntry

MAX_STATUS_FINDINGS = 10
"""Findings quoted in a config's status message; the rest are counted."""

TargetKey = tuple[str, str]
"""(apiVersion, kind) of a watched target."""


@dataclass(slots=True)
class ConfigState:
    name: str
    uid: str
    generation: int
    compiled: CompiledConfig
    body: dict[str, Any] = field(repr=False)
    """Kept to recompile when a CRD schema arrives after the config (configs are few)."""
    conflicts: list[Finding] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        return self.compiled.program is not None

    def status(self, *, target_found: bool = True, discovery_error: str = "") -> dict[str, Any]:
        """The `status` this config should carry (conditions with field-level messages)."""
        errors = [f for f in self.compiled.findings if f.severity == "error"] + self.conflicts
        warnings = [f for f in self.compiled.findings if f.severity == "warning"]
        if not self.valid:
            ready = _condition("Ready", False, "Invalid", _summary(errors))
            invalid = _condition("Invalid", True, "ValidationFailed", _summary(errors))
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
        status: dict[str, Any] = {"observedGeneration": self.generation, "conditions": [ready, invalid]}
        return status


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

    def upsert(self, body: dict[str, Any]) -> ConfigState | None:
        """Add or replace a config from its object; None if it has no name."""
        raw_meta = body.get("metadata")
        meta: dict[str, Any] = raw_meta if isinstance(raw_meta, dict) else {}
        name = meta.get("name")
        if not isinstance(name, str) or not name:
            return None
        compiled = compile_config(body, schemas=self.schemas)
        state = ConfigState(
            name=name,
            uid=str(meta.get("uid") or ""),
            generation=int(meta.get("generation") or 0) if isinstance(meta.get("generation"), int) else 0,
            compiled=compiled,
            body=body,
        )
        self.configs[name] = state
        self._resolve()
        return state

    def delete(self, name: str) -> ConfigState | None:
        state = self.configs.pop(name, None)
        if state is not None:
            self._resolve()
        return state

    def recompile(self) -> list[str]:
        """Recompile against the current schemas (a CRD arrived or changed); return the
        configs whose findings changed. A config whose findings did not change keeps
        its program, so its target is not re-rendered for nothing."""
        changed = []
        for name, state in self.configs.items():
            compiled = compile_config(state.body, schemas=self.schemas)
            if compiled.findings != state.compiled.findings:
                state.compiled = compiled
                changed.append(name)
        if changed:
            self._resolve()
        return changed

    def _resolve(self) -> None:
        programs = [s.compiled.program for s in self.configs.values() if s.compiled.program is not None]
        self.resolution = resolve_families(programs)
        for name, state in self.configs.items():
            state.conflicts = list(self.resolution.conflicts.get(name, []))

    def programs_by_target(self) -> dict[TargetKey, list[Program]]:
        out: dict[TargetKey, list[Program]] = {}
        for program in sorted(self.resolution.programs.values(), key=lambda p: p.config_name):
            out.setdefault((program.target.api_version, program.target.kind), []).append(program)
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
