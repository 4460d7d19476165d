"""``GET /metrics`` after real traffic: HTTP, the hub, an upload, a render, ffmpeg, Redis.

Every test serves a real app on a real socket (the one-port server, as in
production), sends real requests with httpx, connects real WebSocket clients
(``websocket-client`` as the detector uses it, trio-websocket for a client that
stops reading), renders a real clip with ffmpeg, and then parses the scrape with
prometheus-client's own parser: the text must be valid exposition format and
each counter must have moved by exactly what was sent, under the right labels
(route *templates*, never raw paths).
"""

from __future__ import annotations

import json
import socket
import uuid
from pathlib import Path
from typing import Any

import attrs
import httpx
import trio
import websocket
from prometheus_client.parser import text_string_to_metric_families

from stinercut_svc.app import create_app
from stinercut_svc.config import Settings
from stinercut_svc.context import StinercutApp
from stinercut_svc.jobs import owner as owners
from stinercut_svc.media.runner import run_ffmpeg
from stinercut_svc.metrics import metrics_of
from tests.support.render_defaults import clear_frontend_render_defaults
from tests.support.server import running_server
from tests.test_hub import closed_with, connect, serving, sync, ws_url
from tests.test_render_helpers import clip

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
STEP_S = 30.0  # "does not hang" bound


