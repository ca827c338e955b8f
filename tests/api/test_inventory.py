from __future__ import annotations

from dcops.access.model import Role
from tests.api.conftest import Api


def _build(api: Api) -> None:
    op = api.auth(Role.OPERATOR)
    assert api.client.post("/api/v1/sites", json={"name": "ams1"}, headers=op).status_code == 201
    assert api.client.post("/api/v1/rooms", json={"name": "hall-1", "site": "ams1"},
                           headers=op).status_code == 201
    assert api.client.post("/api/v1/racks", json={"name": "r01", "room": "hall-1"},
                           headers=op).status_code == 201
    assert api.client.post("/api/v1/nodes", json={"name": "n1", "rack": "r01",
                                                  "gpu_model": "H100", "gpu_count": 8},
                           headers=op).status_code == 201


def test_create_list_and_get(api: Api) -> None:
    _build(api)
    view = api.auth(Role.VIEWER)
    assert [r["name"] for r in api.client.get("/api/v1/racks", headers=view).json()] == ["r01"]
    node = api.client.get("/api/v1/nodes/n1", headers=view).json()
    assert node["rack"] == "r01" and node["state"] == "active"
    missing = api.client.get("/api/v1/nodes/nope", headers=view)
    assert missing.status_code == 404 and "nope" in missing.json()["message"]


def test_bad_bodies_say_where(api: Api) -> None:
    op = api.auth(Role.OPERATOR)
    no_parent = api.client.post("/api/v1/rooms", json={"name": "x", "site": "nowhere"},
                                headers=op)
    assert no_parent.status_code == 404
    bad_state = api.client.post("/api/v1/nodes", json={"name": "n", "state": "exploded"},
                                headers=op)
    assert bad_state.status_code == 400 and bad_state.json()["where"] == "body.state"
    extra = api.client.post("/api/v1/sites", json={"name": "s", "colour": "red"}, headers=op)
    assert extra.status_code == 400 and "colour" in extra.json()["where"]
    not_json = api.client.post("/api/v1/sites", content=b"{", headers=op | {
        "Content-Type": "application/json"})
    assert not_json.status_code == 400
    _build(api)
    dup = api.client.post("/api/v1/sites", json={"name": "ams1"}, headers=op)
    assert dup.status_code == 409


def test_lifecycle_change_is_audited(api: Api) -> None:
    _build(api)
    op = api.auth(Role.OPERATOR)
    changed = api.client.put("/api/v1/nodes/n1/state",
                             json={"state": "draining", "reason": "Xid 79"}, headers=op)
    assert changed.json()["state"] == "draining"
    audit = api.client.get("/api/v1/audit", params={"target": "node/n1"},
                           headers=api.auth(Role.ADMIN)).json()
    assert audit[0]["action"] == "node.state"
    assert audit[0]["details"] == {"before": "active", "after": "draining", "reason": "Xid 79"}
    assert audit[0]["actor"] == "token:operator"


def test_delete_refuses_parents_with_children(api: Api) -> None:
    _build(api)
    op = api.auth(Role.OPERATOR)
    assert api.client.delete("/api/v1/racks/r01", headers=op).status_code == 409
    assert api.client.delete("/api/v1/nodes/n1", headers=op).status_code == 204
    assert api.client.delete("/api/v1/racks/r01", headers=op).status_code == 204


def test_import_yaml_and_errors_with_line_numbers(api: Api) -> None:
    op = api.auth(Role.OPERATOR)
    doc = (b"sites:\n  - name: ams1\n    rooms:\n      - name: hall-1\n        racks:\n"
           b"          - name: r01\n            nodes:\n              - name: n1\n"
           b"                gpu_model: H100\n                gpu_count: 2\n")
    first = api.client.post("/api/v1/inventory/import", content=doc, params={"format": "yaml"},
                            headers=op)
    assert first.status_code == 200, first.json()
    assert len(api.services.inventory.list_gpus("n1")) == 2
    broken = api.client.post("/api/v1/inventory/import", content=b"sites:\n  - name: [\n",
                             params={"format": "yaml", "name": "fleet.yaml"}, headers=op)
    assert broken.status_code == 400
    assert "fleet.yaml:" in broken.json()["where"]
