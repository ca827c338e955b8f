"""Remediation through the API over the in-memory services: a fault from telemetry or an
event becomes a plan that drains the node and requeues its job on dcops's scheduler;
plans, approvals, incidents, health and the breaker read back; bad input is a clear 4xx."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from dcops.access.model import Role
from dcops.remediation.service import RemediationService
from dcops.scheduling.model import JobSpec, JobState
from dcops.settings import parse_settings
from dcops.telemetry.model import Batch, make_labels
from tests.api.conftest import Api, running_api


@pytest.fixture
def api() -> Iterator[Api]:
    yield from running_api(parse_settings({"scheduling": {"local": {"nodes": 2,
                                                                    "gpus_per_node": 4}}}))


def service(api: Api) -> RemediationService:
    assert api.services.remediation is not None
    return api.services.remediation


def get(api: Api, path: str, **params: Any) -> Any:
    answer = api.client.get(path, params=params, headers=api.auth(Role.VIEWER))
    assert answer.status_code == 200, answer.text
    return answer.json()


def post(api: Api, path: str, body: Any = None, role: Role = Role.OPERATOR) -> Any:
    return api.client.post(path, json=body, headers=api.auth(role))


def running_job(api: Api) -> tuple[str, str]:
    job = api.services.jobs.submit(JobSpec("train", gpus_per_task=4, command=("true",)))
    api.services.jobs.tick()
    placed = api.services.jobs.get(job.id).placement
    assert placed is not None
    return job.id, placed.node_names[0]


def xid_batch(node: str, count: float, ts_ms: int) -> Batch:
    batch = Batch()
    batch.add(make_labels("dcops_gpu_xid_errors_total", {"node": node, "gpu": "2",
                                                         "xid": "79"}), ts_ms, count)
    batch.add(make_labels("dcops_host_cpu_percent", {"node": node, "cpu": "total"}), ts_ms, 5.0)
    return batch


def test_an_xid_79_sample_drains_the_node_and_requeues_its_job(api: Api) -> None:
    job_id, node = running_job(api)
    ingest = api.services.ingestor
    now_ms = int(api.clock.now() * 1000)
    ingest.accept(xid_batch(node, 0.0, now_ms), "push")
    service(api).process()
    assert get(api, "/api/v1/remediation/plans") == []
    api.clock.advance(10)
    ingest.accept(xid_batch(node, 1.0, now_ms + 10_000), "push")
    service(api).process()
    plans = get(api, "/api/v1/remediation/plans", live="true")
    assert len(plans) == 1
    plan = plans[0]
    assert plan["node"] == node and plan["gpu"] == 2 and plan["state"] == "waiting"
    assert [(s["action"]["kind"], s["state"]) for s in plan["steps"]] == [
        ("incident", "done"), ("drain_now", "done"), ("requeue", "done"),
        ("reboot", "awaiting_approval"), ("recheck", "pending"), ("resume", "pending")]
    assert api.services.jobs.get(job_id).state is JobState.REQUEUED
    info, running = api.services.jobs.node(node)
    assert not info.schedulable and info.reason.startswith("dcops: ") and running == []
    health = get(api, "/api/v1/health", worst="true")
    assert [(n["node"], n["health"]) for n in health] == [(node, "failed")]
    detail = get(api, f"/api/v1/health/nodes/{node}")
    assert detail["gpus"][0]["index"] == 2 and detail["gpus"][0]["evidence"]
    incidents = get(api, "/api/v1/incidents", open="true")
    assert [i["id"] for i in incidents] == [plan["incident_id"]]
    kinds = [e["kind"] for e in get(api, f"/api/v1/incidents/{plan['incident_id']}")["timeline"]]
    assert kinds[:2] == ["signal", "diagnosis"] and "drain_now" in kinds
    audit = [r.action for r in api.services.audit.list(limit=1000)]
    assert "remediation.drain_now" in audit and "remediation.requeue" in audit


def test_signals_from_the_api_are_diagnosed_and_previews_change_nothing(api: Api) -> None:
    _, node = running_job(api)
    signal = {"node": node, "kind": "xid", "code": 48, "gpu": 1}
    preview = post(api, "/api/v1/remediation/preview", {"signals": [signal]}, Role.VIEWER)
    assert preview.status_code == 200, preview.text
    [item] = preview.json()
    assert item["diagnosis"]["remedy"] == "reset_gpu" and item["plan"]["id"] == "dry-run"
    assert get(api, "/api/v1/remediation/plans") == []
    reboot = {"node": node, "kind": "xid", "code": 79, "gpu": 1}
    answer = post(api, "/api/v1/health/signals", {"signals": [reboot]})
    assert answer.status_code == 202 and answer.json() == {"accepted": 1}
    service(api).process()
    [plan] = get(api, "/api/v1/remediation/plans")
    assert plan["state"] == "waiting" and "approval" in plan["reason"]
    approve = post(api, f"/api/v1/remediation/plans/{plan['id']}/approve")
    assert approve.status_code == 200
    reboot_step = approve.json()["steps"][3]
    assert reboot_step["approved_by"] == f"token:{Role.OPERATOR.value}"
    cancelled = post(api, f"/api/v1/remediation/plans/{plan['id']}/cancel",
                     {"reason": "taking it for RMA"})
    assert cancelled.status_code == 200 and cancelled.json()["state"] == "cancelled"
    again = post(api, f"/api/v1/remediation/plans/{plan['id']}/approve")
    assert again.status_code == 409 and "is cancelled, not live" in again.json()["message"]
    breaker = get(api, "/api/v1/remediation/breaker")
    assert breaker["open"] is False and breaker["out_nodes"] == [node]


@pytest.mark.parametrize(("body", "where"), [
    ({"signals": [{"node": "n1", "kind": "meltdown"}]}, "kind"),
    ({"signals": [{"kind": "xid"}]}, "node"),
    ({"signals": []}, "signals"),
    ({"signals": [{"node": "n1", "kind": "xid", "gpu": -1}]}, "gpu"),
])
def test_bad_signals_are_a_clear_400(api: Api, body: Any, where: str) -> None:
    answer = post(api, "/api/v1/health/signals", body)
    assert answer.status_code == 400, answer.text
    assert where in answer.text


def test_roles_and_unknown_ids(api: Api) -> None:
    signal = {"signals": [{"node": "local-0", "kind": "xid", "code": 79}]}
    assert post(api, "/api/v1/health/signals", signal, Role.VIEWER).status_code == 403
    assert api.client.get("/api/v1/remediation/plans/plan-x",
                          headers=api.auth(Role.VIEWER)).status_code == 404
    assert api.client.get("/api/v1/incidents/inc-x",
                          headers=api.auth(Role.VIEWER)).status_code == 404


def test_switched_off_remediation_says_so() -> None:
    for api in running_api(parse_settings({"remediation": {"enabled": False}})):
        answer = api.client.get("/api/v1/remediation/plans", headers=api.auth(Role.VIEWER))
        assert answer.status_code == 503
        assert "remediation is switched off" in answer.json()["message"]
