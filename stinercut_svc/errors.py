"""The one error format, and the one table that maps failures onto it.

Every 4xx/5xx answer of this service is JSON of this shape::

    {"error": {"code": "not_found", "message": "project 'x' does not exist", "details": {...}},
     "detail": "project 'x' does not exist"}

``code`` is a stable, machine-readable word; ``message`` is for people; ``details``
is optional structure (the offending field, the allowed values, …). ``detail`` repeats
``message`` at the top level: the original backend answered ``{"detail": "..."}``
and the clients written against it (the PHP frontend) show that string, so both
shapes are served at once.

Routers raise :class:`ApiError` (or let werkzeug's HTTP exceptions through) and never
build error bodies themselves. Failures that are not the client's fault but not a
bug either are mapped here too, in :func:`install_error_handlers`:

* a missing ffmpeg/ffprobe (:class:`ToolMissingError`) → 503 ``tool_missing``;
* the database down or refusing connections → 503 ``database_unavailable`` with
  ``Retry-After`` (logged once per outage by :class:`~.database.Database`, not here);
* a full disk (``ENOSPC``/``EDQUOT``) → 507 ``insufficient_storage``;
* anything else → 500 ``internal_error``, logged with its traceback.

Messages never carry absolute server paths or Python class names: they are
written that way at their source, and :func:`scrub` is a last safety net over
every message that leaves this module.
"""

from __future__ import annotations

import errno
import logging
import re
from pathlib import Path
from typing import Any

import pymysql.err
from quart import Quart, Response, current_app, has_app_context, jsonify, request
from sqlalchemy import exc as sa_exc
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.wrappers import Response as WerkzeugResponse

from .auth.errors import AuthError, InsufficientRole
from .database import describe_error, is_outage
from .jobs.errors import CodecUnavailable
from .media.runner import ToolMissingError
from .services import shares
from .services.imports import (
    BatchFinished,
    BatchNotFound,
    BatchNotRetryable,
    ImportPathInvalid,
    ImportPathRefused,
    ImportsDisabled,
    ImportsError,
)
from .webhooks.targets import CallbackUrlError

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
    507: "insufficient_storage",
}

#: Import refusals (services/imports.py) → (status, code).
_IMPORTS_ERRORS: dict[type[ImportsError], tuple[int, str]] = {
    ImportsDisabled: (409, "imports_disabled"),
    ImportPathRefused: (403, "path_not_allowed"),
    ImportPathInvalid: (422, "invalid_path"),
    BatchNotFound: (404, "not_found"),
    BatchFinished: (409, "import_finished"),
    BatchNotRetryable: (409, "import_not_retryable"),
}

#: Seconds a client is told to wait (``Retry-After``) while the database is down.
DATABASE_RETRY_AFTER_S = 5
#: Errno values that mean "the filesystem is full" (disk space or quota).
DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})

#: Driver and pool errors that mean "the database cannot be used right now".
DATABASE_UNAVAILABLE: tuple[type[Exception], ...] = (
    sa_exc.OperationalError,
    sa_exc.DisconnectionError,
    sa_exc.TimeoutError,  # the pool had no connection to give in time
    pymysql.err.OperationalError,
    pymysql.err.InterfaceError,
)

# Absolute paths under the usual top-level folders of a server (FHS plus the
# container's /app and /work). URL paths of this API (/api/…, /ws, /docs) do not
# start with any of these, so route names in 404 messages survive.
_SERVER_PATH_RE = re.compile(
    r"(?<![\w.:/])/(?:usr|opt|var|tmp|home|root|srv|etc|bin|sbin|lib|lib64|mnt|media|"
    r"proc|run|dev|sys|work|data|app|nix|private)(?:/[^\s'\",;:)\]]*)?"
)


