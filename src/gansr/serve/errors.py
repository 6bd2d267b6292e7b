"""HTTP errors of the web app and the handlers that turn every failure into one-line JSON.

Every error response has the body ``{"detail": "<one line>"}``. Client mistakes carry a message
that says what to fix; anything unexpected becomes a generic 500 whose detail (the traceback)
goes to the server log only, so no stack trace or internal path ever reaches a client.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

__all__ = ["ApiError", "ErrorResponse", "install_error_handlers"]

logger = logging.getLogger("gansr.serve")

INTERNAL_ERROR = "internal server error; the details are in the server log"


class ApiError(Exception):
    """A request the app refuses, with its HTTP status and a one-line message for the client.

    Args:
        status: the HTTP status code (4xx for client mistakes, 503 for overload).
        detail: one line saying what is wrong and, where possible, how to fix it.
        headers: extra response headers (e.g. ``Retry-After``).
    """

    def __init__(self, status: int, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = " ".join(detail.split())  # one line, whatever the caller passed
        self.headers = headers or {}


class ErrorResponse(BaseModel):
    """The body of every error response."""

    detail: str = Field(description="One line saying what went wrong and how to fix it.")


def _json(status: int, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)


def _validation_message(exc: RequestValidationError) -> str:
    """FastAPI's list of validation errors as one line: ``"<field>: <message>; ..."``."""
    parts = []
    for err in exc.errors()[:5]:
        where = ".".join(str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path"))
        parts.append(f"{where}: {err.get('msg', 'invalid')}" if where else str(err.get("msg", "invalid")))
    return "; ".join(parts) or "invalid request"


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers that give every error the ``{"detail": ...}`` shape."""

    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, exc: ApiError) -> JSONResponse:
        return _json(exc.status, exc.detail, exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else "request failed"
        return _json(exc.status_code, detail, dict(exc.headers or {}))

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return _json(422, _validation_message(exc))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        logger.error("unhandled error in %s %s", request.method, request.url.path, exc_info=exc)
        return _json(500, INTERNAL_ERROR)
