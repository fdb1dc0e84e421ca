"""The pure layers: MVCC storage, continue tokens, patches, workloads (no server)."""

from __future__ import annotations

import orjson
import pytest

from kubesim import SimConfig, Simulator, example_configs, example_objects, mongodb_objects, native_objects
from kubesim.encoding import ContinueError, decode_continue, encode_continue
from kubesim.natives import WorkloadSpec
from kubesim.patch import json_patch, merge_patch, strategic_merge_patch
from kubesim.resources import NATIVE_TYPES, version_priority
from kubesim.storage import Storage

CONFIGMAPS = next(t for t in NATIVE_TYPES if t.plural == "configmaps")


def cm(name: str, ns: str = "a", **labels: str) -> dict[str, object]:
    return {"metadata": {"name": name, "namespace": ns, "labels": labels}}


def test_one_global_revision_orders_every_write() -> None:
    storage = Storage(start_revision=1000, ring_capacity=100)
    v1, _ = storage.put(CONFIGMAPS, cm("x"))
    v2, old = storage.put(CONFIGMAPS, cm("x", team="b"))
    tomb = storage.delete(CONFIGMAPS, "a/x")
    assert (v1.rev, v2.rev, tomb.rev if tomb else 0) == (1001, 1002, 1003)
    assert old is v1 and tomb is not None and tomb.deleted
    assert orjson.loads(tomb.item)["metadata"]["resourceVersion"] == "1003"
    assert [e.type for e in storage.stores[CONFIGMAPS.key].events] == ["ADDED", "MODIFIED", "DELETED"]


def test_history_serves_past_revisions_until_compaction() -> None:
    storage = Storage(start_revision=0, ring_capacity=100)
    storage.put(CONFIGMAPS, cm("x", v="1"))
    storage.put(CONFIGMAPS, cm("y"))
    storage.put(CONFIGMAPS, cm("x", v="2"))
    storage.delete(CONFIGMAPS, "a/y")
    st = storage.stores[CONFIGMAPS.key]
    assert [v.labels for v in st.iter_at(2)] == [{"v": "1"}, {}]
    assert [v.labels for v in st.iter_at(4)] == [{"v": "2"}]
    storage.compact(3)
    assert [v.labels for v in st.iter_at(3)] == [{"v": "2"}, {}]
    assert st.versions == 3 and st.ring_start_rev == 3  # x@3, y@2 and its tombstone@4
    storage.compact(4)
    assert list(st.history) == ["a/x"], "a tombstone at or below the compaction point is gone"


def test_items_are_serialised_once_without_type_and_metadata_first() -> None:
    storage = Storage(start_revision=0, ring_capacity=10)
    v, _ = storage.put(CONFIGMAPS, {"kind": "ConfigMap", "apiVersion": "v1", "data": {"k": "v"}, **cm("x")})
    assert v.item.startswith(b'{"metadata":{') and b'"kind"' not in v.item


def test_continue_tokens_round_trip_and_reject_garbage() -> None:
    token = encode_continue("ns/name\x00", 42)
    assert decode_continue(token) == ("ns/name\x00", 42)
    for bad in ("%%%", encode_continue("", 42), encode_continue("x\x00", 0), encode_continue("../x\x00", 1)):
        with pytest.raises(ContinueError, match=r"^continue key is not valid"):
            decode_continue(bad)


