"""Every error answer uses the one JSON format: ``error`` plus a top-level ``detail``.

``detail`` is the original backend's shape (``{"detail": "..."}``), which the PHP
frontend displays; it must equal ``error.message`` on every path: ApiError,
validation, 404/405, 413, 408, invalid JSON, 503 (tool missing, database down),
507 (disk full) and unexpected 500s. No answer may carry an absolute server path
or a Python class name.
"""

from __future__ import annotations

import errno
import json
import re
from pathlib import Path

import httpx
import pytest
import trio
from sqlalchemy.exc import OperationalError

from stinercut_svc import uploads
from stinercut_svc.app import create_app
from stinercut_svc.config import Settings
from stinercut_svc.errors import ApiError, scrub
from stinercut_svc.media.runner import ToolMissingError

# Absolute server paths and Python-internal words that must never reach a client.
_LEAKS = re.compile(r"/(tmp|usr|opt|var|home|root|work)/|Traceback|Error\b|NoneType|<class ")


def _assert_error_shape(body: dict, code: str) -> None:
    assert set(body) == {"error", "detail"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    # The original backend's shape, for clients written against it.
    assert body["detail"] == body["error"]["message"]
    assert not _LEAKS.search(body["detail"]), body["detail"]


async def test_unknown_route_is_json_404(client) -> None:  # type: ignore[no-untyped-def]
    response = await client.get("/api/does-not-exist")
    assert response.status_code == 404
    body = await response.get_json()
    _assert_error_shape(body, "not_found")
    assert "/api/does-not-exist" in body["detail"]


async def test_wrong_method_is_json_405_with_allow(client) -> None:  # type: ignore[no-untyped-def]
    response = await client.delete("/api/health")
    assert response.status_code == 405
    body = await response.get_json()
    _assert_error_shape(body, "method_not_allowed")
    assert "GET" in body["error"]["details"]["allowed"]
    assert "GET" in response.headers["Allow"]


async def test_api_error_and_unexpected_error(settings: Settings) -> None:
    app = create_app(settings)

    @app.get("/boom")
    async def boom() -> str:
        raise RuntimeError("secret internals")

    @app.get("/teapot")
    async def teapot() -> str:
        raise ApiError(409, "already rendering", details={"job": "x"})

    @app.get("/no-tools")
    async def no_tools() -> str:
        raise ToolMissingError("ffprobe is not installed", returncode=None, stderr_tail="")

    @app.get("/no-tools-at-path")
    async def no_tools_at_path() -> str:
        # FFPROBE_BINARY may be configured as an absolute path: it must not leak.
        raise ToolMissingError(
            "/opt/media/bin/ffprobe is not installed or not executable",
            returncode=None,
            stderr_tail="",
        )

    @app.get("/disk-full")
    async def disk_full() -> str:
        raise OSError(errno.ENOSPC, "No space left on device", "/var/lib/stinercut/x.tmp")

    @app.get("/os-error")
    async def os_error() -> str:
        raise PermissionError(errno.EACCES, "Permission denied", "/var/lib/stinercut/x")

    async with app.test_app():
        client = app.test_client()
        response = await client.get("/boom")
        assert response.status_code == 500
        body = await response.get_json()
        _assert_error_shape(body, "internal_error")
        assert "secret" not in body["detail"]

        response = await client.get("/teapot")
        assert response.status_code == 409
        body = await response.get_json()
        _assert_error_shape(body, "conflict")
        assert body["error"]["details"] == {"job": "x"}
        assert body["detail"] == "already rendering"

        # A missing ffmpeg/ffprobe is the deployment's fault: 503, wherever it surfaces.
        response = await client.get("/no-tools")
        assert response.status_code == 503
        body = await response.get_json()
        _assert_error_shape(body, "tool_missing")
        assert "ffprobe is not installed" in body["detail"]

        response = await client.get("/no-tools-at-path")
        assert response.status_code == 503
        body = await response.get_json()
        _assert_error_shape(body, "tool_missing")
        assert "ffprobe" in body["detail"] and "/opt/media" not in body["detail"]

        # A full disk anywhere is 507, not a 500 with a traceback; no server path.
        response = await client.get("/disk-full")
        assert response.status_code == 507
        _assert_error_shape(await response.get_json(), "insufficient_storage")

        # Any other OSError is a bug: 500, the path stays in the log only.
        response = await client.get("/os-error")
        assert response.status_code == 500
        _assert_error_shape(await response.get_json(), "internal_error")


async def test_database_errors_are_503_with_retry_after(settings: Settings) -> None:
    app = create_app(settings)

    @app.get("/db-down")
    async def db_down() -> str:
        import pymysql.err

        raise OperationalError(
            "SELECT 1", {}, pymysql.err.OperationalError(2003, "Can't connect to MySQL server")
        )

    @app.get("/db-down-in-nursery")
    async def db_down_in_nursery() -> str:
        # A route running a nursery: the failure arrives wrapped in an ExceptionGroup.
        async with trio.open_nursery() as nursery:
            nursery.start_soon(db_down)
        return "unreachable"

    @app.get("/two-failures")
    async def two_failures() -> str:
        async def fail() -> None:
            raise RuntimeError("one of two")

        async with trio.open_nursery() as nursery:
            nursery.start_soon(fail)
            nursery.start_soon(fail)
        return "unreachable"

    async with app.test_app():
        client = app.test_client()
        for route in ("/db-down", "/db-down-in-nursery"):
            response = await client.get(route)
            assert response.status_code == 503, route
            assert int(response.headers["Retry-After"]) > 0
            body = await response.get_json()
            _assert_error_shape(body, "database_unavailable")
            assert "database" in body["detail"]
        # Several failures at once are a bug: 500, no detail of either.
        response = await client.get("/two-failures")
        assert response.status_code == 500
        body = await response.get_json()
        _assert_error_shape(body, "internal_error")
        assert "one of two" not in body["detail"]


async def test_validation_errors_name_each_field(settings: Settings) -> None:
    from quart_schema import validate_querystring, validate_request

    from stinercut_svc.openapi import StrictModel

    class Body(StrictModel):
        name: str
        count: int = 1

    class Query(StrictModel):
        limit: int = 10

    app = create_app(settings)

    @app.post("/things")
    @validate_request(Body)
    async def things(data: Body) -> dict:
        return {"name": data.name}

    @app.get("/things")
    @validate_querystring(Query)
    async def list_things(query_args: Query) -> dict:
        return {"limit": query_args.limit}

    async with app.test_app():
        client = app.test_client()
        response = await client.post("/things", json={"count": "many", "extra": 1})
        assert response.status_code == 422
        body = await response.get_json()
        _assert_error_shape(body, "validation_error")
        fields = {f["field"] for f in body["error"]["details"]["fields"]}
        assert fields == {"name", "count", "extra"}
        assert "name" in body["detail"] and "count" in body["detail"]

        # A JSON array where an object belongs: no pydantic class name ("Body") in the text.
        response = await client.post("/things", json=[1, 2])
        assert response.status_code == 422
        body = await response.get_json()
        _assert_error_shape(body, "validation_error")
        assert "Body" not in body["detail"] and "JSON object" in body["detail"]

        response = await client.post(
            "/things", data="{not json", headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 400
        _assert_error_shape(await response.get_json(), "invalid_json")

        response = await client.get("/things?limit=lots")
        assert response.status_code == 400
        body = await response.get_json()
        _assert_error_shape(body, "validation_error")
        assert body["error"]["details"]["fields"][0]["field"] == "limit"

        assert (await client.get("/things?limit=3")).status_code == 200
        spec = await (await client.get("/openapi.json")).get_json()
        assert "/things" in spec["paths"]


async def test_413_and_408_over_a_real_socket(
    live_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Both are produced while the body arrives, in the streaming connection: a real
    # server, not the in-process test client.
    monkeypatch.setattr(uploads, "IDLE_TIMEOUT_S", 0.5)
    async with httpx.AsyncClient(base_url=live_url, timeout=30) as http:
        response = await http.post(
            "/api/projects",
            content=b'{"name": "' + b"x" * (2 * 1024 * 1024) + b'"}',
            headers={"Content-Type": "application/json"},
        )
        assert response.status_code == 413
        body = response.json()
        _assert_error_shape(body, "payload_too_large")
        assert "limit" in body["detail"]

        project = (await http.post("/api/projects", json={"name": "idle"})).json()["uuid"]
    # A client that starts an upload and then goes quiet: raw socket, because an
    # HTTP client would not read the answer before it finished sending.
    head = b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.mp4"\r\n\r\nxx'
    host, port = live_url.removeprefix("http://").split(":")
    async with await trio.open_tcp_stream(host, int(port)) as stream:
        await stream.send_all(
            (
                f"POST /api/projects/{project}/videos HTTP/1.1\r\nHost: {host}\r\n"
                "Content-Type: multipart/form-data; boundary=b\r\n"
                "Content-Length: 100000\r\n\r\n"
            ).encode()
            + head
        )
        answer = b""
        with trio.fail_after(20):
            while not _complete(answer):
                chunk = await stream.receive_some(65536)
                assert chunk, answer
                answer += chunk
    head_part, _, body_part = answer.partition(b"\r\n\r\n")
    assert head_part.startswith(b"HTTP/1.1 408"), answer[:200]
    _assert_error_shape(json.loads(body_part), "request_timeout")


def _complete(answer: bytes) -> bool:
    head, sep, body = answer.partition(b"\r\n\r\n")
    length = re.search(rb"(?i)content-length: *(\d+)", head)
    return bool(sep and length and len(body) >= int(length[1]))


async def test_the_openapi_error_schema_has_detail(client) -> None:  # type: ignore[no-untyped-def]
    spec = await (await client.get("/openapi.json")).get_json()
    documented = spec["paths"]["/api/fonts/convert"]["post"]["responses"]
    for status in ("400", "413", "422", "507"):
        schema = documented[status]["content"]["application/json"]["schema"]
        assert schema["title"] == "ErrorOut"
        assert {"error", "detail"} <= set(schema["required"])
        assert schema["properties"]["detail"]["type"] == "string"


def test_scrub_removes_server_paths_and_keeps_routes() -> None:
    assert scrub("no route for GET /api/nope") == "no route for GET /api/nope"
    cleaned = scrub("cannot open '/tmp/pytest-1/shared/uploads/x/clip.mp4': gone")
    assert "/tmp" not in cleaned and "clip.mp4" in cleaned
    assert "/usr/bin" not in scrub("/usr/bin/ffprobe is not installed")
    assert "/work/main" not in scrub("see /work/main/var/db")


async def test_a_stored_path_is_relative_in_answers(client, app, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    # A missing file named by a client: the message repeats what the client sent,
    # never where the storage root lives on the server.
    project = (await (await client.post("/api/projects", json={"name": "p"})).get_json())["uuid"]
    response = await client.post(
        f"/api/projects/{project}/videos", json={"path": "uploads/none/clip.mp4"}
    )
    assert response.status_code == 422
    body = await response.get_json()
    _assert_error_shape(body, "file_not_found")
    assert str(app.storage.root) not in body["detail"]


async def test_messages_lose_the_storage_root_wherever_it_lives(settings: Settings) -> None:
    # A root outside the usual top-level folders (a container volume at /shared-videos,
    # say) is still never shown: paths below it come out root-relative.
    app = create_app(settings)
    root = app.storage.root

    @app.get("/leaky")
    async def leaky() -> str:
        raise ApiError(422, f"cannot read {root}/uploads/p/clip.mp4 (from {root})")

    async with app.test_app():
        body = await (await app.test_client().get("/leaky")).get_json()
    assert str(root) not in body["detail"]
    assert "uploads/p/clip.mp4" in body["detail"]
    assert body["detail"] == body["error"]["message"]
