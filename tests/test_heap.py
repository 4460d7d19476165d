"""The served process freezes its start-up heap; test processes do not (#12).

A full garbage collection walked the ~190 000 objects start-up leaves behind, a
~100 ms pause of the trio loop (see :func:`stinercut_svc.server.freeze_start_up_heap`).
The CLI freezes them once start-up is done; the in-process test server must not,
or every test's app would stay in the pytest process's memory.
"""

from __future__ import annotations

import gc
import re
from pathlib import Path

import httpx

from stinercut_svc.context import StinercutApp
from tests.support.child_server import serve_in_child

MIN_FROZEN = 50_000


async def test_the_cli_freezes_its_start_up_heap_and_serves_on(
    tmp_path: Path, database_url: str
) -> None:
    log = tmp_path / "service.log"
    env = {
        "DATABASE_URL": database_url,
        "SHARED_VIDEO_PATH": str(tmp_path / "shared"),
        "DATA_DIR": str(tmp_path / "data"),
        "LOG_LEVEL": "INFO",
    }
    async with serve_in_child(log_path=log, **env) as (url, _pid):
        async with httpx.AsyncClient(timeout=10) as http:
            health = await http.get(f"{url}/api/health")
            created = await http.post(f"{url}/api/projects", json={"name": "after the freeze"})
    assert health.status_code == 200, health.text
    assert created.status_code == 201, created.text
    found = re.findall(r"heap frozen after start-up: (\d+) objects", log.read_text())
    assert len(found) == 1, log.read_text()[-2000:]
    assert int(found[0]) >= MIN_FROZEN


async def test_the_in_process_test_server_leaves_the_heap_alone(app: StinercutApp) -> None:
    # ``app`` is served, started up, by the serve() the CLI uses (tests/support/server.py).
    assert app.db is not None
    assert gc.get_freeze_count() == 0
