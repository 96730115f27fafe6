"""The page: ``/`` (index.html), every file under ``view/static/`` at ``/static/<path>``, and
``/api``, the API described in plain HTML.

Static files are read once, when the app is built, into an allow-list keyed by their path
relative to ``static/`` (``"style.css"``, ``"js/main.js"``).  A request only looks a key up in
that dictionary: the server never opens a path a client sends, so ``..``, encoded slashes or
absolute paths simply find nothing (404).  Only the kinds of file a page needs are listed, each
with the content type browsers require (ES modules must come as ``text/javascript``).
"""

from __future__ import annotations

import html
from importlib import resources
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from .errors import ApiError
from .state import ServerContext, context

#: the content type of each kind of file the page may hold; other files are never served
CONTENT_TYPES = {".html": "text/html; charset=utf-8",
                 ".js": "text/javascript; charset=utf-8",
                 ".mjs": "text/javascript; charset=utf-8",
                 ".css": "text/css; charset=utf-8",
                 ".json": "application/json",
                 ".svg": "image/svg+xml",
                 ".png": "image/png",
                 ".ico": "image/x-icon",
                 ".woff2": "font/woff2"}
PAGE_CSP = ("default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; "
            "script-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; "
            "frame-ancestors 'none'")
#: files and folders under static/ that are never part of the page
_SKIP = ("__pycache__", "__init__.py")


def _walk(folder, prefix: str = ""):
    """``(relative path, Traversable)`` of every file under ``folder``, depth first."""
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.startswith(".") or entry.name in _SKIP:
            continue
        rel = f"{prefix}{entry.name}"
        if entry.is_dir():
            yield from _walk(entry, rel + "/")
        elif entry.is_file():
            yield rel, entry


def static_files(root=None) -> dict[str, tuple[bytes, str]]:
    """Every servable file under ``root`` (default: the package's ``view/static``), read now.

    Returns
    -------
    dict
        ``{"js/main.js": (bytes, "text/javascript; charset=utf-8"), ...}``: relative paths with
        ``/`` separators; files whose suffix is not in :data:`CONTENT_TYPES` are left out.
    """
    root = resources.files("digitlens.view").joinpath("static") if root is None else root
    files = {}
    for rel, entry in _walk(root):
        suffix = "." + rel.rsplit(".", 1)[-1].lower() if "." in rel.rsplit("/", 1)[-1] else ""
        if suffix in CONTENT_TYPES:
            files[rel] = (entry.read_bytes(), CONTENT_TYPES[suffix])
    return files


def page_headers() -> dict[str, str]:
    return {"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": PAGE_CSP, "Referrer-Policy": "no-referrer"}


def _file(files: dict[str, tuple[bytes, str]], rel: str) -> Response:
    data, ctype = files[rel]
    return Response(data, media_type=ctype, headers=page_headers())


router = APIRouter()


@router.get("/", include_in_schema=False)
def index(ctx: ServerContext = Depends(context)):
    return _file(ctx.static_files, "index.html")


@router.get("/static/{path:path}", include_in_schema=False)
def static(path: str, ctx: ServerContext = Depends(context)):
    """A file of the allow-list, by its relative path (``index.html`` only at ``/``)."""
    files = ctx.static_files
    if path not in files or path == "index.html":
        raise ApiError(404, "not_found", f"no static file {path!r}")
    return _file(files, path)


@router.get("/api", include_in_schema=False)
def api_reference(request: Request):
    """The API described in plain HTML from the OpenAPI schema (works offline, unlike /docs,
    whose assets come from a CDN)."""
    return Response(api_reference_html(request.app.openapi()),
                    media_type="text/html; charset=utf-8",
                    headers={"Content-Security-Policy": PAGE_CSP,
                             "X-Content-Type-Options": "nosniff"})


def api_reference_html(spec: dict[str, Any]) -> str:
    """A readable page listing every endpoint of an OpenAPI ``spec``: method, path, summary,
    description, parameters and response codes (every text escaped with :func:`html.escape`)."""
    esc = html.escape
    parts = []
    for path, ops in spec.get("paths", {}).items():
        for method, op in ops.items():
            params = "".join(
                f"<li><code>{esc(p['name'])}</code> ({esc(p.get('in', ''))}): "
                f"{esc(p.get('description', '') or '')}</li>" for p in op.get("parameters", []))
            body = op.get("requestBody", {}).get("content", {})
            codes = ", ".join(sorted(op.get("responses", {})))
            parts.append(
                f"<section class='card'><h2><code>{esc(method.upper())} {esc(path)}</code></h2>"
                f"<p><strong>{esc(op.get('summary', ''))}</strong></p>"
                f"<p class='lead' style='white-space:pre-line'>{esc(op.get('description', ''))}</p>"
                + (f"<p>request body: {esc(', '.join(body))}</p>" if body else "")
                + (f"<ul>{params}</ul>" if params else "")
                + f"<p class='small muted'>responses: {esc(codes)}</p></section>")
    title = esc(spec.get("info", {}).get("title", "API"))
    return (f"<!doctype html><html lang='en'><head><meta charset='utf-8'>"
            f"<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<title>{title} API</title><link rel='stylesheet' href='/static/style.css'></head>"
            f"<body><main style='max-width:60rem;margin:auto;display:flex;flex-direction:column;"
            f"gap:1rem'><h1>{title} API</h1><p>{esc(spec.get('info', {}).get('description', ''))}"
            f"</p><p>Machine-readable schema: <a href='/openapi.json'>/openapi.json</a>; "
            f"interactive explorer (loads its scripts from the internet): <a href='/docs'>/docs</a>"
            f"; back to <a href='/'>the page</a>.</p>{''.join(parts)}</main></body></html>")
