"""The server's errors: :class:`ApiError`, the JSON body every error carries, and the handlers that
turn every failure into ``{"error": code, "message": sentence}`` (never a traceback)."""

from __future__ import annotations

import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from ...errors import LabError


class ApiError(Exception):
    """A request the server refuses, with an HTTP status, a short code and a sentence."""

    def __init__(self, status: int, code: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.extra = status, code, message, extra


class BodyTimeout(Exception):
    """A client took longer than the body deadline to send the next piece of its body
    (raised by :class:`~digitlens.view.server.security.SecurityMiddleware`, answered 408)."""


class ErrorBody(BaseModel):
    """What every 4xx (and the rare 5xx) response carries."""

    error: str = Field(description="a short machine-readable code, e.g. 'no_ink'")
    message: str = Field(description="one sentence for the learner")


HTTP_CODES = {400: "bad_request", 401: "teacher_only", 403: "forbidden", 404: "not_found",
              405: "method_not_allowed", 406: "not_acceptable", 408: "body_timeout",
              409: "conflict", 413: "too_large", 415: "unsupported_media_type",
              422: "invalid_request", 429: "too_many_requests"}


def error_response(status: int, code: str, message: str, *, headers: dict | None = None,
                   **extra: Any) -> JSONResponse:
    return JSONResponse({"error": code, "message": message, **extra}, status_code=status,
                        headers=headers)


def errors_doc(*statuses: int) -> dict[int, dict]:
    """The ``responses=`` of a route that may answer ``statuses`` (for the OpenAPI schema)."""
    return {s: {"model": ErrorBody, "description": HTTP_CODES.get(s, "error").replace("_", " ")}
            for s in statuses}


def preprocess_error(e: Exception) -> ApiError:
    """Map the pipeline's documented errors onto HTTP statuses: ``NoInkError`` -> 422 ``no_ink``,
    ``ImageTooLargeError`` -> 413 ``image_too_large``, ..."""
    name = type(e).__name__
    code = re.sub(r"(?<!^)(?=[A-Z])", "_", name.removesuffix("Error")).lower() or "bad_image"
    status = 413 if "TooLarge" in name else 422
    return ApiError(status, code, str(e) or name)


def validation_error(e: Exception) -> RequestValidationError:
    """A pydantic ``ValidationError`` raised inside a handler, answered like FastAPI's own."""
    return RequestValidationError(getattr(e, "errors", lambda: [])())


# ---------------------------------------------------------------------------- handlers
async def _api_error(request: Request, e: ApiError):
    return error_response(e.status, e.code, e.message, **e.extra)


async def _http_error(request: Request, e: StarletteHTTPException):
    code = HTTP_CODES.get(e.status_code, "error")
    msg = e.detail if isinstance(e.detail, str) else code.replace("_", " ")
    if e.status_code == 404 and msg == "Not Found":
        msg = f"nothing at {request.url.path}; the API is described at /docs"
    return error_response(e.status_code, code, msg)


async def _validation_error(request: Request, e: RequestValidationError):
    problems = []
    for err in e.errors():
        where = ".".join(str(p) for p in err.get("loc", ()) if p not in ("body",))
        problems.append(f"{where or 'request'}: {err.get('msg', 'invalid')}")
    return error_response(422, "invalid_request", "; ".join(problems) or "invalid request")


async def _body_timeout(request: Request, e: BodyTimeout):
    return error_response(408, "body_timeout", "the request body arrived too slowly; send it "
                          "again", headers={"Connection": "close"})


async def _client_gone(request: Request, e: Exception):
    # the client hung up while sending its body: nobody reads the answer, nothing to log
    return error_response(400, "client_disconnected", "the client disconnected")


async def _lab_error(request: Request, e: Exception):
    # e.g. a damaged result.json: say what is wrong instead of a 500 on every lab figure
    return error_response(422, "lab_error", f"{e}; run the lab again")


async def _unexpected(request: Request, e: Exception):  # a bug, not the client's fault
    return error_response(500, "internal_error", f"the server hit an unexpected "
                          f"{type(e).__name__}; please report it")


def install_handlers(app: FastAPI) -> None:
    """Errors are always JSON, never a traceback."""
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(BodyTimeout, _body_timeout)
    app.add_exception_handler(ClientDisconnect, _client_gone)
    app.add_exception_handler(LabError, _lab_error)
    app.add_exception_handler(Exception, _unexpected)
