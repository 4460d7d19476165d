"""Per-request bookkeeping: the request id, one access-log line, the HTTP metrics.

:class:`RequestTracking` wraps the app's ASGI callable (inside Hypercorn, around
Quart) and sees every HTTP request the app answers from start to end. It

* takes ``X-Request-ID`` from the request when it is usable (1-128 printable
  ASCII characters) or makes one, and puts it in the :data:`logs.request_id`
  context variable for everything the request runs, so every log line of the
  request carries it;
* adds it to the response, whatever produced the response: a route, an error
  handler, a 404/405 from routing, a 413 while reading an upload;
* records the request's metrics: the route *template* comes from Quart's matched
  rule (stored on the scope by the first ``before_request`` hook), the status from the
  response start it passes on;
* writes the request's one access line (``client "METHOD path HTTP-version"
  status bytes seconds``) when the app is done with it, through the
  ``stinercut_svc.access`` logger and only when that logger prints at INFO.

Why the line is written here and not by Hypercorn: Hypercorn 0.18 logs a request
when its stream closes, and a client that closes its connection while the end of
the response is still being sent (curl, every last request of a keep-alive
connection) made it log the request twice: once with no response (``"- -"``),
once with it (``HTTPStream`` marks the stream closed only after awaiting that
send; upstream pgjones/hypercorn#357). Here there is exactly one place per
request. :class:`AccessLogger` (Hypercorn's ``logger_class``) writes only what
never reached the app (Hypercorn's own error answers, WebSocket upgrades
served through Quart), and does so without Hypercorn's ``AccessLogAtoms``, which
copies every header and *every environment variable of the process* per
request (~10-16 % of a fast request's throughput).

Wiring: ``config.logger_class = AccessLogger`` (``server.py``) and
:func:`install_request_tracking` (``app.py``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from hypercorn.logging import Logger
from quart import request

from . import logs
from .request_id import REQUEST_ID_HEADER, new_request_id, usable_request_id

if TYPE_CHECKING:
    from .context import StinercutApp
    from .metrics import HttpMetrics

ACCESS_LOGGER = "stinercut_svc.access"
#: ASGI scope keys shared by the wrapper, the route hook and the Hypercorn logger.
SCOPE_REQUEST_ID = "stinercut.request_id"
SCOPE_ROUTE = "stinercut.route"

_HEADER_NAME = REQUEST_ID_HEADER.lower().encode("ascii")

ASGIApp = Callable[[dict[str, Any], Any, Any], Awaitable[None]]


def _remote(scope: dict[str, Any]) -> str:
    client = scope.get("client")
    if client is None:
        return "-"
    if len(client) == 2:
        return f"{client[0]}:{client[1]}"
    return str(client[0])


def write_access_line(
    logger: logging.Logger,
    scope: dict[str, Any],
    status: int | None,
    size: int | None,
    seconds: float,
    request_id: str | None,
) -> None:
    """The access line (``status``/``size`` ``None``: no response went out)."""
    remote = _remote(scope)
    method = scope["method"] if scope["type"] == "http" else "GET"
    path = scope["path"]
    version = scope.get("http_version", "ws")
    logger.info(
        '%s "%s %s %s" %s %s %.6fs',
        remote,
        method,
        path,
        version,
        "-" if status is None else status,
        "-" if size is None else size,
        seconds,
        extra={
            "request_id": request_id,
            "http": {
                "client": remote,
                "method": method,
                "path": path,
                "version": version,
                "status": status,
                "bytes": size,
                "duration_ms": round(seconds * 1000, 3),
            },
        },
    )


class RequestTracking:
    """The ASGI wrapper (see the module docstring); HTTP only, WebSocket and lifespan pass."""

    def __init__(self, app: ASGIApp, metrics: HttpMetrics | None) -> None:
        self.app = app
        self.metrics = metrics
        self.access_logger = logging.getLogger(ACCESS_LOGGER)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = None
        multipart = False
        for name, value in scope["headers"]:
            if name == _HEADER_NAME:
                rid = usable_request_id(value)
            elif name == b"content-type" and value[:19].lower() == b"multipart/form-data":
                multipart = True
        if rid is None:
            rid = new_request_id()
        scope[SCOPE_REQUEST_ID] = rid
        id_header = (_HEADER_NAME, rid.encode("ascii"))
        status = 0
        sent = 0
        received = 0

        async def send_with_id(message: dict[str, Any]) -> None:
            nonlocal status, sent
            if message["type"] == "http.response.start":
                status = message["status"]
                message = {**message, "headers": [*message.get("headers", ()), id_header]}
            elif message["type"] == "http.response.body":
                sent += len(message.get("body", b""))
            await send(message)

        async def receive_counted() -> Any:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
            return message

        token = logs.request_id.set(rid)
        started = time.perf_counter()
        try:
            await self.app(scope, receive_counted if multipart else receive, send_with_id)
        finally:
            seconds = time.perf_counter() - started
            if self.access_logger.isEnabledFor(logging.INFO):
                write_access_line(
                    self.access_logger, scope, status or None, sent if status else None,
                    seconds, rid,
                )
            logs.request_id.reset(token)
            if self.metrics is not None:
                route = scope.get(SCOPE_ROUTE)
                if status:
                    self.metrics.observe(scope["method"], route, status, seconds)
                if multipart:
                    self.metrics.uploaded(route, received)


async def _route_before() -> None:
    """``before_request``: the matched route's template, for the wrapper's metrics.

    Installed as the *first* ``before_request`` hook, so it runs even when a later
    one answers the request (CORS preflight, 401/403, a worker's 404), and before
    the handler (a request cut off in the middle of an upload keeps its route).
    ``async`` on purpose: Quart runs a plain function hook in a worker thread.
    """
    current = request._get_current_object()  # type: ignore[attr-defined]  # one proxy lookup
    rule = current.url_rule
    if rule is not None:
        current.scope[SCOPE_ROUTE] = rule.rule


def install_request_tracking(app: StinercutApp, metrics: HttpMetrics | None) -> None:
    """Wrap ``app.asgi_app`` (request ids, access line, metrics); record each request's route."""
    wrapped: Any = RequestTracking(app.asgi_app, metrics)  # type: ignore[arg-type]
    app.asgi_app = wrapped  # type: ignore[method-assign]
    if metrics is not None:  # the route template is for the metrics only
        app.before_request_funcs.setdefault(None, []).insert(0, _route_before)


class AccessLogger(Logger):
    """Hypercorn's logger with a cheap :meth:`access` for what the app never saw."""

    async def access(self, request: Any, response: Any, request_time: float) -> None:
        if SCOPE_REQUEST_ID in request:
            return  # the app's request: RequestTracking wrote its line
        logger = self.access_logger
        if logger is None or not logger.isEnabledFor(logging.INFO):
            return
        status = size = None
        if response is not None:
            status = response["status"]
            for name, value in response.get("headers", ()):
                if name.lower() == b"content-length":
                    size = int(value) if value.isdigit() else None
                    break
        write_access_line(logger, request, status, size, request_time, None)
