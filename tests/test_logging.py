"""``LOG_FORMAT=json`` from the real service: request ids, job ids, one access line each.

The service runs as a child process (``python -m stinercut_svc serve``, the
production entry point) with its stderr in a file; every line of that file must
be one JSON object. Requests go over fresh connections that the client closes
right after the answer: the case in which Hypercorn used to log a request twice
(a first ``"- -"`` line while the response's end was still being sent).
"""

from __future__ import annotations

import io
import json
import logging
import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from stinercut_svc import logs
from stinercut_svc.config import ConfigError, Settings
from stinercut_svc.logs import configure_logging
from stinercut_svc.request_id import MAX_REQUEST_ID, usable_request_id
from tests.support.child_server import serve_in_child
from tests.test_metrics import finished_job, upload_clip
from tests.test_render_helpers import clip

TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
GENERATED = re.compile(r"^[0-9a-f]{32}$")
ACCESS = "stinercut_svc.access"
STEP_S = 30.0  # "does not hang" bound


def read_json_lines(path: Path) -> list[dict[str, Any]]:
    """Every line of the log as JSON (a line that is not one object fails the test)."""
    entries = []
    for line in path.read_text().splitlines():
        entry = json.loads(line)
        assert isinstance(entry, dict), line
        assert {"time", "level", "logger", "message"} <= set(entry), line
        assert TIME.match(entry["time"]), line
        entries.append(entry)
    return entries


async def wait_for_access_lines(path: Path, ids: set[str]) -> list[dict[str, Any]]:
    """The log once an access line for each of ``ids`` is in it (they follow the answers)."""
    with trio.fail_after(STEP_S):
        while True:
            entries = read_json_lines(path)
            seen = {e.get("request_id") for e in entries if e["logger"] == ACCESS}
            if ids <= seen:
                return entries
            await trio.sleep(0.05)


async def fresh_request(
    url: str, method: str, path: str, request_id: str | bytes | None = None, **kwargs: Any
) -> httpx.Response:
    """One request on its own connection, closed as soon as the answer is in."""
    headers: list[tuple[bytes, bytes]] = []
    if request_id is not None:
        raw = request_id.encode() if isinstance(request_id, str) else request_id
        headers.append((b"X-Request-ID", raw))
    async with httpx.AsyncClient(base_url=url, timeout=STEP_S) as http:
        return await http.request(method, path, headers=headers, **kwargs)


@asynccontextmanager
async def json_service(tmp_path: Path, database_url: str, **env: str) -> AsyncIterator[str]:
    """The real service with ``LOG_FORMAT=json`` at INFO, its stderr in ``service.log``."""
    async with serve_in_child(
        log_path=tmp_path / "service.log",
        LOG_LEVEL="INFO",
        LOG_FORMAT="json",
        DATABASE_URL=database_url,
        SHARED_VIDEO_PATH=str(tmp_path / "shared"),
        **env,
    ) as (url, _pid):
        yield url


def access_lines(entries: list[dict[str, Any]], request_id: str) -> list[dict[str, Any]]:
    return [e for e in entries if e["logger"] == ACCESS and e.get("request_id") == request_id]


