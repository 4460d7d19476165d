"""A database outage answers 503 + Retry-After, logged once when it starts and once
when it ends (#11 item 4).

The service runs on a private MariaDB that this test starts on its own port
(``tests/support/private_mariadb.py``), SIGKILLs (the outage), and starts again on
the same port and datadir. Requests during the outage must all be 503
``database_unavailable`` with ``Retry-After`` - not 500s with a traceback each -
and the log must hold exactly one "unavailable" line and, once the server is back
and a request succeeds, exactly one "back" line.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import trio

from stinercut_svc.app import create_app
from stinercut_svc.config import Settings, normalise_database_url
from tests.support.private_mariadb import PrivateMariaDB
from tests.support.server import running_server

REQUESTS_DURING_OUTAGE = 12


def _lines(caplog: pytest.LogCaptureFixture, words: str) -> list[logging.LogRecord]:
    return [
        record
        for record in caplog.records
        if record.name == "stinercut_svc.database" and words in record.getMessage()
    ]


async def test_database_outage_is_503_with_one_log_line_each_way(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    db = await trio.to_thread.run_sync(PrivateMariaDB)
    try:
        await trio.to_thread.run_sync(db.start)
        settings = Settings(
            database_url=normalise_database_url(db.url),
            shared_video_path=tmp_path / "shared",
            detector_url="http://127.0.0.1:9",
        )
        app = create_app(settings)
        async with running_server(app):
            client = app.test_client()
            with trio.fail_after(60):
                await app.schema_ready.wait()
            response = await client.post("/api/projects", json={"name": "before"})
            assert response.status_code == 201, await response.get_json()
            project = (await response.get_json())["uuid"]

            await trio.to_thread.run_sync(db.stop)  # SIGKILL: the outage

            requests = [
                ("GET", "/api/projects"),
                ("GET", f"/api/projects/{project}"),
                ("POST", "/api/projects"),
                ("GET", "/api/settings"),
            ]
            for i in range(REQUESTS_DURING_OUTAGE):
                method, path = requests[i % len(requests)]
                with trio.fail_after(30):
                    if method == "POST":
                        response = await client.post(path, json={"name": f"during {i}"})
                    else:
                        response = await client.get(path)
                body = await response.get_json()
                assert response.status_code == 503, (path, body)
                assert body["error"]["code"] == "database_unavailable"
                assert body["detail"] == body["error"]["message"]
                assert int(response.headers["Retry-After"]) > 0

            assert len(_lines(caplog, "database unavailable")) == 1
            assert _lines(caplog, "database is back") == []
            # No request turned into an unhandled 500 with a traceback.
            assert not [r for r in caplog.records if r.name == "stinercut_svc.errors"]
            assert app.db.outage.is_down

            await trio.to_thread.run_sync(db.start)  # same port, same data

            with trio.fail_after(60):
                while True:
                    response = await client.get(f"/api/projects/{project}")
                    if response.status_code == 200:
                        break
                    assert response.status_code == 503
                    await trio.sleep(0.2)
            assert (await response.get_json())["name"] == "before"
            assert (await client.post("/api/projects", json={"name": "after"})).status_code == 201

            assert len(_lines(caplog, "database unavailable")) == 1
            back = _lines(caplog, "database is back")
            assert len(back) == 1
            assert "calls failed meanwhile" in back[0].getMessage()
            assert not app.db.outage.is_down
    finally:
        await trio.to_thread.run_sync(db.close)
