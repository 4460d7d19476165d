#!/usr/bin/env python3
"""A small WebSocket client for the stinercut hub (trio-websocket), for manual testing.

As a **detector** it announces itself with ``detector.status`` (target ``frontend``)
and obeys ``detector:status``, ``detector:enable`` and ``detector:disable`` like the
real host daemon: each answer is a fresh ``detector.status``. As a **frontend** it
prints every message it receives as one JSON line on stdout, and can send one
command first. The hub's keepalive is WebSocket protocol pings, which trio-websocket
answers by itself; an application ``hub:ping`` (the hub no longer sends one unasked)
still gets ``hub:pong``.

Examples::

    .venv/bin/python scripts/ws_client.py --as detector --token "$DETECTOR_WS_TOKEN"
    .venv/bin/python scripts/ws_client.py --as frontend --send detector:status --target detector
    .venv/bin/python scripts/ws_client.py --as frontend --count 3   # exit after 3 messages

Exit status: 0 when ``--count`` messages arrived or the server closed normally,
2 when the server refused or dropped the connection (its close code and reason
go to stderr), 1 on ``--timeout`` or a connection error.

Only the standard library, trio and trio-websocket are needed, so the script also
runs on the detector's host.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

import trio
from trio_websocket import ConnectionClosed, HandshakeError, WebSocketConnection, open_websocket_url

DEFAULT_URL = "ws://127.0.0.1:8000/ws"


class Detector:
    """The state a detector reports, and its answers to the frontend's commands."""

    def __init__(self) -> None:
        self.enabled = True
        self.started = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")

    def status(self) -> dict[str, Any]:
        return {
            "command": "detector.status",
            "target": "frontend",
            "data": {"enabled": self.enabled, "devices": [], "since": self.started,
                     "agent": "scripts/ws_client.py"},
        }

    def answer(self, command: str) -> dict[str, Any] | None:
        if command == "detector:enable":
            self.enabled = True
        elif command == "detector:disable":
            self.enabled = False
        elif command != "detector:status":
            return None
        return self.status()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Connect to the stinercut WebSocket hub as a detector or a frontend.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--url", default=DEFAULT_URL, help="hub endpoint (ws:// or wss://)")
    parser.add_argument("--as", dest="role", choices=("frontend", "detector"), default="frontend",
                        help="client type to connect as")
    parser.add_argument("--token", help="detector token (DETECTOR_WS_TOKEN), sent as token=")
    parser.add_argument("--send", metavar="COMMAND", help="send this command once connected")
    parser.add_argument("--data", default="{}", help="JSON object for --send")
    parser.add_argument("--target", choices=("all", "frontend", "detector"), default=None,
                        help="target for --send (missing means all)")
    parser.add_argument("--count", type=int, default=0,
                        help="exit after printing this many messages (0 = run until closed)")
    parser.add_argument("--timeout", type=float, default=0.0,
                        help="give up after this many seconds (0 = never)")
    parser.add_argument("--status-interval", type=float, default=0.0,
                        help="detector: also send detector.status every N seconds (0 = off)")
    args = parser.parse_args(argv)
    try:
        args.data = json.loads(args.data)
    except ValueError as exc:
        parser.error(f"--data is not JSON: {exc}")
    if not isinstance(args.data, dict):
        parser.error("--data must be a JSON object")
    if urlsplit(args.url).scheme not in ("ws", "wss"):
        parser.error("--url must start with ws:// or wss://")
    return args


def endpoint(url: str, role: str, token: str | None) -> str:
    parts = urlsplit(url)
    query = [q for q in parts.query.split("&") if q and not q.startswith(("client_type=", "token="))]
    extra = {"client_type": role, **({"token": token} if token else {})}
    query.append(urlencode(extra))
    return urlunsplit(parts._replace(query="&".join(query)))


def emit(message: Any) -> None:
    print(json.dumps(message, ensure_ascii=False), flush=True)


async def send(ws: WebSocketConnection, message: dict[str, Any]) -> None:
    await ws.send_message(json.dumps(message))


async def run(args: argparse.Namespace) -> int:
    # The server may close before our first message is out (a refusal), so this
    # covers sends as well as receives; inside the nursery it arrives in a group.
    try:
        return await converse(args)
    except ConnectionClosed as closed:
        return report_close(closed)
    except BaseExceptionGroup as group:
        matched, rest = group.split(ConnectionClosed)
        if matched is None or rest is not None:
            raise
        first = matched.exceptions[0]
        while isinstance(first, BaseExceptionGroup):
            first = first.exceptions[0]
        assert isinstance(first, ConnectionClosed)
        return report_close(first)


def report_close(closed: ConnectionClosed) -> int:
    reason = closed.reason
    print(f"closed: {reason.code} {reason.reason or ''}".rstrip(), file=sys.stderr, flush=True)
    return 0 if reason.code in (1000, 1001) else 2


async def converse(args: argparse.Namespace) -> int:
    detector = Detector() if args.role == "detector" else None
    printed = 0
    async with open_websocket_url(endpoint(args.url, args.role, args.token)) as ws:
        print(f"connected to {args.url} as {args.role}", file=sys.stderr, flush=True)
        async with trio.open_nursery() as nursery:
            if detector is not None:
                await send(ws, detector.status())
                if args.status_interval > 0:
                    nursery.start_soon(_announce, ws, detector, args.status_interval)
            if args.send:
                outgoing: dict[str, Any] = {"command": args.send, "data": args.data}
                if args.target:
                    outgoing["target"] = args.target
                await send(ws, outgoing)
            while True:
                raw = await ws.get_message()
                message = json.loads(raw)
                command = message.get("command") if isinstance(message, dict) else None
                if command == "hub:ping":
                    await send(ws, {"command": "hub:pong", "data": {}})
                    continue
                emit(message)
                printed += 1
                if detector is not None and isinstance(command, str):
                    answer = detector.answer(command)
                    if answer is not None:
                        await send(ws, answer)
                if args.count and printed >= args.count:
                    nursery.cancel_scope.cancel()
                    return 0
    return 0


async def _announce(ws: WebSocketConnection, detector: Detector, interval: float) -> None:
    while True:
        await trio.sleep(interval)
        await send(ws, detector.status())


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    async def bounded() -> int:
        if args.timeout > 0:
            with trio.move_on_after(args.timeout):
                return await run(args)
            print(f"timeout after {args.timeout:g} s", file=sys.stderr)
            return 1
        return await run(args)

    try:
        return trio.run(bounded)
    except (OSError, HandshakeError) as exc:
        print(f"cannot connect to {args.url}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
