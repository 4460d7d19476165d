"""A private ``redis-server`` process on its own free port, stopped and restarted at will.

For outage tests: the shared Redis on 6379 must never be stopped by a test. The
server keeps nothing on disk (``--save "" --appendonly no``), so a restart is a
Redis that lost all its data, as a crashed production Redis without persistence.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio

from stinercut_svc.resp import RedisAddress, connect

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
START_TIMEOUT_S = 10.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """One ``redis-server`` on ``port``; :meth:`start` and :meth:`stop` as often as needed."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.url = f"redis://127.0.0.1:{port}/0"
        self._process: trio.Process | None = None

    @property
    def running(self) -> bool:
        return self._process is not None

    async def start(self) -> None:
        assert self._process is None, "already running"
        self._process = await trio.lowlevel.open_process(
            [
                REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1",
                "--save", "", "--appendonly", "no", "--loglevel", "warning",
            ],
            stdout=subprocess.DEVNULL,
        )
        with trio.fail_after(START_TIMEOUT_S):
            while True:
                if self._process.returncode is not None:
                    raise RuntimeError(f"redis-server exited with {self._process.returncode}")
                try:
                    async with connect(RedisAddress.from_url(self.url), timeout=1.0) as conn:
                        if await conn.call("PING") == b"PONG":
                            return
                except (OSError, trio.TooSlowError):
                    pass
                except BaseExceptionGroup:
                    pass
                await trio.sleep(0.05)

    async def stop(self, sig: int = signal.SIGKILL) -> None:
        """Stop it (SIGKILL by default: no goodbye to its clients) and reap it."""
        process, self._process = self._process, None
        if process is None:
            return
        process.send_signal(sig)
        with trio.CancelScope(shield=True):
            with trio.move_on_after(5):
                await process.wait()
            process.kill()
            await process.wait()


@asynccontextmanager
async def redis_server() -> AsyncIterator[RedisServer]:
    """A started private Redis, always stopped at the end."""
    server = RedisServer(free_port())
    await server.start()
    try:
        yield server
    finally:
        await server.stop()