async def scrape(http: httpx.AsyncClient, url: str) -> Samples:
    response = await http.get(f"{url}/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    """A sample's value; 0 when the labelled series does not exist (yet)."""
    return samples.get((name, frozenset(labels.items())), 0.0)


def requests(samples: Samples, method: str, route: str, status: int) -> float:
    return value(
        samples, "stinercut_http_requests_total", method=method, route=route, status=str(status)
    )


async def wait_scrape(
    http: httpx.AsyncClient, url: str, ready: Any, what: str
) -> Samples:
    """Scrape until ``ready(samples)`` (figures gathered in the background land soon)."""
    with trio.fail_after(STEP_S):
        while True:
            samples = await scrape(http, url)
            if ready(samples):
                return samples
            await trio.sleep(0.1)
    raise AssertionError(what)  # pragma: no cover - fail_after raises first


async def upload_clip(http: httpx.AsyncClient, url: str, project: str, source: Path) -> int:
    """Upload ``source`` as a clip of ``project``; the multipart body's size in bytes."""
    uploaded = await http.post(
        f"{url}/api/projects/{project}/videos",
        files={"file": ("jump.mp4", source.read_bytes(), "video/mp4")},
    )
    assert uploaded.status_code == 201, uploaded.text
    return int(uploaded.request.headers["content-length"])


async def finished_job(http: httpx.AsyncClient, url: str, job: str) -> dict[str, Any]:
    """Poll ``GET /api/jobs/{job}`` until the job has ended; its row."""
    with trio.fail_after(120):
        while True:
            row: dict[str, Any] = (await http.get(f"{url}/api/jobs/{job}")).json()
            if row["status"] in ("completed", "failed", "cancelled"):
                return row
            await trio.sleep(0.1)


async def test_http_hub_upload_and_render_are_counted(
    settings: Settings, media_dir: Path
) -> None:
    async with serving(settings) as (app, url), httpx.AsyncClient(timeout=STEP_S) as http:
        metrics = metrics_of(app)
        assert metrics is not None
        metrics.jobs_cache_s = 0  # see each job change at once (5 s in production)
        await clear_frontend_render_defaults(app)  # a fast path render of the tiny clip
        before = await scrape(http, url)
        assert requests(before, "GET", "/api/projects", 200) == 0

        # -- HTTP: route templates, statuses, the unmatched bucket ------------------------
        for _ in range(3):
            assert (await http.get(f"{url}/api/projects")).status_code == 200
        missing = uuid.uuid4()
        assert (await http.get(f"{url}/api/projects/{missing}")).status_code == 404
        assert (await http.get(f"{url}/api/projects/{uuid.uuid4()}")).status_code == 404
        assert (await http.put(f"{url}/api/health")).status_code == 405
        assert (await http.get(f"{url}/no/such/{missing}")).status_code == 404
        for made_up in ("BREW", "WHEN"):  # methods from clients never grow the label set
            assert (await http.request(made_up, f"{url}/api/projects")).status_code == 405
        created = await http.post(f"{url}/api/projects", json={"name": "Metrics"})
        assert created.status_code == 201, created.text
        project = created.json()["uuid"]

        # -- an upload: its multipart body's bytes ------------------------------------------
        source = clip(media_dir, "metrics160", seconds=1, size="160x120")
        body_bytes = await upload_clip(http, url, project, source)

        # -- the hub: a detector (websocket-client, like the real one) and a frontend -------
        detector = await trio.to_thread.run_sync(
            lambda: websocket.create_connection(ws_url(url, "client_type=detector"), timeout=STEP_S)
        )
        try:
            async with connect(url, "frontend") as frontend:
                await sync(frontend)
                during = await wait_scrape(
                    http, url,
                    lambda s: value(s, "stinercut_hub_clients", type="detector") == 1,
                    "detector registered",
                )
                assert value(during, "stinercut_hub_clients", type="frontend") == 1
                for n in range(2):
                    message = {"command": "device:status", "target": "frontend", "data": {"n": n}}
                    await trio.to_thread.run_sync(detector.send, json.dumps(message))
                    got = json.loads(await frontend.get_message())
                    assert got["data"] == {"n": n}
                await frontend.send_message(
                    json.dumps({"command": "device:scan", "target": "detector", "data": {}})
                )
                got = json.loads(await trio.to_thread.run_sync(detector.recv))
                assert got["command"] == "device:scan"
        finally:
            await trio.to_thread.run_sync(detector.close)

        # -- a tiny render ------------------------------------------------------------------
        started = await http.post(
            f"{url}/api/projects/{project}/render", json={"output": {"preset": "ultrafast"}}
        )
        assert started.status_code == 202, started.text
        row = await finished_job(http, url, started.json()["uuid"])
        assert row["status"] == "completed", row

        after = await wait_scrape(
            http, url,
            lambda s: value(s, "stinercut_hub_clients", type="detector") == 0
            and value(s, "stinercut_hub_clients", type="frontend") == 0,
            "clients gone",
        )

    assert requests(after, "GET", "/api/projects", 200) == 3
    assert requests(after, "GET", "/api/projects/<uuid>", 404) == 2
    assert requests(after, "PUT", "<unmatched>", 405) == 1
    assert requests(after, "GET", "<unmatched>", 404) == 1
    assert requests(after, "other", "<unmatched>", 405) == 2
    assert requests(after, "POST", "/api/projects", 201) == 1
    assert requests(after, "POST", "/api/projects/<uuid>/videos", 201) == 1
    assert requests(after, "POST", "/api/projects/<uuid>/render", 202) == 1
    # No raw path ever becomes a label.
    assert not any(str(missing) in str(labels) for _, labels in after)
    # The latency histogram counted the same requests.
    assert value(
        after, "stinercut_http_request_duration_seconds_count",
        method="GET", route="/api/projects",
    ) == 3
    assert value(
        after, "stinercut_http_request_duration_seconds_bucket",
        method="GET", route="/api/projects", le="+Inf",
    ) == 3
    assert value(after, "stinercut_upload_bytes_total", route="/api/projects/<uuid>/videos") == (
        body_bytes
    )
    # Hub: two messages to the frontend, one to the detector; no other target.
    assert value(after, "stinercut_hub_messages_routed_total", target="detector") == 1
    # job:status/job:progress of the render are routed to the frontend too.
    assert value(after, "stinercut_hub_messages_routed_total", target="frontend") >= 2
    assert value(after, "stinercut_hub_messages_routed_total", target="all") == 0
    assert value(after, "stinercut_hub_slow_client_disconnects_total", reason="outbox_full") == 0
    # Jobs: by state from the database, the queue wait of this instance's claim, the render.
    assert value(after, "stinercut_jobs", state="completed") == 1
    assert value(after, "stinercut_jobs", state="pending") == 0
    assert value(after, "stinercut_jobs", state="processing") == 0
    assert value(after, "stinercut_job_queue_wait_seconds_count") == 1
    assert value(after, "stinercut_render_seconds_count", render_path=row["render_path"]) == 1
    assert value(after, "stinercut_render_seconds_sum", render_path=row["render_path"]) > 0
    assert value(after, "stinercut_ffmpeg_processes", kind="render") == 0
    assert value(after, "process_open_fds") > 0


async def test_slow_client_disconnect_is_counted(settings: Settings) -> None:
    small = attrs.evolve(settings, ws_outbox_messages=4)
    async with serving(small) as (app, url), httpx.AsyncClient(timeout=STEP_S) as http:
        async with connect(url, "frontend", message_queue_size=1) as stuck:
            await sync(stuck)
            pad = "p" * 8192
            with trio.fail_after(STEP_S):
                for n in range(3000):  # far more than the socket buffers hold
                    await app.hub.publish("job:progress", {"n": n, "pad": pad})
                    if app.hub.local_counts()["frontend"] == 0:
                        break
            code, _ = await closed_with(stuck)
            assert code == 1013
        samples = await scrape(http, url)
    assert value(samples, "stinercut_hub_slow_client_disconnects_total", reason="outbox_full") == 1
    assert value(samples, "stinercut_hub_slow_client_disconnects_total", reason="send_timeout") == 0
    assert value(samples, "stinercut_hub_messages_routed_total", target="frontend") >= 2


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # nothing listens there once closed


async def test_backplane_errors_are_counted(settings: Settings) -> None:
    down = attrs.evolve(settings, redis_url=f"redis://127.0.0.1:{_closed_port()}/0")
    async with serving(down) as (_app, url), httpx.AsyncClient(timeout=STEP_S) as http:
        samples = await wait_scrape(
            http, url,
            lambda s: value(s, "stinercut_hub_backplane_failures_total") >= 1,
            "a failed Redis session",
        )
    assert value(samples, "stinercut_hub_backplane_connected") == 0


async def test_running_ffmpeg_is_counted_by_kind(app: StinercutApp, live_url: str) -> None:
    """A tagged ffmpeg (how renders run) shows as ``render`` while it runs, then 0."""
    tag = owners.job_tag(app.supervisor.owner, str(uuid.uuid4()))
    args = ["-re", "-f", "lavfi", "-i", "testsrc2=size=64x48:rate=10:duration=30", "-f", "null", "-"]
    async with httpx.AsyncClient(timeout=STEP_S) as http, trio.open_nursery() as nursery:
        nursery.start_soon(lambda: run_ffmpeg(args, binary=app.settings.ffmpeg, tag=tag))
        # The render's ffmpeg counts as render, never as other. Other ffmpeg runs may
        # overlap for a moment (the health checks' ``ffmpeg -version`` at start-up), so
        # wait for a scrape showing the render alone; the render itself runs for 30 s.
        await wait_scrape(
            http, live_url,
            lambda s: value(s, "stinercut_ffmpeg_processes", kind="render") == 1
            and value(s, "stinercut_ffmpeg_processes", kind="other") == 0,
            "ffmpeg seen as render, nothing else running",
        )
        nursery.cancel_scope.cancel()
    async with httpx.AsyncClient(timeout=STEP_S) as http:
        await wait_scrape(
            http, live_url,
            lambda s: value(s, "stinercut_ffmpeg_processes", kind="render") == 0,
            "ffmpeg gone",
        )


async def test_each_app_has_its_own_registry(settings: Settings, tmp_path: Path) -> None:
    other = attrs.evolve(settings, shared_video_path=tmp_path / "other-shared")
    first, second = create_app(settings), create_app(other)
    async with (
        running_server(first) as one,
        running_server(second) as two,
        httpx.AsyncClient(timeout=STEP_S) as http,
    ):
        for _ in range(2):
            assert (await http.get(f"{one}/")).status_code == 200
        assert requests(await scrape(http, one), "GET", "/", 200) == 2
        assert requests(await scrape(http, two), "GET", "/", 200) == 0


async def test_metrics_off(settings: Settings) -> None:
    off = attrs.evolve(settings, metrics_enabled=False)
    async with serving(off) as (app, url), httpx.AsyncClient(timeout=STEP_S) as http:
        assert metrics_of(app) is None
        response = await http.get(f"{url}/metrics", headers={"X-Request-ID": "scrape-1"})
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "metrics_disabled"
        assert response.headers["x-request-id"] == "scrape-1"  # request ids stay on
        assert (await http.get(f"{url}/api/projects")).status_code == 200
