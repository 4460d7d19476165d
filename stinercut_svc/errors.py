"""The one error format, and the handlers that make every failure use it.

Every 4xx/5xx answer of this service is JSON of this shape::

    {"error": {"code": "not_found", "message": "project 'x' does not exist", "details": {...}}}

``code`` is a stable, machine-readable word; ``message`` is for people; ``details``
is optional structure (the offending field, the allowed values, …). Routers raise
:class:`ApiError` (or let werkzeug's HTTP exceptions through) and never build error
bodies themselves. A missing ffmpeg/ffprobe (:class:`ToolMissingError`) is answered
here too, as 503 ``tool_missing``, wherever it surfaces.
"""

from __future__ import annotations

import logging
from typing import Any

from quart import Quart, Response, jsonify, request
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound

from .media.runner import ToolMissingError

log = logging.getLogger(__name__)

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    408: "request_timeout",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "unprocessable",
    429: "too_many_requests",
    500: "internal_error",
    502: "bad_gateway",
    503: "unavailable",
    504: "gateway_timeout",
}


class ApiError(Exception):
    """An error that becomes an HTTP answer in the one error format."""

    def __init__(
        self, status: int, message: str, *, code: str | None = None, details: Any = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code or _HTTP_CODES.get(status, "error")
        self.details = details

    @classmethod
    def bad_request(cls, message: str, **details: Any) -> ApiError:
        return cls(400, message, details=details or None)

    @classmethod
    def not_found(cls, what: str, ident: object) -> ApiError:
        return cls(404, f"{what} {ident!s} does not exist", details={"resource": what})

    @classmethod
    def conflict(cls, message: str, **details: Any) -> ApiError:
        return cls(409, message, details=details or None)

    @classmethod
    def unprocessable(cls, message: str, **details: Any) -> ApiError:
        return cls(422, message, details=details or None)


def error_response(
    status: int, message: str, *, code: str | None = None, details: Any = None
) -> Response:
    body = {
        "error": {
            "code": code or _HTTP_CODES.get(status, "error"),
            "message": message,
            "details": details,
        }
    }
    response = jsonify(body)
    response.status_code = status
    return response


def install_error_handlers(app: Quart) -> None:
    """Route every exception a request can raise through the one error format."""

    @app.errorhandler(ApiError)
    async def _api_error(error: ApiError) -> Response:
        return error_response(error.status, error.message, code=error.code, details=error.details)

    @app.errorhandler(HTTPException)
    async def _http_error(error: HTTPException) -> Response:
        status = error.code or 500
        message = error.description or error.name
        details = None
        if isinstance(error, MethodNotAllowed):
            allowed = sorted(error.valid_methods or ())
            message = f"method {request.method} is not allowed on {request.path}"
            details = {"allowed": allowed}
        elif isinstance(error, NotFound):
            message = f"no route for {request.method} {request.path}"
        response = error_response(status, message, details=details)
        if details:
            response.headers["Allow"] = ", ".join(details["allowed"])
        return response

    @app.errorhandler(ToolMissingError)
    async def _tool_missing(error: ToolMissingError) -> Response:
        # ffmpeg/ffprobe missing is the deployment's fault, not the client's input.
        log.error("media tool missing: %s", error)
        return error_response(
            503, f"the media tools are not available: {error}", code="tool_missing"
        )

    @app.errorhandler(Exception)
    async def _unexpected(error: Exception) -> Response:
        # A 500 is a bug in this service: log it with its traceback, answer without one.
        log.exception("unhandled error", exc_info=error)
        return error_response(500, "internal server error")
