"""The access log: one line per request from the real service at ``LOG_LEVEL=INFO``, none below."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import trio

from tests.support.child_server import serve_in_child


async def _run(tmp_path: Path, database_url: str, level: str) -> tuple[str, int]:
    log = tmp_path / f"{level}.log"
    async with serve_in_child(
        log_path=log,
        LOG_LEVEL=level,
        DATABASE_URL=database_url,
        SHARED_VIDEO_PATH=str(tmp_path / "shared"),
    ) as (url, _pid):
        async with httpx.AsyncClient(base_url=url) as http:
            answer = await http.get("/api/projects/00000000-0000-4000-8000-000000000000?x=1")
            assert answer.status_code == 404
            size = len(answer.content)
            # The line is written just after the answer is sent; a second request
            # (logged after the first) marks that the first one's line is out.
            await http.get("/")
            with trio.move_on_after(10):  # a "does not hang" guard, not a timing
                while True:
                    if '"GET / ' in log.read_text() or level != "INFO":
                        break
                    await trio.sleep(0.05)
    return log.read_text(), size


async def test_one_line_per_request_at_info(tmp_path: Path, database_url: str) -> None:
    text, size = await _run(tmp_path, database_url, "INFO")
    lines = [line for line in text.splitlines() if "stinercut_svc.access" in line]
    ours = [line for line in lines if "/api/projects/0000" in line]
    assert len(ours) == 1, lines
    assert re.search(
        r'stinercut_svc\.access: 127\.0\.0\.1:\d+ "GET /api/projects/00000000-0000-4000-8000-'
        rf'000000000000 1\.1" 404 {size} \d+\.\d{{6}}s$',
        ours[0],
    ), ours[0]


async def test_no_access_lines_at_warning(tmp_path: Path, database_url: str) -> None:
    text, _ = await _run(tmp_path, database_url, "WARNING")
    assert "stinercut_svc.access" not in text
