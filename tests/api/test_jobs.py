"""/api/v1/jobs, /queue and /fairness over the in-memory services (a cluster manager that
runs nothing, ticked by the test): submit to finish, clear 400s naming the field, roles,
audit."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from dcops.access.model import Role
from dcops.scheduling.memory import MemoryClusterManager
from dcops.settings import parse_settings
from tests.api.conftest import Api, running_api


@pytest.fixture
def api() -> Iterator[Api]:
    yield from running_api(parse_settings({"scheduling": {
        "local": {"gpus_per_node": 4},
        "tenants": [{"name": "research", "gpu_quota": 2, "weight": 3},
                    {"name": "prod", "weight": 1}]}}))


def _submit(api: Api, **body: Any) -> Any:
    job = {"name": "train", "tenant": "research", "gpus_per_task": 1,
           "command": ["python", "train.py"]} | body
    return api.client.post("/api/v1/jobs", json=job, headers=api.auth(Role.OPERATOR))


def _get(api: Api, path: str, **params: Any) -> Any:
    answer = api.client.get(path, params=params, headers=api.auth(Role.VIEWER))
    assert answer.status_code == 200, answer.text
    return answer.json()


def _manager(api: Api) -> MemoryClusterManager:
    manager = api.services.jobs.manager
    assert isinstance(manager, MemoryClusterManager)
    return manager


def test_submit_then_list_show_and_finish(api: Api) -> None:
    made = _submit(api, gpus_per_task=2)
    assert made.status_code == 201, made.text
    job = made.json()
    assert (job["id"], job["state"], job["gpus"], job["command"]) == (
        "1", "queued", 2, ["python", "train.py"])
    assert [j["id"] for j in _get(api, "/api/v1/jobs")] == ["1"]
    api.services.jobs.tick()
    shown = _get(api, "/api/v1/jobs/1")
    assert shown["state"] == "running"
    assert shown["placement"] == [{"node": "local", "gpus": 2}]
    assert [e["what"] for e in shown["events"]] == ["submitted", "started on local:2"]
    api.clock.advance(30)
    assert _get(api, "/api/v1/jobs/1")["run_s"] == 30
    _manager(api).finish("1", api.clock.now())
    api.services.jobs.tick()
    assert _get(api, "/api/v1/jobs/1")["state"] == "completed"
    audit = api.services.audit.list(target="job/1")
    assert [(a.action, a.actor) for a in audit] == [("job.submit", "token:operator")]


def test_list_filters_by_state_and_tenant(api: Api) -> None:
    _submit(api, name="a")
    _submit(api, name="b", tenant="prod", gpus_per_task=4)
    api.services.jobs.tick()
    assert [j["name"] for j in _get(api, "/api/v1/jobs", state="running")] == ["a"]
    assert [j["name"] for j in _get(api, "/api/v1/jobs", tenant="prod")] == ["b"]
    bad = api.client.get("/api/v1/jobs", params={"state": "sleeping"},
                         headers=api.auth(Role.VIEWER))
    assert bad.status_code == 400 and bad.json()["where"] == "query.state"


def test_cancel_and_release(api: Api) -> None:
    _submit(api, name="a")
    api.services.jobs.tick()
    cancelled = api.client.delete("/api/v1/jobs/1", headers=api.auth(Role.OPERATOR))
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["state"] == "cancelled"
    assert cancelled.json()["reason"] == "cancelled by operator"
    assert _manager(api).stopped == [("1", "cancelled")]
    not_held = api.client.post("/api/v1/jobs/1/release", headers=api.auth(Role.OPERATOR))
    assert not_held.status_code == 400
    assert not_held.json()["message"] == "job 1 is cancelled, not held"
    missing = api.client.delete("/api/v1/jobs/42", headers=api.auth(Role.OPERATOR))
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"


def test_a_held_job_is_released_back_into_the_queue(api: Api) -> None:
    _submit(api, name="a")
    scheduler = api.services.jobs.scheduler
    scheduler._hold(scheduler.jobs["1"], api.clock.now(), "checked by hand")
    assert _get(api, "/api/v1/jobs/1")["reason"] == "checked by hand"
    released = api.client.post("/api/v1/jobs/1/release", headers=api.auth(Role.OPERATOR))
    assert released.status_code == 200, released.text
    assert released.json()["state"] == "queued"
    assert [e["what"] for e in released.json()["events"]][-2:] == [
        "held: checked by hand", "released"]


def test_queue_is_in_policy_order_with_positions(api: Api) -> None:
    for name, gpus in (("big", 4), ("small", 1), ("other", 1)):
        _submit(api, name=name, tenant="prod", gpus_per_task=gpus)
    _submit(api, name="first", tenant="research")
    api.services.jobs.tick()  # only 4 GPUs: "big" starts, the rest wait in FIFO order
    queue = _get(api, "/api/v1/queue")
    assert queue["policy"] == "fifo"
    assert (queue["gpus_allocated"], queue["gpus_total"]) == (4, 4)
    assert [(j["position"], j["name"]) for j in queue["jobs"]] == [
        (1, "small"), (2, "other"), (3, "first")]
    assert queue["errors"] == []


def test_fairness_per_tenant(api: Api) -> None:
    _submit(api, name="r1", tenant="research", gpus_per_task=2)
    _submit(api, name="r2", tenant="research", gpus_per_task=1)
    _submit(api, name="p1", tenant="prod", gpus_per_task=1)
    api.services.jobs.tick()
    fair = _get(api, "/api/v1/fairness")
    tenants = {t["name"]: t for t in fair["tenants"]}
    assert tenants["research"] == {
        "name": "research", "gpus_in_use": 2, "gpu_quota": 2, "weight": 3.0,
        "share": 0.5, "weighted_share": 0.75, "running": 1, "waiting": 1, "held": 0}
    assert (tenants["prod"]["gpus_in_use"], tenants["prod"]["gpu_quota"]) == (1, None)
    assert (fair["gpus_allocated"], fair["gpus_total"]) == (3, 4)


@pytest.mark.parametrize(("body", "where"), [
    ({"gpus_per_task": -1}, "body.gpus_per_task"),
    ({"tasks": 0}, "body.tasks"),
    ({"gpus_per_task": "two"}, "body.gpus_per_task"),
    ({"name": ""}, "body.name"),
    ({"command": "python train.py"}, "body.command"),
    ({"gpu": 2}, "body.gpu"),
    ({"duration_estimate_s": 0}, "body.duration_estimate_s"),
])
def test_bad_bodies_are_400_naming_the_field(api: Api, body: dict[str, Any],
                                             where: str) -> None:
    answer = _submit(api, **body)
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"] == "invalid" and answer.json()["where"] == where


def test_a_body_that_is_not_json_is_400(api: Api) -> None:
    answer = api.client.post("/api/v1/jobs", content=b"{not json",
                             headers=api.auth(Role.OPERATOR) | {
                                 "Content-Type": "application/json"})
    assert answer.status_code == 400


@pytest.mark.parametrize(("body", "message"), [
    ({"tenant": "nobody"}, "unknown tenant 'nobody'"),
    ({"gpus_per_task": 3}, "tenant 'research' may use 2 at once"),
    ({"gpus_per_task": 8, "tenant": "prod"}, "the cluster has 4"),
])
def test_admission_refusals_are_400_with_the_reason(api: Api, body: dict[str, Any],
                                                    message: str) -> None:
    answer = _submit(api, **body)
    assert answer.status_code == 400, answer.text
    assert message in answer.json()["message"]
    assert _get(api, "/api/v1/jobs") == []


def test_roles(api: Api) -> None:
    assert api.client.get("/api/v1/jobs").status_code == 401
    assert api.client.get("/api/v1/queue").status_code == 401
    viewer = api.auth(Role.VIEWER)
    refused = api.client.post("/api/v1/jobs", json={"name": "x"}, headers=viewer)
    assert refused.status_code == 403 and "operator" in refused.json()["message"]
    _submit(api)
    assert api.client.delete("/api/v1/jobs/1", headers=viewer).status_code == 403
    assert api.client.post("/api/v1/jobs/1/release", headers=viewer).status_code == 403
    assert api.client.get("/api/v1/fairness", headers=viewer).status_code == 200


def test_no_log_where_the_executor_keeps_none(api: Api) -> None:
    _submit(api)
    answer = api.client.get("/api/v1/jobs/1/log", headers=api.auth(Role.VIEWER))
    assert answer.status_code == 404 and "elsewhere" in answer.json()["hint"]
