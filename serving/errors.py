"""One error shape for every 4xx/5xx: {"error": {"code", "message", "field"}}, installed on the app here."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from serving.auth.principal import AuthError, Forbidden
from serving.data.params import InvalidParameter
from serving.data.store import MartUnavailable
from serving.schemas import ErrorResponse

log = logging.getLogger("blocks.serving")


class ApiError(Exception):
    def __init__(
        self, status: int, code: str, message: str, field: str | None = None, headers: dict[str, str] | None = None
    ):
        self.status, self.code, self.message, self.field, self.headers = status, code, message, field, headers
        super().__init__(message)


def error_response(
    status: int, code: str, message: str, field: str | None = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    body = {"error": {"code": code, "message": message, "field": field}}
    return JSONResponse(body, status_code=status, headers=headers)


def error_docs(*statuses: int) -> dict[int | str, dict]:
    described = {
        400: "invalid parameter or body",
        401: "missing or invalid bearer token",
        403: "not allowed for this token",
        404: "not found",
        409: "changed concurrently, again and again; retry",
        412: "If-Match does not match the current version",
        413: "request body too large",
        429: "rate limited; see Retry-After",
        501: "not available in this deployment",
        503: "data not servable right now",
    }
    return {s: {"model": ErrorResponse, "description": described[s]} for s in statuses}


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api(_: Request, exc: ApiError):
        return error_response(exc.status, exc.code, exc.message, exc.field, exc.headers)

    @app.exception_handler(InvalidParameter)
    async def _param(_: Request, exc: InvalidParameter):
        return error_response(400, "invalid_parameter", str(exc), exc.field)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError):
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        loc = [str(p) for p in first.get("loc", ()) if p not in ("query", "body", "path", "header")]
        field = ".".join(loc) or None
        where = f"{field}: " if field else ""
        return error_response(400, "invalid_request", f"{where}{first.get('msg')}", field)

    @app.exception_handler(AuthError)
    async def _auth(_: Request, exc: AuthError):
        return error_response(
            401, "unauthorized", str(exc), headers={"WWW-Authenticate": 'Bearer error="invalid_token"'}
        )

    @app.exception_handler(Forbidden)
    async def _forbidden(_: Request, exc: Forbidden):
        return error_response(403, "forbidden", str(exc))

    @app.exception_handler(MartUnavailable)
    async def _mart(_: Request, exc: MartUnavailable):
        log.error("mart unavailable: %s", exc)
        return error_response(503, "data_unavailable", str(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException):
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return error_response(exc.status_code, code, str(exc.detail), headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception):
        log.exception("unhandled error")
        return error_response(500, "internal_error", "unexpected server error; it has been logged")
