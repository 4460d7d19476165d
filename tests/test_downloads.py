"""Downloads over real HTTP: byte ranges (RFC 9110), validators, file names (RFC 6266).

The job output route and the asset file route share ``downloads.serve_file``.
The output file here is random bytes placed where a render puts its result, with
the job row marked completed: what is under test is how the file is served, and
random content shows that every byte range is the right slice.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from email.message import Message
from email.utils import collapse_rfc2231_value
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from stinercut_svc.context import StinercutApp
from stinercut_svc.downloads import ascii_file_name, content_disposition, parse_range
from stinercut_svc.errors import ApiError
from stinercut_svc.models import Job, JobStatus, Project
from stinercut_svc.routers.jobs import download_name
from tests.support.media import make_audio

SIZE = 10_000
DAY = datetime(2026, 1, 31, 15, 30, tzinfo=UTC)


async def completed_job(app: StinercutApp, http: httpx.AsyncClient, url: str, name: str) -> tuple[str, bytes]:
    project = (await http.post(f"{url}/api/projects", json={"name": name})).json()
    data = os.urandom(SIZE)
    job_file = app.storage.output / f"{project['uuid']}.mp4"
    job_file.parent.mkdir(parents=True, exist_ok=True)
    job_file.write_bytes(data)

    def add(session: Session) -> str:
        project_id = session.scalars(select(Project.id).where(Project.uuid == project["uuid"])).one()
        job = Job(
            project_id=project_id,
            status=JobStatus.COMPLETED,
            progress=100,
            completed_at=DAY.replace(tzinfo=None),
            output_path=app.storage.relative(job_file),
        )
        session.add(job)
        session.flush()
        return job.uuid

    return await app.db.run(add), data


def filename_of(header: str) -> str | None:
    """The name an RFC 6266 client saves: ``filename*`` (RFC 8187) first, else ``filename``.

    The header is split by the stdlib's MIME parameter parser, not by the code under test.
    """
    message = Message()
    message["Content-Disposition"] = header
    # RFC 2231/8187 ``filename*`` comes back as (charset, language, text); plain as str.
    names = [v for k, v in message.get_params(header="content-disposition") or [] if k == "filename"]
    for value in names:
        if isinstance(value, tuple):
            assert value[0].upper() == "UTF-8", header
            return collapse_rfc2231_value(value)
    return str(names[0]).strip('"') if names else None


@pytest.fixture
async def http() -> httpx.AsyncClient:  # type: ignore[misc]
    async with httpx.AsyncClient(timeout=30) as client:
        yield client


async def test_ranges_on_job_output(app: StinercutApp, live_url: str, http: httpx.AsyncClient) -> None:
    job, data = await completed_job(app, http, live_url, "ranges")
    url = f"{live_url}/api/jobs/{job}/output"

    async def get(range_header: str | None, **headers: str) -> httpx.Response:
        if range_header is not None:
            headers["Range"] = range_header
        return await http.get(url, headers=headers)

    full = await get(None)
    assert full.status_code == 200 and full.content == data
    assert full.headers["accept-ranges"] == "bytes"
    assert full.headers["content-type"] == "video/mp4"
    assert int(full.headers["content-length"]) == SIZE

    suffix = await get("bytes=-500")
    assert suffix.status_code == 206
    assert suffix.content == data[-500:]
    assert suffix.headers["content-range"] == f"bytes {SIZE - 500}-{SIZE - 1}/{SIZE}"
    assert suffix.headers["content-length"] == "500"

    cases = {
        "bytes=0-99": (0, 99),
        "bytes=9990-": (9990, SIZE - 1),
        "bytes=100-199999": (100, SIZE - 1),  # the end is clamped to the file
        f"bytes=-{SIZE * 3}": (0, SIZE - 1),  # a suffix longer than the file: all of it
        "BYTES = 5-5": (5, 5),
    }
    for header, (first, last) in cases.items():
        part = await get(header)
        assert part.status_code == 206, header
        assert part.content == data[first : last + 1], header
        assert part.headers["content-range"] == f"bytes {first}-{last}/{SIZE}", header

    for header in ("bytes=-0", f"bytes={SIZE}-", f"bytes={SIZE + 5}-{SIZE + 10}"):
        refused = await get(header)
        assert refused.status_code == 416, header
        assert refused.headers["content-range"] == f"bytes */{SIZE}"
        assert refused.json()["error"]["code"] == "range_not_satisfiable"
        assert refused.json()["detail"]

    # Several ranges: the whole file with 200 (documented choice); so are ranges
    # that do not parse and other units.
    for header in ("bytes=0-9,20-29", "bytes=abc", "bytes=50-10", "items=0-5", "bytes="):
        whole = await get(header)
        assert whole.status_code == 200, header
        assert whole.content == data, header
        assert "content-range" not in whole.headers

    etag = full.headers["etag"]
    assert (await get("bytes=0-9", **{"If-Range": etag})).status_code == 206
    stale = await get("bytes=0-9", **{"If-Range": '"0-0"'})
    assert stale.status_code == 200 and stale.content == data
    assert (await get(None, **{"If-None-Match": etag})).status_code == 304
    since = full.headers["last-modified"]
    assert (await get(None, **{"If-Modified-Since": since})).status_code == 304


async def test_download_names(app: StinercutApp, live_url: str, http: httpx.AsyncClient) -> None:
    expected = {
        # project name: (what a UTF-8 client saves, the ASCII fallback)
        "Sprung Müller": ("Sprung-Müller-2026-01-31.mp4", "Sprung-Muller-2026-01-31.mp4"),
        "Tandem 2026-01-31 Jörg": ("Tandem-2026-01-31-Jörg.mp4", "Tandem-2026-01-31-Jorg.mp4"),
        "Sprung 31.01.2026": ("Sprung-31.01.2026.mp4", "Sprung-31.01.2026.mp4"),
        "plain": ("plain-2026-01-31.mp4", "plain-2026-01-31.mp4"),
        "跳伞 / tandem": ("跳伞-tandem-2026-01-31.mp4", "tandem-2026-01-31.mp4"),
        'a "quoted" name\\': ("a-quoted-name-2026-01-31.mp4", "a-quoted-name-2026-01-31.mp4"),
    }
    for project_name, (utf8_name, ascii_name) in expected.items():
        job, _ = await completed_job(app, http, live_url, project_name)
        response = await http.get(f"{live_url}/api/jobs/{job}/output", headers={"Range": "bytes=0-0"})
        assert response.status_code == 206
        header = response.headers["content-disposition"]
        assert header.isascii(), header
        assert filename_of(header) == utf8_name, header
        assert f'filename="{ascii_name}"' in header, header
        if utf8_name == ascii_name:
            assert "filename*" not in header


def test_download_name_without_completion_date() -> None:
    assert download_name("Ole", "0123456789abcdef", None) == "Ole-01234567.mp4"
    assert download_name("...", "0123456789abcdef", DAY) == "render-2026-01-31.mp4"


def test_content_disposition_round_trips() -> None:
    for name in ("Ünïcödé 😀.mp4", "x;y=z.mp4", "100% done.mp4", "tab\tname.mp4"):
        header = content_disposition(name)
        assert header.isascii()
        assert filename_of(header) == name
        assert ascii_file_name(name).isascii()


def test_parse_range_edges() -> None:
    assert parse_range("bytes=-500", 100) == (0, 99)
    assert parse_range("bytes=0-0", 1) == (0, 0)
    with pytest.raises(ApiError) as empty:
        parse_range("bytes=-1", 0)
    assert empty.value.status == 416
    assert empty.value.headers["Content-Range"] == "bytes */0"


async def test_asset_file_serves_suffix_range(
    live_url: str, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    sound = make_audio(tmp_path / "music.m4a", seconds=0.5)
    data = sound.read_bytes()
    created = await http.post(
        f"{live_url}/api/assets",
        data={"type": "audio", "name": "bed"},
        files={"file": ("music.m4a", data, "audio/mp4")},
    )
    assert created.status_code == 201, created.text
    url = f"{live_url}/api/assets/{created.json()['uuid']}/file"
    tail = await http.get(url, headers={"Range": "bytes=-100"})
    assert tail.status_code == 206
    assert tail.content == data[-100:]
    assert tail.headers["content-range"] == f"bytes {len(data) - 100}-{len(data) - 1}/{len(data)}"
    refused = await http.get(url, headers={"Range": f"bytes={len(data)}-"})
    assert refused.status_code == 416
    assert refused.headers["content-range"] == f"bytes */{len(data)}"