async def test_request_ids_in_json_lines_and_one_access_line_each(
    tmp_path: Path, database_url: str, media_dir: Path
) -> None:
    log = tmp_path / "service.log"
    source = clip(media_dir, "logging160", seconds=1, size="160x120")
    # An upload fails inside its request with a logged error (ffprobe missing): a line
    # of that request other than its access line.
    async with json_service(tmp_path, database_url, FFPROBE_BINARY=str(tmp_path / "no")) as url:
        sent: dict[str, int] = {}
        cases: list[tuple[str, str, str, dict[str, Any], int]] = [
            ("req-root", "GET", "/", {}, 200),
            ("req-404 with spaces", "GET", f"/api/projects/{uuid.uuid4()}", {}, 404),
            ("req-405", "PUT", "/api/health", {}, 405),
            ("req-nope", "GET", "/no/such/route", {}, 404),
            ("req-create", "POST", "/api/projects", {"json": {"name": "Logs"}}, 201),
        ] + [(f"loop-{n}", "GET", "/api/projects", {}, 200) for n in range(15)]
        for rid, method, path, kwargs, status in cases:
            response = await fresh_request(url, method, path, rid, **kwargs)
            assert response.status_code == status, (rid, response.text)
            assert response.headers["x-request-id"] == rid  # errors, 404 and 405 included
            sent[rid] = status
        project = (await fresh_request(url, "GET", "/api/projects")).json()["items"][0]["uuid"]
        upload = await fresh_request(
            url, "POST", f"/api/projects/{project}/videos", "req-upload",
            files={"file": ("jump.mp4", source.read_bytes(), "video/mp4")},
        )
        assert upload.status_code == 503 and upload.json()["error"]["code"] == "tool_missing"
        assert upload.headers["x-request-id"] == "req-upload"
        sent["req-upload"] = 503

        # A browser frontend may read the id (CORS exposes it).
        async with httpx.AsyncClient(base_url=url, timeout=STEP_S) as http:
            cors = await http.get(
                "/", headers={"Origin": "http://localhost:8080", "X-Request-ID": "req-cors"}
            )
        assert "X-Request-ID" in cors.headers["access-control-expose-headers"].split(", ")
        sent["req-cors"] = 200

        # Unusable ids are replaced by generated ones, which the answer carries.
        generated: list[str] = []
        for bad in ("x" * (MAX_REQUEST_ID + 1), "caf\u00e9".encode(), b"a\x01b"):
            response = await fresh_request(url, "GET", "/", bad)
            rid = response.headers["x-request-id"]
            assert GENERATED.match(rid), rid
            generated.append(rid)
        response = await fresh_request(url, "GET", "/")
        assert GENERATED.match(response.headers["x-request-id"])
        generated.append(response.headers["x-request-id"])
        assert len(set(generated)) == len(generated)

        entries = await wait_for_access_lines(log, set(sent) | set(generated))

    for rid, status in sent.items():
        lines = access_lines(entries, rid)
        assert len(lines) == 1, (rid, lines)
        assert lines[0]["http"]["status"] == status, lines
        assert lines[0]["level"] == "INFO"
    for rid in generated:
        assert len(access_lines(entries, rid)) == 1, rid
    # No access line without its request id, and none of the early "- -" duplicates.
    access = [e for e in entries if e["logger"] == ACCESS]
    assert all(e.get("request_id") for e in access), access
    assert not [e for e in access if e["http"]["status"] is None], access
    # The error logged inside the upload request carries that request's id.
    errors = [e for e in entries if e["message"].startswith("media tool missing")]
    assert errors and all(e.get("request_id") == "req-upload" for e in errors), errors
    assert errors[0]["level"] == "ERROR" and errors[0]["logger"] == "stinercut_svc.errors"
    # Start-up lines belong to no request.
    assert any(e["message"].startswith("listening on") and "request_id" not in e for e in entries)


async def test_job_lines_carry_the_job_uuid(
    tmp_path: Path, database_url: str, media_dir: Path
) -> None:
    log = tmp_path / "service.log"
    source = clip(media_dir, "logging160", seconds=1, size="160x120")
    async with json_service(tmp_path, database_url) as url:
        async with httpx.AsyncClient(timeout=STEP_S) as http:
            created = await http.post(f"{url}/api/projects", json={"name": "Job logs"})
            project = created.json()["uuid"]
            await upload_clip(http, url, project, source)
            started = await http.post(
                f"{url}/api/projects/{project}/render",
                json={"output": {"preset": "ultrafast", "width": 160, "height": 120}},
                headers={"X-Request-ID": "req-render"},
            )
            assert started.status_code == 202, started.text
            job = started.json()["uuid"]
            row = await finished_job(http, url, job)
            assert row["status"] == "completed", row
        with trio.fail_after(STEP_S):
            while not any("completed in" in e["message"] for e in read_json_lines(log)):
                await trio.sleep(0.05)
        entries = read_json_lines(log)

    about_job = [e for e in entries if job in e["message"] and e["logger"] != ACCESS]
    assert len(about_job) >= 2, entries  # at least the start of the render and its end
    assert all(e.get("job_id") == job for e in about_job), about_job
    assert any("completed in" in e["message"] for e in about_job)
    # The job runs in the supervisor's task, not in the request that queued it.
    assert all(e.get("request_id") is None for e in about_job), about_job
    render_access = access_lines(entries, "req-render")
    assert len(render_access) == 1 and "job_id" not in render_access[0]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"abc-123", "abc-123"),
        (b"  padded  ", "padded"),
        (b"with space", "with space"),
        (b"x" * MAX_REQUEST_ID, "x" * MAX_REQUEST_ID),
        (b"x" * (MAX_REQUEST_ID + 1), None),
        (b"", None),
        (b"   ", None),
        (b"tab\there", None),
        (b"caf\xc3\xa9", None),
        (b"nul\x00", None),
        (b"del\x7f", None),
    ],
)
def test_which_request_ids_are_kept(raw: bytes, expected: str | None) -> None:
    assert usable_request_id(raw) == expected


