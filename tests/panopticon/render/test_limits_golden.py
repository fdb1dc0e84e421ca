"""Golden renders of a capped config: KubeDB's MongoDB config over every example MongoDB.

The uncapped render, and renders capped at several sizes with `--max-series-per-config`
semantics, are kept in tests/golden/limits/: a change of the keep order (or of which
objects a cap keeps) shows as a diff. Each capped render is checked too: a subset of
the uncapped one, at most the cap, and whole objects only (an object's series are all
kept or all left out). Regenerate with `PANOPTICON_UPDATE_GOLDEN=1` and review the diff.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from panopticon.config.documents import read_documents
from panopticon.render.families import resolve_families
from panopticon.render.offline import render_exposition
from panopticon.sharding.limits import order_key
from tests.panopticon.examples import CONFIG_DIR, OBJECT_DIR, compiled

GOLDEN = Path(__file__).resolve().parents[2] / "golden" / "limits"
UPDATE = os.environ.get("PANOPTICON_UPDATE_GOLDEN") == "1"
CONFIG = CONFIG_DIR / "kubedb" / "kubedb-com-mongodb.yaml"
CAPS = (0, 20, 40, 70)


def mongodbs() -> list[dict[str, Any]]:
    seen: set[str] = set()
    out = []
    for path in sorted((OBJECT_DIR / "mongodb").glob("*.yaml")):
        for doc in read_documents(str(path)):
            meta = doc.body.get("metadata", {})
            key = f"{meta.get('namespace')}/{meta.get('name')}"
            if doc.body.get("kind") == "MongoDB" and key not in seen:
                seen.add(key)
                out.append(doc.body)
    return out


def render(cap: int | None) -> tuple[bytes, Any]:
    program = compiled(CONFIG).program
    assert program is not None
    expo = render_exposition(
        resolve_families([program]), mongodbs(), max_series_per_config=cap, order=order_key
    )
    return expo.to_bytes(), expo


def objects_of(text: str) -> dict[str, set[str]]:
    """Series lines by the object they belong to (its mongodb and namespace labels)."""
    out: dict[str, set[str]] = {}
    for line in text.splitlines():
        if line.startswith("#") or not line:
            continue
        labels = line.split("{", 1)[1]
        name = labels.split('mongodb="', 1)[1].split('"', 1)[0]
        namespace = labels.split('namespace="', 1)[1].split('"', 1)[0]
        out.setdefault(f"{namespace}/{name}", set()).add(line)
    return out


def check_golden(name: str, text: bytes) -> None:
    path = GOLDEN / name
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text)
    assert path.exists(), f"no golden file {path}; run with PANOPTICON_UPDATE_GOLDEN=1"
    assert text == path.read_bytes()


@pytest.mark.parametrize("cap", CAPS)
def test_capped_renders_match_their_golden_files_and_keep_whole_objects(cap: int) -> None:
    full, full_expo = render(None)
    assert not full_expo.limits
    check_golden("kubedb-com-mongodb__uncapped.prom", full)
    text, expo = render(cap)
    check_golden(f"kubedb-com-mongodb__cap-{cap}.prom", text)
    count = expo.limits["mongodb"] if "mongodb" in expo.limits else next(iter(expo.limits.values()))
    assert count.kept <= cap and count.kept + count.dropped == full_expo.series_count()
    assert expo.series_count() == count.kept
    everything, kept = objects_of(full.decode()), objects_of(text.decode())
    for obj, lines in kept.items():
        assert lines == everything[obj], f"{obj}: only some of its series were kept"
    assert 0 < len(kept) < len(everything) or cap == 0
