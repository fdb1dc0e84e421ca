"""Series caps (`spec.limits.series`, `--max-series-per-config`): parsing, the keep rule, offline render.

The rule (`panopticon.render.limits`): a capped config keeps the longest prefix of its
objects, in FNV-1a-64-of-uid order, whose series fit the cap. These tests check the
rule against a brute-force reading of it, that the offline render applies it
whatever the input order, that other configs keep every series, and that bad limits
are field-path errors.
"""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from panopticon.config.model import parse_config
from panopticon.render.families import resolve_families
from panopticon.render.limits import Demand, admitted, effective_cap, merge_counts
from panopticon.render.offline import render_exposition
from panopticon.render.program import compile_config
from panopticon.sharding.buckets import fnv1a64
from panopticon.sharding.limits import order_key


def config(name: str, limits: Any = None, *, metrics: int = 1, kind: str = "Widget") -> dict[str, Any]:
    spec: dict[str, Any] = {
        "targetRef": {"apiVersion": "example.com/v1", "kind": kind},
        "metrics": [
            {
                "name": f"{name}_m{i}",
                "help": "h",
                "type": "gauge",
                "metricValue": {"valueFromPath": ".spec.size"},
            }
            for i in range(metrics)
        ],
    }
    if limits is not None:
        spec["limits"] = limits
    return {
        "apiVersion": "metrics.appscode.com/v1alpha1",
        "kind": "MetricsConfiguration",
        "metadata": {"name": name, "uid": f"uid-{name}"},
        "spec": spec,
    }


def widget(i: int, kind: str = "Widget") -> dict[str, Any]:
    return {
        "apiVersion": "example.com/v1",
        "kind": kind,
        "metadata": {"name": f"w{i}", "namespace": "default", "uid": f"00000000-0000-0000-0000-{i:012d}"},
        "spec": {"size": i},
    }


def errors_of(body: dict[str, Any]) -> list[str]:
    _, findings = parse_config(body)
    return [str(f) for f in findings if f.severity == "error"]


def test_a_limit_is_read_and_reaches_the_program() -> None:
    spec, findings = parse_config(config("a", {"series": 5}))
    assert spec is not None and spec.series_limit == 5 and not findings
    compiled = compile_config(config("a", {"series": 5}))
    assert compiled.program is not None and compiled.program.series_limit == 5
    assert compile_config(config("a")).program.series_limit is None  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("limits", "message"),
    [
        ({"series": -1}, "spec.limits.series: must be a non-negative integer, not -1"),
        ({"series": 1.5}, "spec.limits.series: must be a non-negative integer, not 1.5"),
        ({"series": "10"}, "spec.limits.series: must be a non-negative integer, not a string"),
        ({"series": True}, "spec.limits.series: must be a non-negative integer, not a boolean"),
        ({}, "spec.limits.series: is required"),
        ({"series": 3, "objects": 2}, "spec.limits.objects: unknown field: limits has only series"),
        (7, "spec.limits: must be an object ({series: N}), not a number"),
    ],
)
def test_bad_limits_are_field_path_errors(limits: Any, message: str) -> None:
    errors = errors_of(config("a", limits))
    assert any(message in e for e in errors), errors
    assert compile_config(config("a", limits)).program is None or "objects" in message


def test_whole_number_floats_are_accepted() -> None:
    spec, _ = parse_config(config("a", {"series": 1e3}))
    assert spec is not None and spec.series_limit == 1000


def test_effective_cap_is_the_lower_of_both() -> None:
    assert effective_cap(None, None) is None
    assert effective_cap(5, None) == 5
    assert effective_cap(None, 7) == 7
    assert effective_cap(9, 7) == 7 and effective_cap(3, 7) == 3


def brute_force_cutoff(values: list[int], cap: int) -> tuple[int, int] | None:
    total = 0
    for bucket, value in enumerate(values):
        if total + value > cap:
            return bucket, cap - total
        total += value
    return None


def test_demand_cutoff_matches_a_linear_scan() -> None:
    rng = random.Random(17)
    for size in (1, 2, 3, 64, 100, 4096):
        demand = Demand(size)
        for _ in range(300):
            demand.set(rng.randrange(size), rng.choice((0, 0, 1, 2, 5, 40)))
            cap = rng.randrange(0, 3 * max(demand.total(), 1))
            expected = brute_force_cutoff(demand.values, cap)
            cut = demand.cutoff(cap)
            assert (None if cut is None else (cut.bucket, cut.budget)) == expected
            bucket = rng.randrange(size + 1)
            assert demand.before(bucket) == sum(demand.values[:bucket])


def test_admitted_is_the_longest_prefix_in_hash_order() -> None:
    entries = {f"u{i}": 1 + i % 3 for i in range(50)}
    order = sorted(entries, key=lambda u: (fnv1a64(u), u))
    for budget in (0, 1, 2, 10, 57, 200):
        kept, total = set(), 0
        for uid in order:
            if total + entries[uid] > budget:
                break
            total += entries[uid]
            kept.add(uid)
        assert admitted(entries, budget, order_key) == kept