def test_log_settings_are_parsed() -> None:
    base = {"DATABASE_URL": "sqlite:///x.sqlite3"}
    assert Settings.from_env(base).log_format == "text"
    assert Settings.from_env({**base, "LOG_FORMAT": "JSON"}).log_format == "json"
    assert Settings.from_env(base).metrics_enabled is True
    assert Settings.from_env({**base, "METRICS_ENABLED": "off"}).metrics_enabled is False
    with pytest.raises(ConfigError, match="LOG_FORMAT"):
        Settings.from_env({**base, "LOG_FORMAT": "xml"})


def test_configure_logging_twice_writes_each_record_once() -> None:
    """One handler on the root however often it is configured; tracebacks stay on one line."""
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    stream = io.StringIO()
    try:
        configure_logging("INFO", "json")
        configure_logging("INFO", "json")
        assert len(root.handlers) == 1
        root.handlers[0].setStream(stream)  # type: ignore[attr-defined]
        token = logs.request_id.set("unit-1")
        try:
            raise ValueError("boom\nsecond line")
        except ValueError:
            logging.getLogger("stinercut_svc.unit").exception("it failed")
        finally:
            logs.request_id.reset(token)
        logging.getLogger("stinercut_svc.unit").info("after")
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2, lines
    failed, after = (json.loads(line) for line in lines)
    assert failed["message"] == "it failed" and failed["request_id"] == "unit-1"
    assert "ValueError: boom\nsecond line" in failed["exception"]
    assert after["message"] == "after" and "request_id" not in after


async def _handshake(live_url: str, *headers: str) -> dict[str, str]:
    """Send a WebSocket upgrade head by hand; the answer's status line and headers."""
    host, port = live_url.removeprefix("http://").split(":")
    stream = await trio.open_tcp_stream(host, int(port))
    async with stream:
        head = ["GET /ws?client_type=frontend HTTP/1.1", f"Host: {host}", *headers, "", ""]
        await stream.send_all("\r\n".join(head).encode())
        answer = b""
        with trio.fail_after(10):
            while b"\r\n\r\n" not in answer:
                chunk = await stream.receive_some(4096)
                assert chunk, answer
                answer += chunk
    status, *lines = answer.split(b"\r\n\r\n")[0].decode("latin-1").split("\r\n")
    fields = {"status": status}
    fields.update((k.lower(), v.strip()) for k, _, v in (line.partition(":") for line in lines))
    return fields


async def test_websocket_handshakes_carry_a_request_id(live_url: str) -> None:
    """The hub answers its upgrades itself (never through Quart); its answers are tagged
    like every other: the client's usable X-Request-ID, else a fresh one."""
    upgrade = ("Connection: Upgrade", "Upgrade: websocket",
               "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==")  # fmt: skip
    ok = await _handshake(live_url, *upgrade, "Sec-WebSocket-Version: 13",
                          "X-Request-ID: ws-probe-1")  # fmt: skip
    assert ok["status"].startswith("HTTP/1.1 101") and ok["x-request-id"] == "ws-probe-1"
    fresh = await _handshake(live_url, *upgrade, "Sec-WebSocket-Version: 13")
    assert fresh["status"].startswith("HTTP/1.1 101")
    assert re.fullmatch(r"[0-9a-f]{32}", fresh["x-request-id"])
    refused = await _handshake(live_url, *upgrade, "Sec-WebSocket-Version: 8",
                               "X-Request-ID: ws-probe-2")  # fmt: skip
    assert refused["status"].startswith("HTTP/1.1 426") and refused["x-request-id"] == "ws-probe-2"
    bad = await _handshake(live_url, "Upgrade: websocket", "Sec-WebSocket-Version: 13",
                           "X-Request-ID: " + "x" * 200)  # fmt: skip
    assert bad["status"].startswith("HTTP/1.1 400")
    assert re.fullmatch(r"[0-9a-f]{32}", bad["x-request-id"])  # unusable id replaced