def test_merge_strategic_and_json_patches_apply() -> None:
    doc = {
        "spec": {"containers": [{"name": "a", "image": "1"}, {"name": "b", "image": "1"}]},
        "metadata": {"finalizers": ["x"]},
    }
    assert "spec" not in merge_patch(doc, {"spec": None})
    patch = {
        "spec": {
            "$setElementOrder/containers": [{"name": "a"}, {"name": "b"}],
            "containers": [{"name": "b", "image": "2"}],
        },
        "metadata": {"finalizers": ["y"]},
    }
    smp = strategic_merge_patch(doc, patch)
    assert smp["spec"]["containers"] == [{"name": "a", "image": "1"}, {"name": "b", "image": "2"}]
    assert smp["metadata"]["finalizers"] == ["x", "y"]
    deleted = strategic_merge_patch(doc, {"spec": {"containers": [{"name": "a", "$patch": "delete"}]}})
    assert [c["name"] for c in deleted["spec"]["containers"]] == ["b"]
    patched = json_patch(
        doc,
        [
            {"op": "replace", "path": "/spec/containers/0/image", "value": "9"},
            {"op": "add", "path": "/metadata/finalizers/-", "value": "z"},
        ],
    )
    assert patched["spec"]["containers"][0]["image"] == "9" and patched["metadata"]["finalizers"] == [
        "x",
        "z",
    ]


def test_version_priority_prefers_ga_then_beta_then_alpha() -> None:
    assert sorted(["v1alpha1", "v2", "v1beta2", "v1", "v1beta1", "foo"], key=version_priority) == [
        "v2",
        "v1",
        "v1beta2",
        "v1beta1",
        "v1alpha1",
        "foo",
    ]


def test_the_start_revision_is_large_random_and_seeded() -> None:
    a, b, c = Simulator(SimConfig(seed=1)), Simulator(SimConfig(seed=1)), Simulator(SimConfig(seed=2))
    assert a.revision == b.revision != c.revision and a.revision > 1_000_000


def test_example_objects_scale_with_distinct_names_and_uids() -> None:
    one, three = example_objects(1), example_objects(3, seed=4)
    assert len(three) == 3 * len(one)
    keys = {
        (o["apiVersion"], o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]) for o in three
    }
    assert len(keys) == len(three)
    assert len({o["metadata"]["uid"] for o in three}) == len(three)
    assert example_objects(3, seed=4) == three, "deterministic by seed"


def test_every_example_loads_into_the_simulator_with_filled_metadata() -> None:
    sim = Simulator(SimConfig(seed=1))
    assert sim.load(example_objects(1)) == len(example_objects(1))
    assert sim.load(example_configs()) == 22
    for mg in sim.list_objects("kubedb.com/v1", "MongoDB"):
        meta = mg["metadata"]
        assert meta["namespace"] and meta["uid"] and meta["creationTimestamp"] and meta["resourceVersion"]
    mysql = sim.get("kubedb.com/v1", "MySQL", "mysql-quickstart", namespace="demo")
    assert mysql is not None, "a nameless example is named after its last-applied configuration"


def test_native_workloads_are_deterministic_and_sized_like_real_objects() -> None:
    spec = WorkloadSpec(namespaces=2, deployments=2, pods_per_deployment=3, seed=9)
    first, second = list(native_objects(spec)), list(native_objects(spec))
    assert first == second
    pods = [o for o in first if o["kind"] == "Pod"]
    assert len(pods) == 2 * 2 * 3
    sizes = [len(orjson.dumps(p)) for p in pods]
    assert min(sizes) > 3000, "a kind pod with managedFields is several KiB"
    assert {m["manager"] for m in pods[0]["metadata"]["managedFields"]} == {
        "kube-controller-manager",
        "kubelet",
    }
    assert pods[0]["metadata"]["ownerReferences"][0]["kind"] == "ReplicaSet"
    assert {o["kind"] for o in first} >= {
        "Namespace",
        "Node",
        "Deployment",
        "ReplicaSet",
        "Pod",
        "Service",
        "ConfigMap",
        "Secret",
        "MongoDB",
    }


def test_mongodb_objects_vary_and_are_unique() -> None:
    objs = list(mongodb_objects(500, seed=3, namespaces=("a", "b")))
    assert len({o["metadata"]["uid"] for o in objs}) == 500
    assert len({(o["metadata"]["namespace"], o["metadata"]["name"]) for o in objs}) == 500
    assert len({o["status"]["phase"] for o in objs}) >= 4 and len({o["spec"]["version"] for o in objs}) >= 4
    assert objs == list(mongodb_objects(500, seed=3, namespaces=("a", "b")))
