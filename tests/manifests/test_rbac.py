"""RBAC is least privilege, and enough: what the shard calls and what the examples target.

The aggregated ClusterRole is evaluated as the controller manager would fill it (the union
of the rules of every ClusterRole its selectors match).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from shard.command import STATEFULSETS
from shard.reconcile import CONFIG_RESOURCE, CRD_RESOURCE
from tests.manifests.conftest import ROOT, TARGETS, Rendered

ALLOWED_VERBS = {"get", "list", "watch", "patch", "update"}
AGGREGATE_LABEL = "metrics.panopticon.dev/aggregate-to-shard"
EXAMPLES = ROOT / "panopticon" / "data" / "examples" / "metricsconfigurations"
NATIVE_RESOURCES = {
    ("", "Pod"): "pods",
    ("apps", "Deployment"): "deployments",
    ("apps", "StatefulSet"): "statefulsets",
}


def allows(
    rules: list[dict[str, Any]], group: str, resource: str, verb: str, name: str | None = None
) -> bool:
    return any(
        group in rule.get("apiGroups", [])
        and resource in rule.get("resources", [])
        and verb in rule["verbs"]
        and (not rule.get("resourceNames") or name in rule["resourceNames"])
        for rule in rules
    )


def effective_rules(rendered: Rendered, role: dict[str, Any]) -> list[dict[str, Any]]:
    if "aggregationRule" not in role:
        return list(role.get("rules", []))
    rules = []
    for selector in role["aggregationRule"]["clusterRoleSelectors"]:
        for other in rendered.of_kind("ClusterRole"):
            labels = other["metadata"].get("labels", {})
            if other is not role and all(labels.get(k) == v for k, v in selector["matchLabels"].items()):
                rules += other.get("rules", [])
    return rules


def shard_rules(rendered: Rendered) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(cluster-wide rules, rules in the shard's namespace) bound to the shard's ServiceAccount."""
    account = rendered.get("StatefulSet", "panopticon-shard")["spec"]["template"]["spec"][
        "serviceAccountName"
    ]
    cluster: list[dict[str, Any]] = []
    local: list[dict[str, Any]] = []
    for binding in [*rendered.of_kind("ClusterRoleBinding"), *rendered.of_kind("RoleBinding")]:
        subjects = binding["subjects"]
        if not any(s["kind"] == "ServiceAccount" and s["name"] == account for s in subjects):
            continue
        assert all(s.get("namespace") == "panopticon" for s in subjects), binding["metadata"]["name"]
        ref = binding["roleRef"]
        rules = effective_rules(rendered, rendered.get(ref["kind"], ref["name"]))
        (
            cluster if binding["kind"] == "ClusterRoleBinding" and ref["kind"] == "ClusterRole" else local
        ).extend(rules)
    return cluster, local


@pytest.mark.parametrize("target", TARGETS)
def test_no_rule_uses_wildcards_touches_secrets_or_writes_beyond_status(
    rendered: dict[str, Rendered], target: str
) -> None:
    r = rendered[target]
    for role in [*r.of_kind("ClusterRole"), *r.of_kind("Role")]:
        for rule in role.get("rules", []):
            where = f"{role['kind']}/{role['metadata']['name']}: {rule}"
            assert set(rule["verbs"]) <= ALLOWED_VERBS, where
            for field in ("apiGroups", "resources", "resourceNames", "nonResourceURLs"):
                assert not any("*" in item for item in rule.get(field, [])), where
            assert not {"secrets", "configmaps"} & set(rule.get("resources", [])), where
            writes = set(rule["verbs"]) & {"patch", "update"}
            assert not writes or rule["resources"] == ["metricsconfigurations/status"], where
            assert "nonResourceURLs" not in rule, where


@pytest.mark.parametrize("target", TARGETS)
def test_the_shard_may_do_what_the_shard_code_does_and_no_more(
    rendered: dict[str, Rendered], target: str
) -> None:
    r = rendered[target]
    cluster, local = shard_rules(r)
    for verb in ("get", "list", "watch"):
        assert allows(cluster, CONFIG_RESOURCE.group, CONFIG_RESOURCE.resource, verb)
        assert allows(cluster, CRD_RESOURCE.group, CRD_RESOURCE.resource, verb)
    assert allows(cluster, CONFIG_RESOURCE.group, f"{CONFIG_RESOURCE.resource}/status", "patch")
    # Its own StatefulSet only, in its own namespace (watched with fieldSelector=metadata.name).
    args = r.get("StatefulSet", "panopticon-shard")["spec"]["template"]["spec"]["containers"][0]["args"]
    name = args[args.index("--statefulset") + 1]
    for verb in ("get", "list", "watch"):
        assert allows(local, STATEFULSETS.group, STATEFULSETS.resource, verb, name)
        assert not allows(local, STATEFULSETS.group, STATEFULSETS.resource, verb, "another")
    assert not allows(cluster, "apps", "statefulsets", "get")
    # The shard's ClusterRole is the aggregated one: teams extend it with labelled roles.
    binding = r.get("ClusterRoleBinding", "panopticon-shard")
    aggregated = r.get("ClusterRole", binding["roleRef"]["name"])
    assert aggregated["aggregationRule"]["clusterRoleSelectors"] == [
        {"matchLabels": {AGGREGATE_LABEL: "true"}}
    ]


def _example_targets() -> set[tuple[str, str]]:
    targets = set()
    for path in [*(EXAMPLES / "kubedb").glob("*.yaml"), *(EXAMPLES / "native").glob("*.yaml")]:
        for doc in yaml.safe_load_all(path.read_text()):
            ref = doc["spec"]["targetRef"]
            group = ref["apiVersion"].rpartition("/")[0]
            targets.add((group, ref["kind"]))
    return targets


def _plurals(crd_file: Path) -> dict[tuple[str, str], str]:
    plurals = dict(NATIVE_RESOURCES)
    for crd in yaml.safe_load_all(crd_file.read_text()):
        spec = crd["spec"]
        plurals[(spec["group"], spec["names"]["kind"])] = spec["names"]["plural"]
    return plurals


def test_the_base_lets_the_shards_list_and_watch_every_example_target(rendered: dict[str, Rendered]) -> None:
    cluster, _ = shard_rules(rendered["base"])
    plurals = _plurals(ROOT / "panopticon" / "data" / "crds" / "kubedb.yaml")
    targets = _example_targets()
    assert len(targets) >= 15
    for group, kind in sorted(targets):
        resource = plurals[(group, kind)]
        for verb in ("list", "watch"):
            assert allows(cluster, group, resource, verb), f"{verb} {group}/{resource} ({kind})"
        assert not allows(cluster, group, resource, "get"), "targets need list/watch only"
