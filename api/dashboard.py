"""The dashboard: one static page (the files in api/dashboard/, no build step) that reads
the public pipes with the visitor's token, sent only in the Authorization header.

Nothing here needs a token: the page and its files are the same for everyone and hold no
data. `/` redirects to `/dashboard` with a relative Location (never the Host header).
Every answer carries a Content-Security-Policy that allows only this origin: no inline
script or style, no third-party host, no framing."""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

DASHBOARD_DIR = Path(__file__).resolve().parent / "dashboard"
PAGE = "index.html"
# Explicit types: the platform's mimetypes table varies (a .js served as text/plain would
# be refused by the browser under nosniff).
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
       "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; "
       "form-action 'self'; frame-ancestors 'none'")
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
}


def _not_found() -> Response:
    return JSONResponse({"error": "Not Found"}, status_code=404)


def _file(relative: str) -> Response:
    """A file of the dashboard folder: only plain names (no dot-files, no '..'), only
    the types above, only inside the folder."""
    parts = relative.split("/")
    if any(not part or part.startswith(".") or "\\" in part for part in parts):
        return _not_found()
    path = DASHBOARD_DIR.joinpath(*parts)
    media_type = CONTENT_TYPES.get(path.suffix)
    try:
        inside = path.resolve().is_relative_to(DASHBOARD_DIR) and path.is_file()
    except OSError:
        inside = False
    if media_type is None or not inside:
        return _not_found()
    return FileResponse(path, media_type=media_type, headers=HEADERS)


async def root(request: Request) -> Response:
    """`/` -> `/dashboard`, keeping the query (a shared view), with a relative Location."""
    query = request.url.query
    return RedirectResponse("/dashboard" + (f"?{query}" if query else ""), status_code=302)


async def page(request: Request) -> Response:
    return _file(PAGE)


async def asset(request: Request) -> Response:
    relative = request.path_params["path"]
    return _file(relative) if relative else _file(PAGE)


ROUTES = [
    Route("/", root, methods=["GET"]),
    Route("/dashboard", page, methods=["GET"]),
    Route("/dashboard/{path:path}", asset, methods=["GET"]),
]