def rendered_names(text: str, family: str) -> set[str]:
    return {
        line.split('widget="', 1)[1].split('"', 1)[0]
        for line in text.splitlines()
        if line.startswith(family + "{")
    }


def resolution(*bodies: dict[str, Any]) -> Any:
    programs = []
    for body in bodies:
        compiled = compile_config(body)
        assert compiled.program is not None, compiled.findings
        programs.append(compiled.program)
    return resolve_families(programs)


def test_offline_render_keeps_the_same_objects_whatever_the_input_order() -> None:
    objects = [widget(i) for i in range(40)]
    capped = config("capped", {"series": 25}, metrics=2)  # 2 series per object: 12 objects
    free = config("free", metrics=1)
    res = resolution(capped, free)
    expo = render_exposition(res, objects, order=order_key)
    text = expo.to_bytes().decode()
    kept = rendered_names(text, "example_com_widget_capped_m0")
    by_hash = sorted(objects, key=lambda o: (fnv1a64(o["metadata"]["uid"]), o["metadata"]["uid"]))
    assert kept == {o["metadata"]["name"] for o in by_hash[:12]}
    assert rendered_names(text, "example_com_widget_capped_m1") == kept
    assert len(rendered_names(text, "example_com_widget_free_m0")) == 40  # other configs keep all
    assert (expo.limits["capped"].kept, expo.limits["capped"].dropped) == (24, 56)
    assert "free" not in expo.limits
    for seed in range(5):
        shuffled = objects[:]
        random.Random(seed).shuffle(shuffled)
        again = render_exposition(res, shuffled, order=order_key).to_bytes().decode()
        assert sorted(again.splitlines()) == sorted(text.splitlines())  # lines follow the input order


def test_the_global_cap_applies_to_every_config_and_the_lower_cap_wins() -> None:
    objects = [widget(i) for i in range(30)]
    res = resolution(config("a", {"series": 5}), config("b"))
    expo = render_exposition(res, objects, max_series_per_config=10, order=order_key)
    text = expo.to_bytes().decode()
    assert len(rendered_names(text, "example_com_widget_a_m0")) == 5
    assert len(rendered_names(text, "example_com_widget_b_m0")) == 10
    assert expo.limits["a"].cap == 5 and expo.limits["b"].cap == 10
    uncapped = render_exposition(res, objects, order=order_key).to_bytes().decode()
    assert len(rendered_names(uncapped, "example_com_widget_b_m0")) == 30


def test_a_cap_of_zero_writes_nothing_and_a_high_cap_changes_nothing() -> None:
    objects = [widget(i) for i in range(10)]
    assert (
        render_exposition(resolution(config("a", {"series": 0})), objects, order=order_key).series_count()
        == 0
    )
    plain = render_exposition(resolution(config("a")), objects, order=order_key).to_bytes()
    assert (
        render_exposition(resolution(config("a", {"series": 10})), objects, order=order_key).to_bytes()
        == plain
    )


def test_merge_counts_sums_shards_and_ignores_garbage() -> None:
    merged = merge_counts(
        [{"a": [10, 4, 3]}, {"a": [10, 6, 2], "b": "nonsense"}, None, {"a": [8, 0, 0]}, {"c": [1, -1, 0]}]
    )
    assert set(merged) == {"a"}
    assert (merged["a"].cap, merged["a"].kept, merged["a"].dropped) == (8, 10, 5)


def test_render_command_caps_and_reports(tmp_path: Path) -> None:
    configs = tmp_path / "configs.yaml"
    configs.write_text(yaml.safe_dump_all([config("a", {"series": 3}), config("b")]))
    objects = tmp_path / "objects.yaml"
    objects.write_text(yaml.safe_dump_all([widget(i) for i in range(8)]))
    done = subprocess.run(
        [sys.executable, "-m", "panopticon", "render", "-c", str(configs), "-o", str(objects),
         "--max-series-per-config", "6"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert len(rendered_names(done.stdout, "example_com_widget_a_m0")) == 3
    assert len(rendered_names(done.stdout, "example_com_widget_b_m0")) == 6
    assert "config a: 5 of 8 series not written (cap 3" in done.stderr
    assert "config b: 2 of 8 series not written (cap 6" in done.stderr
    bad = subprocess.run(
        [sys.executable, "-m", "panopticon", "render", "-c", str(configs), "-o", str(objects),
         "--max-series-per-config", "-1"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert bad.returncode == 2 and "--max-series-per-config" in bad.stderr


def test_capped_configs_need_the_keep_order_offline() -> None:
    with pytest.raises(ValueError, match="keep order"):
        render_exposition(resolution(config("a", {"series": 1})), [widget(1)])
    assert render_exposition(resolution(config("a")), [widget(1)]).series_count() == 1  # uncapped: not needed
