"""The real service (``python -m stinercut_svc serve``) in a child process.

For measurements that must see the server's own process (peak RSS during an
upload) and for benchmarks, where the load generator must not share the
server's trio loop or GIL.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import trio

START_TIMEOUT_S = 60.0


@asynccontextmanager
async def serve_in_child(
    *, log_path: Path | None = None, **env: str
) -> AsyncIterator[tuple[str, int]]:
    """Yield ``(base_url, pid)`` of a service started with ``env`` on a free port.

    ``log_path``: where the child's stderr (its log) goes; by default it is inherited.
    """
    port = _free_port()
    environ = {**os.environ, "HOST": "127.0.0.1", "PORT": str(port), "LOG_LEVEL": "WARNING", **env}
    log = None if log_path is None else log_path.open("ab")
    try:
        process = await trio.lowlevel.open_process(
            [sys.executable, "-m", "stinercut_svc", "serve"],
            env=environ,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
    finally:
        if log is not None:
            log.close()  # the child holds its own descriptor
    url = f"http://127.0.0.1:{port}"
    try:
        await wait_ready(url, process)
        yield url, process.pid
    finally:
        process.terminate()
        with trio.move_on_after(10):
            await process.wait()
        process.kill()
        await process.wait()


async def wait_ready(url: str, process: trio.Process) -> None:
    """Poll ``GET /`` until the child answers 200; fail if it exits first."""
    async with httpx.AsyncClient() as http:
        with trio.fail_after(START_TIMEOUT_S):
            while True:
                if process.returncode is not None:
                    raise RuntimeError(f"the service exited during start-up ({process.returncode})")
                try:
                    if (await http.get(f"{url}/")).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                await trio.sleep(0.1)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
