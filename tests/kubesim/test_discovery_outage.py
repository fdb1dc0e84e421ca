"""The discovery-outage fault: one group-version's document answers 503 for a while."""

from __future__ import annotations

import time

import pytest

from kubesim import AdminClient
from kubesim.admin_client import AdminError
from tests.kubesim.client import Api


def test_a_failed_group_version_answers_503_until_its_time_is_up_and_nothing_else_does(
    api: Api, ns: str, knobs: AdminClient
) -> None:
    knobs.fail_discovery("apps/v1", seconds=1.0)
    failed = api.get("/apis/apps/v1")
    assert failed.status == 503
    assert failed.body == b"service unavailable\n"
    assert "retry-after" not in {k.lower() for k in failed.headers}
    # Only that document: the group list, other versions and the objects still answer.
    assert api.get("/apis").status == 200
    assert api.get("/api/v1").status == 200
    assert api.get(f"/apis/apps/v1/namespaces/{ns}/deployments").status == 200
    time.sleep(1.1)
    assert api.get("/apis/apps/v1").status == 200


def test_the_core_group_version_can_fail_and_clearing_faults_ends_an_outage(
    api: Api, knobs: AdminClient
) -> None:
    knobs.fail_discovery("v1", seconds=60)
    assert api.get("/api/v1").status == 503
    assert api.get("/api").status == 200
    knobs.clear_faults()
    assert api.get("/api/v1").status == 200


def test_a_discovery_outage_without_a_group_version_is_a_400(knobs: AdminClient) -> None:
    with pytest.raises(AdminError) as raised:
        knobs.call("POST", "/faults/discovery", {"seconds": 5})
    assert raised.value.code == 400
