"""``/api/services/detector/…`` against a real stub detector on 127.0.0.1.

The stub is a tiny ASGI app served by Hypercorn inside the test; hangs and
half-open peers are plain trio listeners. No mocks: every call crosses a socket
through the app's shared httpx client.
"""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import attrs
import pytest
import trio

from stinercut_svc.app import create_app
from stinercut_svc.config import Settings
from stinercut_svc.context import StinercutApp
from tests.support.detector import StubDetector, stub_detector

SHORT_TIMEOUT_S = 0.5


@asynccontextmanager
async def app_for(settings: Settings, url: str, api_key: str | None = None) -> AsyncIterator[StinercutApp]:
    app = create_app(attrs.evolve(settings, detector_url=url, detector_api_key=api_key))
    async with app.test_app():
        yield app


async def _call(app: StinercutApp, method: str, action: str) -> tuple[int, Any]:
    client = app.test_client()
    # A generous "does not hang" bound; the client's own deadline is what answers.
    with trio.fail_after(15):
        response = await client.open(f"/api/services/detector/{action}", method=method)
    return response.status_code, await response.get_json()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- success ------------------------------------------------------------------

async def test_restart_success_passes_the_detectors_message(settings: Settings) -> None:
    stub = StubDetector()
    async with stub_detector(stub) as url, app_for(settings, url) as app:
        status, body = await _call(app, "POST", "restart")
    assert status == 200, body
    assert body == {"status": "restarting", "message": "restart scheduled"}
    assert [(r["method"], r["path"]) for r in stub.requests] == [("POST", "/control/restart")]
    # No key configured: no header sent.
    assert "x-api-key" not in stub.requests[0]["headers"]


async def test_enable_disable_and_fallback_message(settings: Settings) -> None:
    stub = StubDetector(body=b"ok", content_type=b"text/plain")
    async with stub_detector(stub) as url, app_for(settings, url) as app:
        enabled = await _call(app, "POST", "enable")
        disabled = await _call(app, "POST", "disable")
        restarted = await _call(app, "POST", "restart")
    assert enabled == (200, {"status": "enabled", "message": "detector enabled"})
    assert disabled == (200, {"status": "disabled", "message": "detector disabled"})
    assert restarted == (200, {"status": "restarting", "message": "detector restart requested"})
    assert [(r["method"], r["path"]) for r in stub.requests] == [
        ("POST", "/control/enable"),
        ("POST", "/control/disable"),
        ("POST", "/control/restart"),
    ]


async def test_status_is_proxied_and_the_connection_reused(settings: Settings) -> None:
    document = {"enabled": True, "devices": [{"path": "/dev/sdb1", "mounted": True}]}
    stub = StubDetector(body=json.dumps(document).encode())
    async with stub_detector(stub) as url, app_for(settings, url) as app:
        first = await _call(app, "GET", "status")
        second = await _call(app, "GET", "status")
        client = app.http
    assert first == (200, document) and second == (200, document)
    assert [(r["method"], r["path"]) for r in stub.requests] == [("GET", "/status")] * 2
    # One shared client: the second call reused the first call's connection …
    assert stub.requests[0]["client_port"] == stub.requests[1]["client_port"]
    # … and the client is closed when the app shuts down.
    assert client.is_closed


async def test_status_that_is_not_json_is_502(settings: Settings) -> None:
    stub = StubDetector(body=b"<html>oops</html>", content_type=b"text/html")
    async with stub_detector(stub) as url, app_for(settings, url) as app:
        status, body = await _call(app, "GET", "status")
    assert status == 502
    assert body["error"]["code"] == "detector_error"
    assert "not JSON" in body["error"]["message"]


# --- API key ------------------------------------------------------------------

async def test_api_key_header_is_sent_when_configured(settings: Settings) -> None:
    stub = StubDetector(api_key="s3cret")
    async with stub_detector(stub) as url, app_for(settings, url, api_key="s3cret") as app:
        status, body = await _call(app, "POST", "restart")
        status_status, _ = await _call(app, "GET", "status")
    assert status == 200, body
    assert status_status == 200
    assert [r["headers"].get("x-api-key") for r in stub.requests] == ["s3cret", "s3cret"]


