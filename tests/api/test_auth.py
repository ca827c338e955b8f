from __future__ import annotations

from dcops.access.model import Role
from tests.api.conftest import Api


def test_health_and_metrics_need_no_token(api: Api) -> None:
    assert api.client.get("/healthz").json()["status"] == "ok"
    metrics = api.client.get("/metrics")
    assert metrics.status_code == 200
    assert "dcops_store_series" in metrics.text


def test_missing_token_is_401_with_a_hint(api: Api) -> None:
    response = api.client.get("/api/v1/nodes")
    assert response.status_code == 401
    body = response.json()
    assert body["error"] == "unauthorized"
    assert "Bearer" in body["hint"]
    assert response.headers["www-authenticate"] == "Bearer"


def test_wrong_token_is_401(api: Api) -> None:
    for header in ("Bearer dcops_abc_nope", "Bearer garbage", "Basic Zm9vOmJhcg=="):
        response = api.client.get("/api/v1/nodes", headers={"Authorization": header})
        assert response.status_code == 401, header


def test_roles_are_enforced(api: Api) -> None:
    node = {"name": "n1"}
    assert api.client.get("/api/v1/nodes", headers=api.auth(Role.VIEWER)).status_code == 200
    denied = api.client.post("/api/v1/nodes", json=node, headers=api.auth(Role.VIEWER))
    assert denied.status_code == 403
    assert "operator" in denied.json()["message"]
    assert api.client.post("/api/v1/nodes", json=node,
                           headers=api.auth(Role.OPERATOR)).status_code == 201
    assert api.client.get("/api/v1/tokens", headers=api.auth(Role.OPERATOR)).status_code == 403
    assert api.client.get("/api/v1/audit", headers=api.auth(Role.OPERATOR)).status_code == 403
    assert api.client.get("/api/v1/tokens", headers=api.auth(Role.ADMIN)).status_code == 200


def test_every_api_route_requires_a_token(api: Api) -> None:
    open_paths = {"/healthz", "/metrics", "/"}
    checked = 0
    for path, methods in api.client.get("/openapi.json").json()["paths"].items():
        if path in open_paths:
            continue
        for method in methods:
            concrete = path.replace("{name}", "x").replace("{node}", "x").replace(
                "{index}", "0").replace("{token_id}", "x")
            response = api.client.request(method.upper(), concrete)
            assert response.status_code == 401, f"{method} {path}"
            checked += 1
    assert checked >= 15


def test_token_lifecycle_secret_shown_once_and_revocation(api: Api) -> None:
    made = api.client.post("/api/v1/tokens", json={"name": "ci", "role": "operator"},
                           headers=api.auth(Role.ADMIN))
    assert made.status_code == 201
    secret = made.json()["secret"]
    headers = {"Authorization": f"Bearer {secret}"}
    assert api.client.get("/api/v1/nodes", headers=headers).status_code == 200
    listed = api.client.get("/api/v1/tokens", headers=api.auth(Role.ADMIN)).json()
    assert all("secret" not in t and "secret_hash" not in t for t in listed)
    assert secret not in str(api.services.tokens.list())
    revoked = api.client.delete(f"/api/v1/tokens/{made.json()['id']}",
                                headers=api.auth(Role.ADMIN))
    assert revoked.json()["revoked"] is True
    assert api.client.get("/api/v1/nodes", headers=headers).status_code == 401
    actions = [e["action"] for e in api.client.get(
        "/api/v1/audit", headers=api.auth(Role.ADMIN)).json()]
    assert actions[:2] == ["token.revoke", "token.create"]


def test_expired_token_is_refused(api: Api) -> None:
    made = api.client.post("/api/v1/tokens",
                           json={"name": "short", "role": "viewer", "expires_in_s": 60},
                           headers=api.auth(Role.ADMIN)).json()
    api.clock.advance(61)
    api.client.app.state.token_cache.clear()  # type: ignore[attr-defined]
    response = api.client.get("/api/v1/nodes",
                              headers={"Authorization": f"Bearer {made['secret']}"})
    assert response.status_code == 401


def test_metrics_count_requests_per_route_template(api: Api) -> None:
    for name in ("a", "b", "c"):
        api.client.get(f"/api/v1/nodes/{name}", headers=api.auth(Role.VIEWER))
    text = api.client.get("/metrics").text
    assert ('dcops_http_requests_total{code="404",method="GET",route="/api/v1/nodes/{name}"} 3.0'
            in text)
    assert 'route="/api/v1/nodes/a"' not in text
