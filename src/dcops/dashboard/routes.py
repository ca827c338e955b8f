"""Routes that serve the dashboard's static files: the page itself, its script and styles.

They need no token: the files hold no data. The page's script reads the API
(``/api/v1/fleet/overview``) with the operator's bearer token, which the API checks.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse

STATIC_DIR = Path(__file__).parent / "static"
MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}

router = APIRouter(include_in_schema=False)


def static_file(name: str) -> Path:
    """The file `name` in the static folder; 404 for anything else, '..' included.

    A plain HTTPException, so the router also works in an app without dcops's handlers.
    """
    path = (STATIC_DIR / name).resolve()
    if (path.parent != STATIC_DIR.resolve() or path.suffix not in MEDIA_TYPES
            or not path.is_file()):
        raise HTTPException(404, detail=f"dashboard file {name!r} not found")
    return path


def _serve(name: str) -> FileResponse:
    path = static_file(name)
    return FileResponse(path, media_type=MEDIA_TYPES[path.suffix], headers=SECURITY_HEADERS)


@router.get("/")
def index() -> FileResponse:
    """The dashboard page."""
    return _serve("index.html")


@router.get("/static/{name}")
def static(name: str) -> FileResponse:
    """The page's script, styles and images."""
    return _serve(name)
