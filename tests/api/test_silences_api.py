"""/api/v2/silences and /api/v2/alerts in Alertmanager's shapes (checked against a real
Alertmanager), roles, audit, and clear errors for bad silences."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from dcops.access.model import Role
from dcops.alerts.notifications import AlertStatus, NotifiedAlert
from dcops.settings import Settings
from tests.api.conftest import Api, running_api
from tests.fixtures.alertmanager import AlertmanagerServer


@pytest.fixture
def api() -> Iterator[Api]:
    yield from running_api(Settings())


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat().replace("+00:00", "Z")


def _silence(now: float, **changes: Any) -> dict[str, Any]:
    body = {"matchers": [{"name": "alertname", "value": "GpuTooHot", "isRegex": False,
                          "isEqual": True},
                         {"name": "node", "value": "gpu-0[1-4]", "isRegex": True,
                          "isEqual": True}],
            "startsAt": _iso(now - 60), "endsAt": _iso(now + 3600),
            "createdBy": "alice", "comment": "replacing the PDU in r12"}
    return body | changes


def test_a_silence_reads_back_as_in_alertmanager(
        api: Api, alertmanager_server: AlertmanagerServer) -> None:
    now = api.clock.now()
    made = api.client.post("/api/v2/silences", json=_silence(now), headers=api.auth(Role.OPERATOR))
    assert made.status_code == 200, made.text
    silence_id = made.json()["silenceID"]
    ours = api.client.get(f"/api/v2/silence/{silence_id}", headers=api.auth(Role.VIEWER)).json()
    real_now = datetime.now(UTC).timestamp()
    theirs_id = httpx.post(f"{alertmanager_server.url}/api/v2/silences",
                           json=_silence(real_now), timeout=5).json()["silenceID"]
    theirs = httpx.get(f"{alertmanager_server.url}/api/v2/silence/{theirs_id}",
                       timeout=5).json()
    assert set(ours) == set(theirs)
    assert ours["status"] == theirs["status"] == {"state": "active"}
    assert ours["matchers"] == theirs["matchers"]
    assert (ours["createdBy"], ours["comment"]) == (theirs["createdBy"], theirs["comment"])
    assert ours["startsAt"] == _iso(now)  # a start in the past becomes now, as there
    listed = api.client.get("/api/v2/silences", params={"filter": 'alertname="GpuTooHot"'},
                            headers=api.auth(Role.VIEWER)).json()
    assert [s["id"] for s in listed] == [silence_id]
    assert api.client.get("/api/v2/silences", params={"filter": 'node="x"'},
                          headers=api.auth(Role.VIEWER)).json() == []


def test_expire_update_and_audit(api: Api) -> None:
    now = api.clock.now()
    operator = api.auth(Role.OPERATOR)
    silence_id = api.client.post("/api/v2/silences", json=_silence(now),
                                 headers=operator).json()["silenceID"]
    longer = _silence(now, id=silence_id, startsAt=_iso(now), endsAt=_iso(now + 7200))
    same = api.client.post("/api/v2/silences", json=longer, headers=operator).json()
    assert same == {"silenceID": silence_id}  # changed in place: same matchers, active
    gone = api.client.delete(f"/api/v2/silence/{silence_id}", headers=operator)
    assert gone.status_code == 200 and gone.json()["status"] == {"state": "expired"}
    again = api.client.delete(f"/api/v2/silence/{silence_id}", headers=operator)
    assert again.status_code == 400 and "already expired" in again.json()["message"]
    audit = api.services.audit.list(target=f"silence:{silence_id}")
    assert [(a.action, a.actor) for a in reversed(audit)] == [
        ("silence.create", "token:operator"), ("silence.update", "token:operator"),
        ("silence.expire", "token:operator")]


@pytest.mark.parametrize(("change", "where", "message"), [
    ({"matchers": []}, "body.matchers", "at least 1"),
    ({"matchers": [{"name": "node", "value": ".*", "isRegex": True}]}, "silence",
     "must not match the empty string"),
    ({"matchers": [{"name": "node", "value": "(", "isRegex": True}]}, "matchers[0]",
     "bad regex"),
    ({"matchers": [{"name": "0bad", "value": "x"}]}, "matchers[0]", "invalid label name"),
    ({"endsAt": "2001-01-01T00:00:00Z"}, "silence", "in the past"),
    ({"comment": ""}, "body.comment", "at least 1"),
    ({"startsAt": "tomorrow"}, "body.startsAt", "datetime"),
])
def test_bad_silences_say_what_and_where(api: Api, change: dict[str, Any], where: str,
                                         message: str) -> None:
    reply = api.client.post("/api/v2/silences", json=_silence(api.clock.now(), **change),
                            headers=api.auth(Role.OPERATOR))
    assert reply.status_code == 400, reply.text
    body = reply.json()
    assert body["where"].startswith(where) and message in body["message"]


def test_roles_viewers_read_operators_change(api: Api) -> None:
    body = _silence(api.clock.now())
    assert api.client.post("/api/v2/silences", json=body,
                           headers=api.auth(Role.VIEWER)).status_code == 403
    assert api.client.get("/api/v2/silences").status_code == 401
    assert api.client.get("/api/v2/silence/nope",
                          headers=api.auth(Role.VIEWER)).status_code == 404


def test_alerts_show_their_receivers_and_what_mutes_them(api: Api) -> None:
    now = api.clock.now()
    silence_id = api.client.post("/api/v2/silences", json=_silence(now),
                                 headers=api.auth(Role.OPERATOR)).json()["silenceID"]
    pipeline = api.services.pipeline
    pipeline.dispatcher.put([
        NotifiedAlert({"alertname": "GpuTooHot", "node": "gpu-02"}, {}, AlertStatus.FIRING,
                      now - 30),
        NotifiedAlert({"alertname": "GpuTooHot", "node": "gpu-09"}, {"summary": "hot"},
                      AlertStatus.FIRING, now - 20)], now)
    viewer = api.auth(Role.VIEWER)
    alerts = api.client.get("/api/v2/alerts", headers=viewer).json()
    assert [(a["labels"]["node"], a["status"]["state"], a["status"]["silencedBy"])
            for a in alerts] == [("gpu-02", "suppressed", [silence_id]),
                                 ("gpu-09", "active", [])]
    assert alerts[1]["receivers"] == [{"name": "default"}]
    assert alerts[1]["startsAt"] == _iso(now - 20) and len(alerts[1]["fingerprint"]) == 16
    unmuted = api.client.get("/api/v2/alerts", params={"silenced": "false"},
                             headers=viewer).json()
    assert [a["labels"]["node"] for a in unmuted] == ["gpu-09"]
    (group,) = api.client.get("/api/v2/alerts/groups", headers=viewer).json()
    assert group["receiver"] == {"name": "default"} and len(group["alerts"]) == 2
