"""Partial uploads left by crashed requests are swept; live ones never are (#11 item 2).

A process killed mid-upload leaves ``uploads/<project>/.upload-*`` behind. The app
sweeps at start-up and periodically: it removes partials that no live request of
its own owns (the app's registry) *and* that have not been written for
``PARTIAL_MAX_AGE_S`` (other instances on the same storage write theirs at least
every ``TOUCH_INTERVAL_S``). Files are real, ages are real mtimes set with utime.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import trio

from stinercut_svc.app import create_app
from stinercut_svc.config import Settings
from stinercut_svc.uploads import PARTIAL_MAX_AGE_S, TEMP_PREFIX, sweep_partials
from tests.support.server import running_server
from tests.test_uploads import body_parts, faststart_clip

HOUR = 3600.0


def _aged(path: Path, seconds: float, content: bytes = b"partial") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    then = time.time() - seconds
    os.utime(path, (then, then))
    return path


async def test_startup_sweep_removes_stale_partials_only(settings: Settings) -> None:
    uploads = settings.shared_video_path / "uploads"
    stale = _aged(uploads / "crashed-project" / f"{TEMP_PREFIX}0123456789abcdef.mp4", HOUR)
    stale_font = _aged(
        settings.shared_video_path / "temp" / "fonts" / f"{TEMP_PREFIX}feedfacefeedface.ttf", HOUR
    )
    # Another instance's upload in progress: not ours, but written recently.
    fresh = _aged(uploads / "other-project" / f"{TEMP_PREFIX}aaaaaaaaaaaaaaaa.mp4", 5)
    # Finished files are never touched, however old.
    kept = _aged(uploads / "crashed-project" / "clip.mp4", HOUR)
    app = create_app(settings)
    async with running_server(app):
        with trio.fail_after(10):
            while stale.exists() or stale_font.exists():  # noqa: ASYNC110 (files)
                await trio.sleep(0.05)
        assert fresh.exists() and kept.exists()


async def test_sweep_spares_a_live_slow_upload_which_then_completes(
    settings: Settings, media_dir: Path
) -> None:
    clip = faststart_clip(media_dir).read_bytes()
    head, tail, content_type = body_parts("slow.mp4")
    app = create_app(settings)
    async with running_server(app) as url:
        client = app.test_client()
        project = (await (await client.post("/api/projects", json={"name": "slow"})).get_json())[
            "uuid"
        ]
        folder = app.storage.uploads / project
        host, port = url.removeprefix("http://").split(":")
        async with await trio.open_tcp_stream(host, int(port)) as stream:
            await stream.send_all(
                (
                    f"POST /api/projects/{project}/videos HTTP/1.1\r\nHost: {host}\r\n"
                    f"Content-Type: {content_type}\r\n"
                    f"Content-Length: {len(head) + len(clip) + len(tail)}\r\n\r\n"
                ).encode()
                + head
                + clip[: len(clip) // 2]
            )
            # The upload is in progress: its partial file exists.
            with trio.fail_after(10):
                while not (folder.exists() and list(folder.glob(f"{TEMP_PREFIX}*"))):  # noqa: ASYNC110
                    await trio.sleep(0.05)
            (live,) = list(folder.glob(f"{TEMP_PREFIX}*"))
            assert live in app.partial_uploads, (live, app.partial_uploads.snapshot())
            # Make it look abandoned by age: only the registry protects it now.
            then = time.time() - HOUR
            os.utime(live, (then, then))
            stale = _aged(folder / f"{TEMP_PREFIX}0000000000000000.mp4", HOUR)

            removed = await trio.to_thread.run_sync(
                sweep_partials,
                [app.storage.uploads, app.storage.temp],
                app.partial_uploads.snapshot(),
                PARTIAL_MAX_AGE_S,
                time.time(),
            )
            assert removed == [stale]
            assert live.exists() and not stale.exists()

            # The client finishes its upload: it is stored whole.
            await stream.send_all(clip[len(clip) // 2 :] + tail)
            answer = b""
            with trio.fail_after(30):
                while True:
                    head_part, sep, rest = answer.partition(b"\r\n\r\n")
                    length = [
                        int(line.split(b":", 1)[1])
                        for line in head_part.split(b"\r\n")
                        if line.lower().startswith(b"content-length:")
                    ]
                    if sep and length and len(rest) >= length[0]:
                        break
                    chunk = await stream.receive_some(65536)
                    assert chunk, answer
                    answer += chunk
        assert answer.startswith(b"HTTP/1.1 201"), answer[:300]
        video = json.loads(rest)
        stored = app.storage.root / video["path"]
        assert stored.read_bytes() == clip
        assert not live.exists() and len(app.partial_uploads) == 0
        assert list(folder.glob(f"{TEMP_PREFIX}*")) == []
