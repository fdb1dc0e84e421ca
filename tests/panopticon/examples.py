"""The example corpus (panopticon/data/examples) as test data: paths and pairings."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from panopticon.config.documents import read_documents
from panopticon.render.program import CompiledConfig, compile_config
from panopticon.render.schema import native_schemas

EXAMPLES = Path(__file__).resolve().parents[2] / "panopticon" / "data" / "examples"
CONFIG_DIR = EXAMPLES / "metricsconfigurations"
OBJECT_DIR = EXAMPLES / "objects"
GOLDEN_DIR = Path(__file__).resolve().parents[1] / "golden" / "render"

VALID_CONFIGS = sorted(p for p in CONFIG_DIR.glob("*/*.yaml"))
INVALID_CONFIGS = sorted(CONFIG_DIR.glob("native/invalid/*.yaml"))
OBJECT_FILES = sorted(OBJECT_DIR.glob("*/*.yaml"))


def rel(path: Path) -> str:
    return str(path.relative_to(EXAMPLES))


@cache
def compiled(config: Path) -> CompiledConfig:
    return compile_config(read_documents(str(config))[0].body, schemas=native_schemas())


def matching_pairs() -> list[tuple[Path, Path]]:
    """Every (config, object file) where some object of the file is the config's target."""
    pairs = []
    for config in VALID_CONFIGS:
        program = compiled(config).program
        assert program is not None, config
        for objects in OBJECT_FILES:
            if any(program.matches(doc.body) for doc in read_documents(str(objects))):
                pairs.append((config, objects))
    return pairs


def golden_path(config: Path, objects: Path) -> Path:
    return GOLDEN_DIR / config.stem / f"{objects.parent.name}__{objects.stem}.prom"
