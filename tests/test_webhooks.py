"""Job-state webhooks: signed, retried with backoff through the outbox, surviving a
restart, never blocking a render, refusing callback URLs into private networks.

The receiver is a real HTTP server on 127.0.0.1 (``WEBHOOK_ALLOW_PRIVATE`` is set for
those tests, as loopback is refused by default — which another test checks).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import attrs
import pytest
import trio

from stinercut_svc.app import create_app
from stinercut_svc.config import Settings
from stinercut_svc.context import StinercutApp
from stinercut_svc.models import DeliveryStatus, Job, WebhookDelivery
from stinercut_svc.webhooks import outbox, signing, targets
from tests.support.server import running_server
from tests.test_render_helpers import add_project, clip, start_render, wait_job

SECRET = "test-webhook-secret"
FAST = {"output": {"preset": "ultrafast"}}


# --- a real receiver ------------------------------------------------------------------


@attrs.define
class Receiver:
    """Records every POST; answers ``fail_first`` of them with 500, or hangs ``hang_s``."""

    url: str = ""
    fail_first: int = 0
    hang_s: float = 0.0
    requests: list[dict[str, Any]] = attrs.Factory(list)
    lock: threading.Lock = attrs.Factory(threading.Lock)

    def ok(self) -> list[dict[str, Any]]:
        with self.lock:
            return [r for r in self.requests if r["answered"] == 200]


@contextmanager
def receiver(**kwargs: Any) -> Iterator[Receiver]:
    state = Receiver(**kwargs)
    release = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
            body = self.rfile.read(int(self.headers["Content-Length"]))
            with state.lock:
                answer = 500 if len(state.requests) < state.fail_first else 200
                state.requests.append(
                    {"headers": dict(self.headers), "body": body, "answered": answer}
                )
            if state.hang_s:
                release.wait(state.hang_s)
            self.send_response(answer)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        release.set()
        server.shutdown()
        server.server_close()


def hook_settings(settings: Settings, **changes: Any) -> Settings:
    values: dict[str, Any] = dict(
        webhook_secret=SECRET,
        webhook_allow_private=True,
        webhook_retry_base_s=0.05,
        webhook_timeout_s=5.0,
    )
    values.update(changes)
    return attrs.evolve(settings, **values)


async def wait_until(predicate: Any, *, timeout: float = 30.0) -> None:
    with trio.fail_after(timeout):
        while not predicate():
            await trio.sleep(0.05)


def payload(request: dict[str, Any]) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(request["body"])
    return data


# --- pure parts --------------------------------------------------------------------------


def test_signature_is_hmac_sha256_of_the_exact_body() -> None:
    body = b'{"event":"job.status"}'
    header = signing.sign(SECRET, body)
    import hashlib
    import hmac

    assert header == "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert signing.verify(SECRET, body, header)
    assert not signing.verify(SECRET, body + b" ", header)
    assert not signing.verify("other", body, header)
    assert not signing.verify(SECRET, body, None)
    assert not signing.verify(SECRET, body, header.removeprefix("sha256="))


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("169.254.169.254", "link-local"),
        ("fe80::1", "link-local"),
        ("10.1.2.3", "private"),
        ("172.16.0.9", "private"),
        ("192.168.178.1", "private"),
        ("fd00::5", "private"),
        ("100.64.1.1", "private"),
        ("0.0.0.0", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("::ffff:127.0.0.1", "loopback"),
        ("93.184.216.34", None),
        ("2606:4700::1111", None),
    ],
)
def test_forbidden_addresses(address: str, reason: str | None) -> None:
    found = targets.forbidden_reason(address)
    if reason is None:
        assert found is None
    else:
        assert found is not None and reason in found


def test_backoff_doubles_with_jitter_and_is_capped() -> None:
    for attempts, nominal in [(1, 10.0), (2, 20.0), (3, 40.0), (5, 160.0)]:
        delay = outbox.backoff_seconds(attempts, 10.0)
        assert 0.8 * nominal <= delay <= 1.2 * nominal
    assert outbox.backoff_seconds(40, 10.0) <= 1.2 * outbox.MAX_BACKOFF_S
    # With the default base a failing delivery is still retried after an hour.
    total, attempts = 0.0, 0
    while total < 3600:
        attempts += 1
        total += outbox.backoff_seconds(attempts, 10.0)
    assert attempts >= 8


# --- the API refuses unusable callback URLs -----------------------------------------------


async def test_callback_urls_are_checked(
    settings: Settings, media_dir: Path
) -> None:
    strict = hook_settings(settings, webhook_allow_private=False)
    app = create_app(strict)
    async with running_server(app):
        client = app.test_client()
        cases = [
            ("http://127.0.0.1:8080/hook", "loopback"),
            ("http://localhost/hook", "loopback"),
            ("http://169.254.169.254/latest/meta-data", "link-local"),
            ("http://10.0.0.7/hook", "private-network"),
            ("ftp://example.com/hook", "http:// or https://"),
            ("http://user:pw@example.com/", "credentials"),
            ("not a url", "http:// or https://"),
            ("http://example.com:99999/", "not a valid URL"),
        ]
        for url, text in cases:
            response = await client.post(
                "/api/projects", json={"name": "Hook", "callback_url": url}
            )
            body = await response.get_json()
            assert response.status_code == 422, (url, body)
            assert body["error"]["code"] == "invalid_callback_url"
            assert text in body["error"]["message"], (url, body)
        response = await client.post("/api/projects", json={"name": "Hook", "callback_url": 5})
        assert response.status_code == 422

        project = await add_project(app, [clip(media_dir, "wh1s", seconds=1, size="160x120")])
        response = await client.post(
            f"/api/projects/{project}/render", json={"callback_url": "http://10.9.9.9/x"}
        )
        assert response.status_code == 422
        assert "private-network" in (await response.get_json())["error"]["message"]
        response = await client.post(f"/api/projects/{project}/render", json={"callback_url": 7})
        assert response.status_code == 422
        assert "callback_url" in (await response.get_json())["error"]["message"]
        response = await client.patch(
            f"/api/projects/{project}", json={"callback_url": "gopher://x"}
        )
        assert response.status_code == 422

    unconfigured = create_app(attrs.evolve(settings, webhook_secret=None))
    async with running_server(unconfigured):
        response = await unconfigured.test_client().post(
            "/api/projects", json={"name": "Hook", "callback_url": "https://example.com/hook"}
        )
        assert response.status_code == 422
        assert "WEBHOOK_SECRET" in (await response.get_json())["error"]["message"]


# --- deliveries ----------------------------------------------------------------------------


async def test_every_state_change_is_delivered_signed_and_retried(
    settings: Settings, media_dir: Path
) -> None:
    with receiver(fail_first=2) as hook:
        app = create_app(hook_settings(settings))
        async with running_server(app):
            client = app.test_client()
            response = await client.post(
                "/api/projects", json={"name": "Jürgen Müßig", "callback_url": hook.url}
            )
            assert response.status_code == 201
            project = (await response.get_json())["uuid"]
            assert (await response.get_json())["callback_url"] == hook.url
            await _add_clips(app, project, media_dir)
            job = await start_render(client, project, FAST)
            await wait_job(app, job["uuid"], ["completed"])

            def all_delivered() -> bool:
                states = {payload(r)["job"]["status"] for r in hook.ok()}
                return {"pending", "processing", "completed"} <= states

            await wait_until(all_delivered)
            # The receiver has answered; the dispatcher records that just after.
            with trio.fail_after(30):
                while True:
                    listing = await client.get(f"/api/jobs/{job['uuid']}/webhooks")
                    deliveries = (await listing.get_json())["deliveries"]
                    if all(d["status"] != "pending" for d in deliveries):
                        break
                    await trio.sleep(0.05)

    for request in hook.requests:
        headers = {k.lower(): v for k, v in request["headers"].items()}
        assert signing.verify(SECRET, request["body"], headers["x-stinercut-signature"])
        data = payload(request)
        assert headers["idempotency-key"] == data["event_id"]
        assert data["event"] == "job.status" and data["job"]["uuid"] == job["uuid"]
        assert data["job"]["project_uuid"] == project
    # The first two attempts failed; each failed event was retried under its own
    # idempotency key until it arrived, exactly once.
    by_event: dict[str, list[int]] = {}
    for request in hook.requests:
        by_event.setdefault(payload(request)["event_id"], []).append(request["answered"])
    assert sum(answers.count(500) for answers in by_event.values()) == 2
    for answers in by_event.values():
        assert answers[-1] == 200 and answers.count(200) == 1, by_event
    assert max(len(answers) for answers in by_event.values()) >= 2
    completed = [payload(r) for r in hook.ok() if payload(r)["job"]["status"] == "completed"]
    assert completed[0]["job"]["progress"] == 100 and completed[0]["job"]["output_path"]
    assert all(d["status"] == "delivered" for d in deliveries), deliveries
    assert sorted(d["attempts"] for d in deliveries) == sorted(len(a) for a in by_event.values())


async def _add_clips(app: StinercutApp, project_uuid: str, media_dir: Path) -> None:
    """Give an API-created project one tiny clip (the same rows add_project writes)."""
    source = await add_project(app, [clip(media_dir, "wh1s", seconds=1, size="160x120")])

    def move(session) -> None:  # type: ignore[no-untyped-def]
        from sqlalchemy import select

        from stinercut_svc.models import Project, Video

        target = session.scalars(select(Project).where(Project.uuid == project_uuid)).one()
        donor = session.scalars(select(Project).where(Project.uuid == source)).one()
        for video in session.scalars(select(Video).where(Video.project_id == donor.id)).all():
            video.project_id = target.id

    await app.db.run(move)


async def test_job_callback_overrides_the_project_and_a_hanging_receiver_blocks_nothing(
    settings: Settings, media_dir: Path
) -> None:
    with receiver(hang_s=60) as hanging, receiver() as project_hook:
        app = create_app(hook_settings(settings, webhook_timeout_s=30.0))
        async with running_server(app):
            client = app.test_client()
            project = await add_project(app, [clip(media_dir, "wh1s", seconds=1, size="160x120")])
            response = await client.patch(
                f"/api/projects/{project}", json={"callback_url": project_hook.url}
            )
            assert response.status_code == 200
            job = await start_render(client, project, {**FAST, "callback_url": hanging.url})
            # The receiver never answers within the render: the render completes anyway.
            row = await wait_job(app, job["uuid"], ["completed", "failed"])
            assert row["status"] == "completed"
            await wait_until(lambda: len(hanging.requests) >= 1)
            assert project_hook.requests == []  # the job's own URL won

            def job_urls(session) -> set[str]:  # type: ignore[no-untyped-def]
                from sqlalchemy import select

                return set(
                    session.scalars(
                        select(WebhookDelivery.url).where(WebhookDelivery.job_uuid == job["uuid"])
                    )
                )

            assert await app.db.run(job_urls) == {hanging.url}


async def test_deliveries_survive_a_restart(settings: Settings, media_dir: Path) -> None:
    """Deliveries queued while the receiver is down are sent by the next service process."""
    down = hook_settings(settings, webhook_retry_base_s=0.05)
    with receiver(fail_first=10_000) as broken:
        app = create_app(down)
        async with running_server(app):
            client = app.test_client()
            project = await add_project(app, [clip(media_dir, "wh1s", seconds=1, size="160x120")])
            job = await start_render(client, project, {**FAST, "callback_url": broken.url})
            await wait_job(app, job["uuid"], ["completed"])
            await wait_until(lambda: len(broken.requests) >= 3)
        url = broken.url

    # The service is stopped, the receiver too; the rows wait in the database. Point
    # them at a receiver that works (the same URL cannot be re-bound reliably).
    with receiver() as fixed:

        def repoint(session) -> int:  # type: ignore[no-untyped-def]
            from sqlalchemy import update

            result = session.execute(
                update(WebhookDelivery)
                .where(WebhookDelivery.url == url)
                .values(url=fixed.url)
            )
            return int(result.rowcount)

        restarted = create_app(down)
        async with running_server(restarted):
            moved = await restarted.db.run(repoint)
            assert moved >= 3  # pending, processing, completed were all still owed
            await wait_until(lambda: len(fixed.ok()) >= moved)
            states = [payload(r)["job"]["status"] for r in fixed.ok()]
            assert {"pending", "processing", "completed"} <= set(states)

            def statuses(session) -> set[DeliveryStatus]:  # type: ignore[no-untyped-def]
                from sqlalchemy import select

                return set(session.scalars(select(WebhookDelivery.status)))

            await wait_until(lambda: True)
            with trio.fail_after(10):
                while await restarted.db.run(statuses) != {DeliveryStatus.DELIVERED}:
                    await trio.sleep(0.05)


async def test_a_delivery_past_its_window_is_abandoned(settings: Settings) -> None:
    app = create_app(hook_settings(settings, webhook_retry_window_s=1.0))
    async with running_server(app):
        project = await add_project(app, [])

        def queue_one(session) -> int:  # type: ignore[no-untyped-def]
            from sqlalchemy import select

            from stinercut_svc.models import JobStatus, Project

            target = session.scalars(select(Project).where(Project.uuid == project)).one()
            job = Job(
                project_id=target.id,
                status=JobStatus.FAILED,
                progress=0,
                callback_url="http://127.0.0.1:9/closed",
            )
            session.add(job)
            session.flush()
            assert outbox.job_changed(session, job) == 1
            row = session.scalars(select(WebhookDelivery)).one()
            row.created_at -= timedelta(seconds=5)  # queued before the window closed
            return int(row.id)

        delivery_id = await app.db.run(queue_one)
        app.webhooks.wake()

        def state(session) -> tuple[DeliveryStatus, int, str | None]:  # type: ignore[no-untyped-def]
            row = session.get(WebhookDelivery, delivery_id)
            session.refresh(row)
            return row.status, row.attempts, row.last_error

        with trio.fail_after(20):
            while (found := await app.db.run(state))[0] is DeliveryStatus.PENDING:
                await trio.sleep(0.05)
        status, attempts, error = found
        assert status is DeliveryStatus.ABANDONED and attempts == 1
        assert error and "ConnectError" in error


async def test_sigkill_mid_delivery_resends_the_same_delivery_after_the_lease(
    tmp_path: Path, database_url: str
) -> None:
    """The service process is SIGKILLed while a receiver holds its request open: the row
    stays owed (leased, not delivered, not lost), and once the lease has run out the next
    process sends the *same* delivery again — same body, same ``Idempotency-Key`` — so a
    receiver that did act on the first copy can tell it is a repeat."""
    import os
    import signal
    from datetime import datetime

    from sqlalchemy import create_engine, select, update
    from sqlalchemy.orm import Session

    from stinercut_svc import schema
    from stinercut_svc.config import normalise_database_url
    from stinercut_svc.models import JobStatus, Project
    from tests.support.child_server import serve_in_child

    engine = create_engine(normalise_database_url(database_url))
    schema.upgrade(engine)
    env = {
        "DATABASE_URL": database_url,
        "SHARED_VIDEO_PATH": str(tmp_path / "shared"),
        "DATA_DIR": str(tmp_path / "data"),
        "WEBHOOK_SECRET": SECRET,
        "WEBHOOK_ALLOW_PRIVATE": "true",
        "WEBHOOK_TIMEOUT_S": "60",
    }
    with receiver(hang_s=120) as hanging:
        with Session(engine) as session, session.begin():
            project = Project(name="killed mid-delivery")
            session.add(project)
            session.flush()
            job = Job(project_id=project.id, status=JobStatus.FAILED, progress=0,
                      callback_url=hanging.url)  # fmt: skip
            session.add(job)
            session.flush()
            assert outbox.job_changed(session, job) == 1
        async with serve_in_child(log_path=tmp_path / "first.log", **env) as (_, pid):
            await wait_until(lambda: len(hanging.requests) == 1)
            os.kill(pid, signal.SIGKILL)
        first = hanging.requests[0]

    with Session(engine) as session:
        row = session.scalars(select(WebhookDelivery)).one()
        assert row.status is DeliveryStatus.PENDING and row.delivered_at is None
        leased_until: datetime = row.next_attempt_at
        assert leased_until - outbox.utcnow() > timedelta(seconds=60)  # the lease holds it
        delivery_id = row.id

    with receiver() as fixed:
        # The lease's 120 s pass: moved on the row's clock rather than waited for.
        with Session(engine) as session, session.begin():
            session.execute(
                update(WebhookDelivery)
                .where(WebhookDelivery.id == delivery_id)
                .values(next_attempt_at=outbox.utcnow() - timedelta(seconds=1), url=fixed.url)
            )
        async with serve_in_child(log_path=tmp_path / "second.log", **env):
            await wait_until(lambda: len(fixed.ok()) == 1)
            with trio.fail_after(10):
                while True:
                    with Session(engine) as session:
                        now = session.get(WebhookDelivery, delivery_id)
                        assert now is not None
                        if now.status is DeliveryStatus.DELIVERED:
                            break
                    await trio.sleep(0.05)
        again = fixed.ok()[0]
    engine.dispose()
    assert again["body"] == first["body"]
    assert again["headers"]["Idempotency-Key"] == first["headers"]["Idempotency-Key"]
    assert again["headers"]["X-Stinercut-Signature"] == first["headers"]["X-Stinercut-Signature"]
    assert payload(again)["job"]["status"] == "failed"