class ApiError(Exception):
    """An error that becomes an HTTP answer in the one error format."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        details: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code or _HTTP_CODES.get(status, "error")
        self.details = details
        self.headers = headers or {}

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

    @classmethod
    def disk_full(cls, what: str) -> ApiError:
        """507: the shared storage has no room left (what was being written is named)."""
        return cls(
            507,
            f"the server's storage is full: {what} could not be written",
            code="insufficient_storage",
        )


def is_disk_full(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in DISK_FULL_ERRNOS


def scrub(message: str) -> str:
    """Replace absolute server paths in ``message`` by their last component.

    A safety net: messages are written without server paths at their source, but
    an ``OSError`` text or a driver message could still carry one.
    """

    def last_part(match: re.Match[str]) -> str:
        tail = match.group(0).rstrip("/").rsplit("/", 1)[-1]
        return f"…/{tail}" if tail else "…"

    # The storage root may live anywhere (a container volume at /shared, say):
    # paths below it become the root-relative form the API uses everywhere.
    for root in _configured_roots():
        message = message.replace(root + "/", "").replace(root, "…")
    return _SERVER_PATH_RE.sub(last_part, message)


def _configured_roots() -> list[str]:
    if not has_app_context():
        return []
    storage = getattr(current_app, "storage", None)
    root = getattr(storage, "root", None)
    if not isinstance(root, Path):
        return []
    # Longest first, so the resolved form does not leave a prefix of the other behind.
    return sorted({str(root), str(root.resolve())}, key=len, reverse=True)


def error_body(
    status: int, message: str, *, code: str | None = None, details: Any = None
) -> dict[str, Any]:
    """The JSON body of an error answer (also used by non-HTTP paths that need it)."""
    message = scrub(message)
    return {
        "error": {
            "code": code or _HTTP_CODES.get(status, "error"),
            "message": message,
            "details": details,
        },
        "detail": message,
    }


def error_response(
    status: int,
    message: str,
    *,
    code: str | None = None,
    details: Any = None,
    headers: dict[str, str] | None = None,
) -> Response:
    response = jsonify(error_body(status, message, code=code, details=details))
    response.status_code = status
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def database_unavailable() -> Response:
    return error_response(
        503,
        "the database is not reachable right now; try again shortly",
        code="database_unavailable",
        headers={"Retry-After": str(DATABASE_RETRY_AFTER_S)},
    )


def install_error_handlers(app: Quart) -> None:
    """Route every exception a request can raise through the one error format."""

    @app.errorhandler(ApiError)
    async def _api_error(error: ApiError) -> Response:
        return error_response(
            error.status,
            error.message,
            code=error.code,
            details=error.details,
            headers=error.headers,
        )

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

    @app.errorhandler(shares.ShareNotFound)
    async def _share_not_found(error: shares.ShareNotFound) -> Response:
        return error_response(404, str(error), code="share_not_found")

    @app.errorhandler(shares.JobNotFound)
    async def _share_job_not_found(error: shares.JobNotFound) -> Response:
        return error_response(404, f"job {error} does not exist", code="not_found")

    @app.errorhandler(shares.NotShareable)
    async def _not_shareable(error: shares.NotShareable) -> Response:
        return error_response(409, str(error), code="not_shareable")

    @app.errorhandler(CallbackUrlError)
    async def _callback_url(error: CallbackUrlError) -> Response:
        return error_response(
            422,
            str(error),
            code="invalid_callback_url",
            details={"fields": [{"field": "callback_url", "message": str(error)}]},
        )

    @app.errorhandler(AuthError)
    async def _auth_error(error: AuthError) -> Response:
        # 401 names the scheme to use (RFC 6750); 403 the role that was needed.
        if isinstance(error, InsufficientRole):
            return error_response(
                403, error.message, code=error.code,
                details={"required_role": error.required, "role": error.role},
            )
        return error_response(
            401, error.message, code=error.code, headers={"WWW-Authenticate": "Bearer"}
        )

    @app.errorhandler(ImportsError)
    async def _imports_error(error: ImportsError) -> Response:
        status, code = _IMPORTS_ERRORS.get(type(error), (422, "invalid_import"))
        return error_response(status, error.message, code=code, details=error.details)

    @app.errorhandler(CodecUnavailable)
    async def _codec_unavailable(error: CodecUnavailable) -> Response:
        details = {"codec": error.codec, "available": error.available}
        return error_response(422, str(error), code="codec_unavailable", details=details)

    @app.errorhandler(ToolMissingError)
    async def _tool_missing(error: ToolMissingError) -> Response:
        # ffmpeg/ffprobe missing is the deployment's fault, not the client's input.
        log.error("media tool missing: %s", error)
        return error_response(
            503, f"the media tools are not available: {error}", code="tool_missing"
        )

    async def _database_error(error: Exception) -> Response:
        # An outage is logged once by Database.run when it starts (and once when it
        # ends); a line per request here would bury the log. Errors that are not
        # an outage (a lock wait, a deadlock) are rare and get one line each.
        if not is_outage(error):
            log.warning("database error answered with 503: %s", describe_error(error))
        return database_unavailable()

    for kind in DATABASE_UNAVAILABLE:
        app.register_error_handler(kind, _database_error)

    # Domain errors of the jump-resolution service (services/jumps.py): its kinds
    # map onto statuses here. Imported here, not at the top: services import this module.
    from .services.jumps import JumpError

    @app.errorhandler(JumpError)
    async def _jump_error(error: JumpError) -> Response:
        status = {"not_found": 404, "invalid": 422, "conflict": 409}[error.kind]
        return error_response(status, error.message, code=error.code, details=error.details)

    @app.errorhandler(Exception)
    async def _unexpected(error: Exception) -> Response | WerkzeugResponse:
        # A route that runs a nursery sees its one failure wrapped in an
        # ExceptionGroup: answer the failure itself (a database outage is still
        # a 503, an ApiError still its status), not a 500 for the wrapper.
        if isinstance(error, ExceptionGroup):
            leaf = _single_leaf(error)
            if leaf is not None:
                return await app.make_response(await app.handle_user_exception(leaf))
        # A 500 is a bug in this service: log it with its traceback, answer without one.
        log.exception("unhandled error", exc_info=error)
        return error_response(500, "internal server error")

    @app.errorhandler(OSError)
    async def _os_error(error: OSError) -> Response | WerkzeugResponse:
        # A full disk is the deployment's state, not a bug: 507, no traceback.
        # Code that writes client data catches it itself to name what failed
        # and to clean up; this is the net for everything else.
        if is_disk_full(error):
            log.error("storage full: %s", error.strerror)
            return error_response(
                507,
                "the server's storage is full; try again later",
                code="insufficient_storage",
            )
        return await _unexpected(error)


def _single_leaf(group: BaseExceptionGroup[Exception]) -> Exception | None:
    """The one non-group exception inside nested groups, or None if there are several."""
    inner: BaseException = group
    while isinstance(inner, BaseExceptionGroup):
        if len(inner.exceptions) != 1:
            return None
        inner = inner.exceptions[0]
    return inner if isinstance(inner, Exception) else None
