"""GET /api/health answered at the connection layer (fast_health.py): the same answer as
the Quart route, keep-alive, hand-over of the connection's other requests (pipelined
bytes included) to Hypercorn, access line, metrics, unhealthy 503."""

from __future__ import annotations

import json
import logging
import socket
from urllib.parse import urlsplit

import attrs
import httpx
import pytest
import trio

from stinercut_svc.app import create_app
from stinercut_svc.config import Settings
from stinercut_svc.context import StinercutApp
from stinercut_svc.fast_health import parse
from tests.support.server import running_server


def exchange(url: str, raw: bytes, *, answers: int) -> list[tuple[str, dict[str, str], bytes]]:
    """Send raw bytes on one connection; read ``answers`` HTTP responses back."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(raw)
        data = b""
        found: list[tuple[str, dict[str, str], bytes]] = []
        while len(found) < answers:
            while b"\r\n\r\n" not in data:
                chunk = sock.recv(65536)
                assert chunk, f"connection closed after {len(found)} answers"
                data += chunk
            head, data = data.split(b"\r\n\r\n", 1)
            lines = head.decode("latin-1").split("\r\n")
            headers = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            length = int(headers.get("content-length", "0"))
            while len(data) < length:
                data += sock.recv(65536)
            body, data = data[:length], data[length:]
            found.append((lines[0], headers, body))
        return found


def served_by_hypercorn(headers: dict[str, str]) -> bool:
    return headers.get("server", "").startswith("hypercorn")


async def test_fast_answer_equals_the_route(live_url: str) -> None:
    [(status, fast, fast_body)] = await trio.to_thread.run_sync(
        lambda: exchange(live_url, b"GET /api/health HTTP/1.1\r\nHost: t\r\nX-Request-ID: probe-1\r\n\r\n", answers=1)
    )
    assert status == "HTTP/1.1 200 OK" and not served_by_hypercorn(fast)
    assert fast["x-request-id"] == "probe-1" and fast["content-type"] == "application/json"
    # With an Origin header the route (and its CORS headers) answers.
    async with httpx.AsyncClient(base_url=live_url, trust_env=False) as client:
        routed = await client.get("/api/health", headers={"Origin": "http://localhost:8080"})
    assert served_by_hypercorn(dict(routed.headers))
    assert routed.status_code == 200
    fast_json, route_json = json.loads(fast_body), routed.json()
    assert fast_json == route_json and fast_json["status"] == "healthy"
    assert int(fast["content-length"]) == len(fast_body)


async def test_keep_alive_then_hand_over_to_hypercorn(live_url: str) -> None:
    pipelined = (
        b"GET /api/health HTTP/1.1\r\nHost: t\r\n\r\n"
        b"HEAD /api/health?probe=1 HTTP/1.1\r\nHost: t\r\n\r\n"
        b"GET /api/health HTTP/1.1\r\nHost: t\r\n\r\n"
        b"GET /api/projects HTTP/1.1\r\nHost: t\r\n\r\n"
        b"GET /api/health HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
    )

    def run() -> list[tuple[str, dict[str, str], bytes]]:
        parts = urlsplit(live_url)
        answers = []
        with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
            sock.sendall(pipelined)
            data = b""
            for expect_body in (True, False, True, True, True):
                while b"\r\n\r\n" not in data:
                    data += sock.recv(65536)
                head, data = data.split(b"\r\n\r\n", 1)
                lines = head.decode("latin-1").split("\r\n")
                headers = {
                    k.strip().lower(): v.strip() for k, _, v in (x.partition(":") for x in lines[1:])
                }
                length = int(headers["content-length"]) if expect_body else 0
                while len(data) < length:
                    data += sock.recv(65536)
                answers.append((lines[0], headers, data[:length]))
                data = data[length:]
        assert data == b""
        return answers

    answers = await trio.to_thread.run_sync(run)
    statuses = [a[0].split(" ")[1] for a in answers]
    assert statuses == ["200", "200", "200", "200", "200"]
    assert [served_by_hypercorn(a[1]) for a in answers] == [False, False, False, True, True]
    assert answers[1][2] == b"" and int(answers[1][1]["content-length"]) == len(answers[0][2])
    assert json.loads(answers[3][2])["items"] == []  # GET /api/projects, by Quart
    assert len({a[1]["x-request-id"] for a in answers}) == 5


@pytest.mark.parametrize(
    "head",
    [
        b"POST /api/health HTTP/1.1\r\nHost: t\r\n\r\n",
        b"GET /api/health HTTP/1.1\r\nHost: t\r\nOrigin: http://x\r\n\r\n",
        b"GET /api/healthz HTTP/1.1\r\nHost: t\r\n\r\n",
        b"GET /api/health HTTP/2.0\r\nHost: t\r\n\r\n",
        b"GET /api/health HTTP/1.1\r\nContent-Length: 5\r\n\r\n",
        b"GET /api/health HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"GET /api/health HTTP/1.1\r\nUpgrade: websocket\r\n\r\n",
        b"GET /api/health HTTP/1.1\r\nbroken header line\r\n\r\n",
    ],
)
def test_only_plain_health_requests_take_the_fast_path(head: bytes) -> None:
    assert parse(head) is None


def test_http10_closes_and_bad_request_ids_are_replaced() -> None:
    request = parse(b"GET /api/health HTTP/1.0\r\nX-Request-ID: \x01bad\r\n\r\n")
    assert request is not None and not request.keep_alive
    assert len(request.request_id) == 32 and request.request_id != "\x01bad"


async def test_access_line_and_metrics(
    live_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="stinercut_svc.access")
    await trio.to_thread.run_sync(
        lambda: exchange(live_url, b"GET /api/health HTTP/1.1\r\nHost: t\r\nX-Request-ID: acc-7\r\n\r\n", answers=1)
    )
    lines = [r for r in caplog.records if r.name == "stinercut_svc.access" and "/api/health" in r.getMessage()]
    assert len(lines) == 1 and getattr(lines[0], "request_id", None) == "acc-7"
    async with httpx.AsyncClient(base_url=live_url, trust_env=False) as client:
        scrape = (await client.get("/metrics")).text
    counted = [
        line for line in scrape.splitlines()
        if line.startswith("stinercut_http_requests_total") and 'route="/api/health"' in line
    ]
    assert counted and float(counted[0].rsplit(" ", 1)[1]) >= 1, counted


async def test_unhealthy_is_503_on_the_fast_path(settings: Settings) -> None:
    app: StinercutApp = create_app(attrs.evolve(settings, ffmpeg="/nonexistent/ffmpeg"))
    async with running_server(app) as url:
        with trio.fail_after(30):
            while True:
                [(status, headers, body)] = await trio.to_thread.run_sync(
                    lambda: exchange(url, b"GET /api/health HTTP/1.1\r\nHost: t\r\n\r\n", answers=1)
                )
                if json.loads(body)["ffmpeg"] is False:
                    break
                await trio.sleep(0.1)
    assert status.startswith("HTTP/1.1 503") and not served_by_hypercorn(headers)
    assert json.loads(body)["status"] == "unhealthy"
