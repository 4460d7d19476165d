"""One access-log line per request, at the cost of one log call.

Hypercorn's own access logging builds an ``AccessLogAtoms`` dict per request before
formatting the configured line: every request and response header, *every
environment variable of the process*, a ``strftime`` and an ``HTTPStatus`` lookup,
most of it for keys the line never uses. That cost ~10-16 % of a fast request's
throughput. :class:`AccessLogger` writes the same line the service configured
(``client "METHOD path HTTP-version" status bytes seconds``) from the few values it
needs, through the ``stinercut_svc.access`` logger, and only when that logger
would print at INFO.

Wiring: ``config.logger_class = AccessLogger`` in the Hypercorn config.
"""

from __future__ import annotations

import logging
from typing import Any

from hypercorn.logging import Logger

ACCESS_LOGGER = "stinercut_svc.access"


class AccessLogger(Logger):
    """Hypercorn's logger with a cheap :meth:`access`; errors go through Hypercorn's path."""

    async def access(self, request: Any, response: Any, request_time: float) -> None:
        logger = self.access_logger
        if logger is None or not logger.isEnabledFor(logging.INFO):
            return
        client = request.get("client")
        if client is None:
            remote = "-"
        elif len(client) == 2:
            remote = f"{client[0]}:{client[1]}"
        else:
            remote = str(client[0])
        method = request["method"] if request["type"] == "http" else "GET"
        status: object = "-"
        length = "-"
        if response is not None:
            status = response["status"]
            for name, value in response.get("headers", ()):
                if name.lower() == b"content-length":
                    length = value.decode("latin1")
                    break
        logger.info(
            '%s "%s %s %s" %s %s %.6fs',
            remote,
            method,
            request["path"],
            request.get("http_version", "ws"),
            status,
            length,
            request_time,
        )
