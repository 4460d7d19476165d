"""A stub of the detector's HTTP control API, served by Hypercorn on 127.0.0.1.

Allowed by the test rules: the detector is a separate host daemon, so its
control API is played by a tiny ASGI app whose answers each test sets.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import attrs
import trio
from hypercorn.config import Config
from hypercorn.trio import serve


@attrs.define
class StubDetector:
    """An ASGI app playing the detector: answers are set per test, requests recorded."""

    api_key: str | None = None
    status_code: int = 200
    body: bytes = b'{"message": "restart scheduled"}'
    content_type: bytes = b"application/json"
    requests: list[dict[str, Any]] = attrs.Factory(list)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                else:
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        self.requests.append(
            {
                "method": scope["method"],
                "path": scope["path"],
                "headers": headers,
                "client_port": scope["client"][1],
            }
        )
        if self.api_key is not None and headers.get("x-api-key") != self.api_key:
            status, body = 401, b'{"detail": "invalid API key"}'
        else:
            status, body = self.status_code, self.body
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", self.content_type)],
            }
        )
        await send({"type": "http.response.body", "body": body})


@asynccontextmanager
async def stub_detector(stub: StubDetector) -> AsyncIterator[str]:
    config = Config()
    config.bind = ["127.0.0.1:0"]
    config.graceful_timeout = 0.5
    config.accesslog = None
    config.errorlog = None
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        urls = await nursery.start(
            lambda task_status: serve(stub, config, shutdown_trigger=stop.wait, task_status=task_status)  # type: ignore[arg-type]
        )
        try:
            yield urls[0]
        finally:
            stop.set()


