"""Streaming uploads: back-pressure, size limits, malformed bodies, cleanup, peak memory.

The memory test runs the service in a subprocess (so the client's own buffers do
not count), streams a multi-hundred-MB body over a real socket and reads the
server's peak RSS from ``/proc``, reset just before the upload.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
import trio
from sqlalchemy import select

from stinercut_svc.config import Settings
from stinercut_svc.context import StinercutApp
from stinercut_svc.models import Video
from stinercut_svc.uploads import HIGH_WATER_BYTES, StreamingBody, sanitise_filename
from tests.support.child_server import serve_in_child
from tests.support.media import ffmpeg, make_clip
from tests.support.processes import memory_kib, reset_peak

BOUNDARY = "stinercut-test-boundary"
MIB = 1024 * 1024


def multipart(
    *, file: tuple[str, bytes] | None = None, field_name: str = "file", **fields: str
) -> tuple[bytes, str]:
    """A multipart/form-data body and its Content-Type, built by hand (no client magic)."""
    parts = []
    for name, value in fields.items():
        parts.append(
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
            + value.encode()
            + b"\r\n"
        )
    if file is not None:
        filename, data = file
        parts.append(
            (
                f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{field_name}\"; "
                f"filename=\"{filename}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
            ).encode()
            + data
            + b"\r\n"
        )
    body = b"".join(parts) + f"--{BOUNDARY}--\r\n".encode()
    return body, f"multipart/form-data; boundary={BOUNDARY}"


def faststart_clip(media_dir: Path) -> Path:
    """A clip with its index first, so trailing padding does not disturb ffprobe."""
    path = media_dir / "faststart.mp4"
    if not path.exists():
        plain = make_clip(media_dir / "faststart-src.mp4", seconds=1.0)
        ffmpeg("-i", str(plain), "-c", "copy", "-movflags", "+faststart", str(path))
    return path


def leftovers(root: Path) -> list[str]:
    return sorted(p.name for p in root.rglob(".upload-*")) + sorted(
        p.name for p in root.rglob(".*.part.jpg")
    )


# --- pieces -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("GX010001.MP4", "GX010001.MP4"),
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\cam\\clip 1.mp4", "clip_1.mp4"),
        ("..", "upload"),
        (".hidden.mp4", "hidden.mp4"),
        ("", "upload"),
        ("Sprung Müller (2).mov", "Sprung_Müller_2.mov"),
        ("a\x00b\nc.mp4", "a_b_c.mp4"),
        ("x" * 400 + ".mp4", "x" * 176 + ".mp4"),
    ],
)
def test_sanitise_filename(raw: str, expected: str) -> None:
    assert sanitise_filename(raw) == expected


async def test_streaming_body_applies_back_pressure() -> None:
    body = StreamingBody(None, 100 * MIB, "upload")
    chunk = b"x" * (256 * 1024)
    sent = 0

    async def producer() -> None:
        nonlocal sent
        for _ in range(40):
            await body.put(chunk)
            sent += 1
        body.set_complete()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(producer)
        await trio.testing.wait_all_tasks_blocked()
        # Nobody reads: the producer stops once the buffer reaches the high-water mark.
        assert sent * len(chunk) <= HIGH_WATER_BYTES + len(chunk)
        received = 0
        async for data in body:
            received += len(data)
            assert len(data) <= HIGH_WATER_BYTES + len(chunk)
    assert received == 40 * len(chunk)


async def test_streaming_body_whole_and_limit() -> None:
    body = StreamingBody(None, 10, "request body")
    body.append(b"12345")
    body.append(b"678901")
    with pytest.raises(Exception) as caught:
        await body
    assert getattr(caught.value, "status", None) == 413

    # A handler that awaits the whole body (JSON) lifts the back-pressure.
    body = StreamingBody(None, 10 * HIGH_WATER_BYTES, "request body")
    result = []

    async def whole() -> None:
        result.append(await body)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(whole)
        await trio.testing.wait_all_tasks_blocked()
        await body.put(b"x" * (3 * HIGH_WATER_BYTES))
        await body.put(b"y")
        body.set_complete()
    assert result == [b"x" * (3 * HIGH_WATER_BYTES) + b"y"]

    assert getattr(StreamingBody(101, 100, "upload")._must_raise, "status", None) == 413


# --- through the app ---------------------------------------------------------------


async def _project(client) -> str:  # type: ignore[no-untyped-def]
    response = await client.post("/api/projects", json={"name": "uploads"})
    return (await response.get_json())["uuid"]


async def test_malformed_uploads_are_refused_and_leave_nothing(
    client, app: StinercutApp, media_dir: Path
) -> None:  # type: ignore[no-untyped-def]
    project = await _project(client)
    url = f"/api/projects/{project}/videos"
    clip = faststart_clip(media_dir).read_bytes()
    good, ctype = multipart(file=("a.mp4", clip))
    text_file_part = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"\r\n\r\nabc\r\n'
        f"--{BOUNDARY}--\r\n"
    ).encode()
    cases: list[tuple[bytes, str, int, str, str]] = [
        (good[: len(good) // 2], ctype, 400, "malformed_multipart", "ended before"),
        (good, "multipart/form-data", 400, "malformed_multipart", "boundary"),
        (good, "multipart/form-data; boundary=", 400, "malformed_multipart", "boundary"),
        (b"garbage without boundaries", ctype, 400, "malformed_multipart", "ended before"),
        (multipart()[0], ctype, 400, "no_file", "'file' is missing"),
        (multipart(title="x")[0], ctype, 422, "unprocessable", "'title'"),
        (multipart(file=("a.mp4", clip), extra="1")[0], ctype, 422, "unprocessable", "'extra'"),
        (multipart(file=("a.mp4", clip), field_name="video")[0], ctype, 400, "no_file", "'video'"),
        (text_file_part, ctype, 400, "no_file", "file part"),
        (multipart(file=("a.mp4", b""))[0], ctype, 400, "empty_file", "empty"),
        (
            good.replace(b"--" + BOUNDARY.encode() + b"--", good.split(b"\r\n")[0] + b"\r\nX"),
            ctype,
            400,
            "malformed_multipart",
            "",
        ),
        (good, "text/plain", 415, "unsupported_media_type", "multipart"),
        (
            b"--" + BOUNDARY.encode() + b"\r\n" + b"X-Long: " + b"a" * 40_000,
            ctype,
            400,
            "malformed_multipart",
            "headers too long",
        ),
        # Junk after the closing boundary is not buffered without end.
        (good + b"e" * 40_000, ctype, 400, "malformed_multipart", "epilogue too long"),
    ]
    for body, content_type, status, code, words in cases:
        response = await client.post(url, data=body, headers={"Content-Type": content_type})
        error = (await response.get_json())["error"]
        assert (response.status_code, error["code"]) == (status, code), (
            content_type,
            body[:60],
            error,
        )
        assert words in error["message"], error
    assert leftovers(app.storage.root) == []
    assert await app.db.run(lambda s: s.scalars(select(Video)).all()) == []


async def test_two_file_parts_refused(client, app: StinercutApp, media_dir: Path) -> None:  # type: ignore[no-untyped-def]
    project = await _project(client)
    clip = faststart_clip(media_dir).read_bytes()
    one, ctype = multipart(file=("a.mp4", clip))
    two = one.replace(f"--{BOUNDARY}--".encode(), b"") + one
    response = await client.post(
        f"/api/projects/{project}/videos", data=two, headers={"Content-Type": ctype}
    )
    error = (await response.get_json())["error"]
    assert (response.status_code, error["code"]) == (400, "too_many_files")
    assert "only one file" in error["message"]
    assert leftovers(app.storage.root) == []


async def test_filename_clash_gets_suffix(client, app: StinercutApp, media_dir: Path) -> None:  # type: ignore[no-untyped-def]
    project = await _project(client)
    body, ctype = multipart(file=("../clip.mp4", faststart_clip(media_dir).read_bytes()))
    paths = []
    for _ in range(3):
        response = await client.post(
            f"/api/projects/{project}/videos", data=body, headers={"Content-Type": ctype}
        )
        assert response.status_code == 201
        paths.append((await response.get_json())["path"])
    assert paths == [
        f"uploads/{project}/clip.mp4",
        f"uploads/{project}/clip-1.mp4",
        f"uploads/{project}/clip-2.mp4",
    ]


async def test_upload_for_missing_project_is_404(client) -> None:  # type: ignore[no-untyped-def]
    body, ctype = multipart(file=("a.mp4", b"x"))
    response = await client.post(
        "/api/projects/0d7e2f2c-1111-4222-8333-444455556666/videos",
        data=body,
        headers={"Content-Type": ctype},
    )
    assert response.status_code == 404


# --- a real server in a subprocess ---------------------------------------------------

@asynccontextmanager
async def server_process(settings: Settings, **env: str) -> AsyncIterator[tuple[str, int]]:
    """Run the service in a child process; yield its base URL and pid."""
    async with serve_in_child(
        DATABASE_URL=settings.database_url,
        SHARED_VIDEO_PATH=str(settings.shared_video_path),
        **env,
    ) as (url, pid):
        yield url, pid


async def generated_body(head: bytes, clip: bytes, padding: int, tail: bytes) -> AsyncIterator[bytes]:
    yield head
    yield clip
    zeros = bytes(MIB)
    left = padding
    while left > 0:
        piece = zeros if left >= MIB else zeros[:left]
        left -= len(piece)
        yield piece
    yield tail


def body_parts(filename: str) -> tuple[bytes, bytes, str]:
    head = (
        f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; "
        f"filename=\"{filename}\"\r\nContent-Type: video/mp4\r\n\r\n"
    ).encode()
    tail = f"\r\n--{BOUNDARY}--\r\n".encode()
    return head, tail, f"multipart/form-data; boundary={BOUNDARY}"


async def test_big_upload_streams_with_bounded_memory(settings: Settings, media_dir: Path) -> None:
    clip = faststart_clip(media_dir).read_bytes()
    padding = 400 * MIB
    head, tail, ctype = body_parts("big.mp4")
    async with server_process(settings) as (url, pid), httpx.AsyncClient(timeout=120) as http:
        project = (await http.post(f"{url}/api/projects", json={"name": "big"})).json()["uuid"]
        # Warm up every code path once (ffprobe, thumbnail, database) before measuring.
        small, small_type = multipart(file=("warm.mp4", clip))
        warm = await http.post(
            f"{url}/api/projects/{project}/videos", content=small, headers={"Content-Type": small_type}
        )
        assert warm.status_code == 201, warm.text
        reset_peak(pid)
        before = memory_kib(pid)
        length = len(head) + len(clip) + padding + len(tail)
        response = await http.post(
            f"{url}/api/projects/{project}/videos",
            content=generated_body(head, clip, padding, tail),
            headers={"Content-Type": ctype, "Content-Length": str(length)},
        )
        after = memory_kib(pid)
        assert response.status_code == 201, response.text
        video = response.json()
        stored = settings.shared_video_path / video["path"]
        assert stored.stat().st_size == len(clip) + padding
        growth_mib = (after["VmHWM"] - before["VmRSS"]) / 1024
        print(f"peak RSS growth during a {length / MIB:.0f} MiB upload: {growth_mib:.1f} MiB")
        assert growth_mib < 50


async def test_cut_off_and_oversized_uploads_leave_nothing(
    settings: Settings, media_dir: Path
) -> None:
    clip = faststart_clip(media_dir).read_bytes()
    head, tail, ctype = body_parts("cut.mp4")
    root = settings.shared_video_path

    class ClientGaveUp(Exception):
        pass

    async def cut_off() -> AsyncIterator[bytes]:
        yield head
        yield clip
        for _ in range(20):
            yield bytes(MIB)
        raise ClientGaveUp

    async with server_process(settings, MAX_UPLOAD_BYTES=str(64 * MIB)) as (url, _pid):
        async with httpx.AsyncClient(timeout=60) as http:
            project = (await http.post(f"{url}/api/projects", json={"name": "cut"})).json()["uuid"]
            videos = f"{url}/api/projects/{project}/videos"
            with pytest.raises(ClientGaveUp):
                await http.post(videos, content=cut_off(), headers={"Content-Type": ctype})

            # Chunked (no Content-Length) and past the limit: counted, refused, removed.
            try:
                response = await http.post(
                    videos,
                    content=generated_body(head, clip, 100 * MIB, tail),
                    headers={"Content-Type": ctype},
                )
                assert response.status_code == 413
            except httpx.TransportError:
                pass  # the server may close before the client has finished sending

            # A declared length past the limit is answered before the body is read.
            host, port = url.removeprefix("http://").split(":")
            stream = await trio.open_tcp_stream(host, int(port))
            async with stream:
                await stream.send_all(
                    (
                        f"POST /api/projects/{project}/videos HTTP/1.1\r\nHost: {host}\r\n"
                        f"Content-Type: {ctype}\r\nContent-Length: {65 * MIB}\r\n\r\n"
                    ).encode()
                    + head
                )
                answer = b""
                with trio.fail_after(10):
                    while b"}}" not in answer:
                        chunk = await stream.receive_some(65536)
                        assert chunk, answer
                        answer += chunk
            assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
            assert b"limit" in answer

            with trio.fail_after(20):
                while leftovers(root):
                    await trio.sleep(0.1)
            detail = (await http.get(f"{url}/api/projects/{project}")).json()
            assert detail["videos"] == []
    assert list((root / "uploads" / project).iterdir()) == []
