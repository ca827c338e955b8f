"""The dashboard's static files: served without a token, nothing outside the folder."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient

from dcops.dashboard.routes import router


def client() -> TestClient:
    app = FastAPI()
    app.include_router(router)
    return TestClient(app)


def test_index_page_without_a_token() -> None:
    response = client().get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "/static/app.js" in response.text and "/static/style.css" in response.text
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert "<script>" not in response.text  # no inline script: the CSP forbids it


def test_script_and_styles() -> None:
    http = client()
    script = http.get("/static/app.js")
    assert script.status_code == 200
    assert script.headers["content-type"].startswith("text/javascript")
    # The page reads the authenticated API with a bearer token taken from the fragment.
    assert "/api/v1/fleet/overview" in script.text
    assert '"Bearer "' in script.text and "#token=" in script.text
    assert "innerHTML" not in script.text
    style = http.get("/static/style.css")
    assert style.status_code == 200 and style.headers["content-type"].startswith("text/css")


def test_nothing_outside_the_static_folder() -> None:
    http = client()
    for path in ("/static/routes.py", "/static/..%2Froutes.py", "/static/missing.js",
                 "/static/%2E%2E", "/static/__init__.py"):
        assert http.get(path).status_code == 404, path
