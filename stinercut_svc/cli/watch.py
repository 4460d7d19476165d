"""Following jobs live from the hub, as a frontend client does: ``jobs watch`` and
``render --wait``.

The CLI joins ``/ws`` as ``client_type=frontend`` and reads the service's
``job:progress`` (``{job, project, progress, speed, eta_seconds}``) and
``job:status`` messages. The hub is a live feed, not a log: a message published
before the CLI connected, or routed by an instance the CLI is not connected to,
is never seen. So the feed is connected *before* a render is requested, and
after ``RESYNC_S`` without a message the jobs are read from the REST API once,
which also picks up jobs that started or ended unseen.

Synchronous on purpose (websocket-client, httpx's blocking client): a CLI that
waits on one socket has nothing to run concurrently, and a blocking loop keeps
Ctrl-C simple. The token goes in the ``bearer.<token>`` subprotocol (what a
browser can send too), never in the URL where proxies log it.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import websocket
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TaskProgressColumn, TextColumn

#: Seconds without a hub message before the jobs are read from the API again.
RESYNC_S = 2.0
CONNECT_TIMEOUT_S = 10.0
FINISHED = frozenset({"completed", "failed", "cancelled"})
ACTIVE = ("pending", "processing")
JOB_COMMANDS = frozenset({"job:progress", "job:status"})


class HubClosed(Exception):
    """The hub closed the connection (a refusal carries code 1008 and a reason)."""

    def __init__(self, code: int | None, reason: str) -> None:
        super().__init__(f"the hub closed the connection ({code}): {reason}")
        self.code = code
        self.reason = reason


def hub_url(base_url: str) -> str:
    """``http(s)://host:port`` -> ``ws(s)://host:port/ws?client_type=frontend``."""
    parts = urlsplit(base_url)
    scheme = "wss" if parts.scheme == "https" else "ws"
    path = parts.path.rstrip("/") + "/ws"
    return urlunsplit((scheme, parts.netloc, path, "client_type=frontend", ""))


class HubFeed:
    """A frontend connection to the hub; :meth:`next` waits for one job message."""

    def __init__(self, base_url: str, token: str | None) -> None:
        protocols = [f"bearer.{token}"] if token else None
        self.ws = websocket.create_connection(
            hub_url(base_url), timeout=CONNECT_TIMEOUT_S, subprotocols=protocols,
            enable_multithread=False,
        )

    def next(self, timeout: float) -> dict[str, Any] | None:
        """The next ``job:*`` message, or ``None`` when ``timeout`` passes without one."""
        self.ws.settimeout(timeout)
        while True:
            try:
                opcode, frame = self.ws.recv_data_frame(control_frame=True)
            except websocket.WebSocketTimeoutException:
                return None
            except websocket.WebSocketConnectionClosedException:
                raise HubClosed(None, "connection lost") from None
            if opcode == websocket.ABNF.OPCODE_CLOSE:
                data = bytes(frame.data or b"")
                code = int.from_bytes(data[:2], "big") if len(data) >= 2 else None
                raise HubClosed(code, data[2:].decode("utf-8", "replace") or "closed")
            if opcode != websocket.ABNF.OPCODE_TEXT:
                continue
            try:
                message = json.loads(frame.data)
            except ValueError:
                continue
            if isinstance(message, dict) and message.get("command") in JOB_COMMANDS:
                return message

    def close(self) -> None:
        try:
            self.ws.close(timeout=1.0)
        except (OSError, websocket.WebSocketException):
            pass


def format_eta(seconds: object) -> str:
    if not isinstance(seconds, int | float) or seconds < 0:
        return "-:--"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


class JobBoard:
    """One progress bar per job: percent, state, the service's ETA and speed."""

    def __init__(self, console: Console, label: Callable[[dict[str, Any]], str]) -> None:
        self.label = label
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TaskProgressColumn(),
            TextColumn("{task.fields[state]:<10}"),
            TextColumn("ETA {task.fields[eta]}"),
            TextColumn("{task.fields[speed]}"),
            console=console,
            transient=False,
        )
        self.tasks: dict[str, TaskID] = {}
        self.states: dict[str, str] = {}

    def __enter__(self) -> JobBoard:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    @property
    def active(self) -> list[str]:
        return [job for job, state in self.states.items() if state not in FINISHED]

    def job(self, view: dict[str, Any]) -> None:
        """A job as the REST API shows it."""
        self._update(
            str(view["uuid"]), view, progress=view.get("progress"), state=view.get("status")
        )

    def message(self, message: dict[str, Any]) -> str | None:
        """A hub ``job:*`` message; returns the job's uuid."""
        data = message.get("data") or {}
        job = data.get("job")
        if not isinstance(job, str):
            return None
        if message.get("command") == "job:progress":
            speed = data.get("speed")
            self._update(
                job, data, progress=data.get("progress"), state="processing",
                eta=format_eta(data.get("eta_seconds")),
                speed=f"{speed:.2f}x" if isinstance(speed, int | float) else "",
            )
        else:
            self._update(job, data, progress=data.get("progress"), state=data.get("status"))
        return job

    def _update(
        self, job: str, source: dict[str, Any], *, progress: object, state: object,
        eta: str | None = None, speed: str | None = None,
    ) -> None:
        state = str(state or self.states.get(job) or "pending")
        if job not in self.tasks:
            self.tasks[job] = self.progress.add_task(
                self.label(source), total=100, state=state, eta="-:--", speed=""
            )
        self.states[job] = state
        fields: dict[str, Any] = {"state": state}
        if eta is not None:
            fields["eta"] = eta
        if speed is not None:
            fields["speed"] = speed
        if state == "completed":
            fields["eta"] = "0:00"
            progress = 100
        elif state in FINISHED:
            fields["eta"] = "-:--"
        completed = float(progress) if isinstance(progress, int | float) else None
        self.progress.update(self.tasks[job], completed=completed, **fields)


def print_json_line(value: object) -> None:
    sys.stdout.write(json.dumps(value) + "\n")
    sys.stdout.flush()


def follow(
    feed: HubFeed,
    board: JobBoard,
    *,
    resync: Callable[[], Iterable[dict[str, Any]]],
    done: Callable[[], bool],
    on_message: Callable[[dict[str, Any]], None] | None = None,
) -> None:
    """Feed hub messages (and, after silence, ``resync()``'s job views) to ``board``
    until ``done()``."""
    for view in resync():
        board.job(view)
    while not done():
        message = feed.next(RESYNC_S)
        if message is None:
            for view in resync():
                board.job(view)
            continue
        board.message(message)
        if on_message is not None:
            on_message(message)
