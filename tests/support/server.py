"""Serve an app on a real socket (127.0.0.1, free port) inside the test's nursery.

The same code path as ``stinercut serve``: the one-port server (``server.py``)
with the production Hypercorn settings, only bound to a free port.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio

from stinercut_svc.context import StinercutApp
from stinercut_svc.server import hypercorn_config, serve


@asynccontextmanager
async def running_server(app: StinercutApp) -> AsyncIterator[str]:
    """Yield the base URL (``http://127.0.0.1:PORT``) while the app is served."""
    config = hypercorn_config(app.settings)  # the production settings, on a free port
    config.bind = ["127.0.0.1:0"]
    config.graceful_timeout = 1.0
    config.accesslog = None
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        urls = await nursery.start(
            lambda task_status: serve(app, config, shutdown_trigger=stop.wait, task_status=task_status)
        )
        try:
            yield urls[0]
        finally:
            stop.set()
