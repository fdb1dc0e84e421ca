"""Writing converted MetricsConfigurations: one YAML stream, or one file per config.

Each document starts with a comment naming the CRS resource it comes from. Lists of
scalars and label entries are written in flow style (`{key: name, valuePath: ...}`),
the way the documentation writes them.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

import yaml

from panopticon.convert.mapping import Converted
from panopticon.errors import DocumentError


def to_yaml(configs: Iterable[Converted]) -> str:
    """Every config as a YAML document, `---`-separated."""
    docs = []
    for config in configs:
        text = yaml.safe_dump(
            config.body, sort_keys=False, default_flow_style=None, allow_unicode=True, width=100
        )
        docs.append(f"# converted from {config.origin}\n{text}")
    return "---\n".join(docs)


def write_files(configs: Iterable[Converted], directory: str) -> list[str]:
    """One `<config name>.yaml` per config in `directory` (created if missing)."""
    try:
        os.makedirs(directory, exist_ok=True)
        written = []
        for config in configs:
            path = os.path.join(directory, f"{config.name}.yaml")
            with open(path, "w", encoding="utf-8") as fh:
                fh.write(to_yaml([config]))
            written.append(path)
    except OSError as e:
        raise DocumentError(f"{directory}: {e.strerror or e}") from e
    return written