async def test_wrong_api_key_is_a_502_that_says_so(settings: Settings) -> None:
    stub = StubDetector(api_key="right")
    async with stub_detector(stub) as url, app_for(settings, url, api_key="wrong") as app:
        status, body = await _call(app, "POST", "restart")
    assert status == 502
    error = body["error"]
    assert error["code"] == "detector_auth"
    assert "refused the API key" in error["message"] and "DETECTOR_API_KEY" in error["message"]
    assert "401" in error["message"]
    assert error["details"]["upstream_status"] == 401
    assert error["details"]["detector_url"] == url


async def test_missing_api_key_is_a_502_that_says_so(settings: Settings) -> None:
    stub = StubDetector(api_key="right")
    async with stub_detector(stub) as url, app_for(settings, url) as app:
        status, body = await _call(app, "POST", "disable")
    assert status == 502
    assert body["error"]["code"] == "detector_auth"
    assert "DETECTOR_API_KEY is not set" in body["error"]["message"]


# --- failures -----------------------------------------------------------------

@pytest.mark.parametrize("upstream", [500, 404, 302])
async def test_non_2xx_is_502_naming_the_status(settings: Settings, upstream: int) -> None:
    stub = StubDetector(status_code=upstream, body=b'{"detail": "boom"}')
    async with stub_detector(stub) as url, app_for(settings, url) as app:
        status, body = await _call(app, "POST", "restart")
        status_status, status_body = await _call(app, "GET", "status")
    assert status == status_status == 502
    assert body["error"]["code"] == "detector_error"
    assert f"HTTP {upstream}" in body["error"]["message"]
    assert "POST /control/restart" in body["error"]["message"]
    assert f"HTTP {upstream}" in status_body["error"]["message"]
    assert body["error"]["details"]["upstream_status"] == upstream
    assert "boom" in body["error"]["details"]["upstream_body"]


async def test_closed_port_is_503(settings: Settings) -> None:
    url = f"http://127.0.0.1:{_closed_port()}"
    async with app_for(settings, url) as app:
        for method, action in [("POST", "restart"), ("GET", "status"), ("POST", "enable")]:
            status, body = await _call(app, method, action)
            assert status == 503, body
            assert body["error"]["code"] == "detector_unreachable"
            assert url in body["error"]["message"]


async def test_hanging_detector_is_504_at_the_configured_deadline(
    settings: Settings, nursery: trio.Nursery
) -> None:
    # Accepts connections, reads, never answers.
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]

    async def swallow(stream: trio.SocketStream) -> None:
        async with stream:
            while await stream.receive_some(65536):
                pass

    nursery.start_soon(trio.serve_listeners, swallow, listeners)
    async with app_for(settings, f"http://127.0.0.1:{port}") as app:
        assert app.detector.timeout == 5.0  # the default
        app.detector = attrs.evolve(app.detector, timeout=SHORT_TIMEOUT_S)
        status, body = await _call(app, "POST", "restart")
        status_status, _ = await _call(app, "GET", "status")
    assert status == status_status == 504
    assert body["error"]["code"] == "detector_timeout"
    assert f"within {SHORT_TIMEOUT_S:g} s" in body["error"]["message"]


async def test_peer_that_drops_the_connection_is_502(
    settings: Settings, nursery: trio.Nursery
) -> None:
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]

    async def hang_up(stream: trio.SocketStream) -> None:
        await stream.receive_some(65536)
        await stream.aclose()

    nursery.start_soon(trio.serve_listeners, hang_up, listeners)
    async with app_for(settings, f"http://127.0.0.1:{port}") as app:
        status, body = await _call(app, "POST", "restart")
    assert status == 502
    assert body["error"]["code"] == "detector_error"
    assert "broke" in body["error"]["message"]


async def test_routes_are_documented(client) -> None:  # type: ignore[no-untyped-def]
    response = await client.get("/openapi.json")
    paths = (await response.get_json())["paths"]
    for action in ("restart", "enable", "disable"):
        assert "post" in paths[f"/api/services/detector/{action}"]
    assert "get" in paths["/api/services/detector/status"]
    assert "post" in paths["/api/fonts/convert"]
