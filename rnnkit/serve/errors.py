"""Every refused request is answered with JSON: ``{"error": what is wrong, "field": where (or null),
"expected": what would be accepted (or null)}`` and a 4xx status; the server keeps serving."""
from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

log = logging.getLogger("rnnkit.serve")


class ApiError(Exception):
    """A request the server refuses: ``status`` (4xx, or 503 / 504 for load), the message and what was expected."""

    def __init__(self, status: int, error: str, field: str | None = None, expected: str | None = None,
                 headers: dict | None = None):
        super().__init__(error)
        self.status, self.error, self.field, self.expected, self.headers = status, error, field, expected, headers


def error_response(status: int, error: str, field: str | None = None, expected: str | None = None,
                   headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": error, "field": field, "expected": expected}, status_code=status, headers=headers)


def install_handlers(app: FastAPI, not_found_hint) -> None:
    """``not_found_hint(path)``: what exists, for a 404 (the loaded runs and their routes)."""

    @app.exception_handler(ApiError)
    async def _api(request: Request, err: ApiError):
        return error_response(err.status, err.error, err.field, err.expected, err.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, err: RequestValidationError):
        first = err.errors()[0] if err.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return error_response(422, f"{where}: {first.get('msg', 'invalid request')}", where or None)

    @app.exception_handler(HTTPException)
    async def _http(request: Request, err: HTTPException):
        if err.status_code == 404:
            return error_response(404, f"no route {request.method} {request.url.path}", None,
                                  not_found_hint(request.url.path))
        if err.status_code == 405:
            allowed = (getattr(err, "headers", None) or {}).get("Allow", "")
            return error_response(405, f"{request.method} is not served at {request.url.path}", None,
                                  f"one of: {allowed}" if allowed else None, getattr(err, "headers", None))
        return error_response(err.status_code, str(err.detail), headers=getattr(err, "headers", None))

    @app.exception_handler(Exception)
    async def _bug(request: Request, err: Exception):  # a bug, not a bad request: logged, answered, still serving
        log.exception("error serving %s %s", request.method, request.url.path)
        return error_response(500, f"internal error: {type(err).__name__}: {err}")
