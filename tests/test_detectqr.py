"""QR detection: real QR images (segno) overlaid on lavfi clips, real ffmpeg, real zxing-cpp.

Through ``POST /api/detectqr`` (the original's request and answer), and the media
function :func:`stinercut_svc.media.qr.scan` the ingest pipeline reuses.
"""

from __future__ import annotations

import os
import shutil
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import trio

from stinercut_svc.context import StinercutApp
from stinercut_svc.media import qr
from stinercut_svc.media.runner import ToolTimeoutError
from tests.support.media import make_png
from tests.support.processes import media_children
from tests.support.qr import make_qr_clip

CUSTOMER = "7d0e5a3c-1b2f-4c8d-9e6a-0f1b2c3d4e5f"
PAYLOAD = f"Stinercut: {CUSTOMER}"


@pytest.fixture(scope="session")
def qr_clips(media_dir: Path) -> dict[str, Path]:
    folder = media_dir / "qr"
    folder.mkdir(exist_ok=True)
    text = folder / "notes.txt"
    text.write_text("not a video\n" * 100)
    return {
        # Shown for one second in the middle; only the 50 % sample (20 s) lands in it.
        "middle": make_qr_clip(folder / "middle.mp4", PAYLOAD, seconds=40, visible=(19.5, 20.5)),
        "start": make_qr_clip(folder / "start.mp4", PAYLOAD, seconds=3),
        "none": make_qr_clip(folder / "none.mp4", None, seconds=12),
        # 3 px modules, turned 30 degrees, off-centre in a 720p frame.
        "rotated_small": make_qr_clip(
            folder / "rotated_small.mp4",
            "plain text, no uuid",
            seconds=3,
            size="1280x720",
            module_px=3,
            angle_deg=30,
            position=(700, 300),
        ),
        # Wider than 1920 px: frames are scaled down before decoding.
        "wide": make_qr_clip(
            folder / "wide.mp4", PAYLOAD, seconds=2, size="2560x1440", module_px=8
        ),
        # Shorter than 5 s; the code appears only at 2 s.
        "short_late": make_qr_clip(folder / "short_late.mp4", PAYLOAD, seconds=3, visible=(1.9, 3)),
        "short_none": make_qr_clip(folder / "short_none.mp4", None, seconds=3),
        # Stored landscape with a 90 degree display rotation (a phone held upright).
        "portrait": make_qr_clip(folder / "portrait.mp4", PAYLOAD, seconds=2, rotate=90),
        "png": make_png(folder / "still.png"),
        "text": text,
    }


def place(app: StinercutApp, source: Path, relative: str) -> str:
    """Put a generated file into the test's storage root (hard link, else copy)."""
    target = app.storage.root / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)
    return relative


async def detect(client: Any, video_path: str) -> tuple[int, dict[str, Any]]:
    response = await client.post("/api/detectqr", json={"video_path": video_path})
    return response.status_code, await response.get_json()


# --- sample times and payloads ---------------------------------------------------------


def test_detect_times_match_the_original() -> None:
    assert qr.detect_times(40) == [0.0, 1.0, 2.0, 4.0, 5.0, 10.0, 20.0, 30.0]
    # Up to 10 s only the fixed samples, and only those before the end.
    assert qr.detect_times(10) == [0.0, 1.0, 2.0, 5.0]
    assert qr.detect_times(3) == [0.0, 1.0, 2.0]
    assert qr.detect_times(0.5) == [0.0]
    # Duplicates merge (10 % of 20 s is 2 s), ascending, at most eight.
    assert qr.detect_times(20) == [0.0, 1.0, 2.0, 5.0, 10.0, 15.0]
    assert len(qr.detect_times(3600)) == 8


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"Stinercut: {CUSTOMER}", CUSTOMER),
        (f"stinercut:{CUSTOMER.upper()}", CUSTOMER),
        (f"  STINERCUT:   {CUSTOMER}\n", CUSTOMER),
        (f"https://booking.example/jump/{CUSTOMER}?x=1", CUSTOMER),
        (f"Stinercut: ------------------------------------ {CUSTOMER}", CUSTOMER),
        ("Stinercut: not-a-uuid", None),
        ("hello", None),
        ("", None),
    ],
)
def test_parse_payload(text: str, expected: str | None) -> None:
    assert qr.parse_payload(text) == expected


# --- the API -----------------------------------------------------------------------------


async def test_code_shown_one_second_mid_clip_is_found(client, app, qr_clips) -> None:  # type: ignore[no-untyped-def]
    status, body = await detect(client, place(app, qr_clips["middle"], "uploads/jump/middle.mp4"))

    assert status == 200, body
    assert body["success"] is True
    assert body["qr_content"] == PAYLOAD
    assert body["uuid"] == CUSTOMER
    assert body["frame_timestamp"] == 20.0
    # 0, 1, 2, 4 (10 %), 5, 10 (25 %) saw nothing; 20 (50 %) is the seventh frame.
    assert body["attempts"] == 7
    assert body["sampled_at"] == [0.0, 1.0, 2.0, 4.0, 5.0, 10.0, 20.0]
    assert body["message"] is None


async def test_code_at_the_start_is_found_on_the_first_attempt(client, app, qr_clips) -> None:  # type: ignore[no-untyped-def]
    status, body = await detect(client, place(app, qr_clips["start"], "start.mp4"))

    assert status == 200, body
    assert (body["success"], body["frame_timestamp"], body["attempts"]) == (True, 0.0, 1)
    assert body["qr_content"] == PAYLOAD


async def test_clip_without_code_reports_every_attempt(client, app, qr_clips) -> None:  # type: ignore[no-untyped-def]
    status, body = await detect(client, place(app, qr_clips["none"], "none.mp4"))

    assert status == 200, body
    assert body["success"] is False
    assert body["qr_content"] is None and body["frame_timestamp"] is None and body["uuid"] is None
    assert body["attempts"] == 8 == len(body["sampled_at"])
    assert body["sampled_at"][:4] == [0.0, 1.0, 1.2, 2.0]
    assert body["sampled_at"] == sorted(body["sampled_at"])
    assert body["message"] == "No QR code detected after scanning 8 frames"


async def test_small_rotated_code_is_found(client, app, qr_clips) -> None:  # type: ignore[no-untyped-def]
    status, body = await detect(client, place(app, qr_clips["rotated_small"], "rot.mp4"))

    assert status == 200, body
    assert body["success"] is True
    assert body["qr_content"] == "plain text, no uuid"
    assert body["uuid"] is None


async def test_clip_shorter_than_five_seconds_skips_late_samples(client, app, qr_clips) -> None:  # type: ignore[no-untyped-def]
    status, body = await detect(client, place(app, qr_clips["short_late"], "late.mp4"))
    assert status == 200, body
    assert (body["success"], body["frame_timestamp"], body["attempts"]) == (True, 2.0, 3)

    status, body = await detect(client, place(app, qr_clips["short_none"], "short.mp4"))
    assert status == 200, body
    assert body["success"] is False
    assert body["sampled_at"] == [0.0, 1.0, 2.0]
    assert body["message"] == "No QR code detected after scanning 3 frames"


@pytest.mark.parametrize(
    "video_path", ["../outside.mp4", "/etc/passwd", "uploads\\x.mp4", "a/../../b.mp4", "x\x00.mp4"]
)
async def test_unsafe_paths_are_refused(client, video_path: str) -> None:  # type: ignore[no-untyped-def]
    status, body = await detect(client, video_path)

    assert status == 400, body
    assert body["error"]["code"] == "unsafe_path"
    assert body["error"]["details"] == {"field": "video_path"}
    assert body["error"]["message"].startswith("video_path")


async def test_symlink_out_of_the_root_is_refused(client, app, qr_clips) -> None:  # type: ignore[no-untyped-def]
    (app.storage.root / "escape.mp4").symlink_to(qr_clips["start"])

    status, body = await detect(client, "escape.mp4")

    assert status == 400, body
    assert body["error"]["code"] == "unsafe_path"


async def test_missing_file_is_422(client) -> None:  # type: ignore[no-untyped-def]
    status, body = await detect(client, "uploads/nope.mp4")

    assert status == 422, body
    assert body["error"]["code"] == "file_not_found"
    assert body["error"]["details"] == {"field": "video_path"}


@pytest.mark.parametrize("kind", ["text", "png"])
async def test_not_a_video_is_422(client, app, qr_clips, kind: str) -> None:  # type: ignore[no-untyped-def]
    status, body = await detect(client, place(app, qr_clips[kind], f"file.{kind}"))

    assert status == 422, body
    assert body["error"]["code"] == "invalid_media"
    assert "not a video" in body["error"]["message"]


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({}, "video_path"),
        ({"video_path": ""}, "video_path"),
        ({"video_path": 3}, "video_path"),
        ({"video_path": "a.mp4", "extra": 1}, "extra"),
    ],
)
async def test_bad_bodies_name_the_field(client, payload: dict[str, Any], field: str) -> None:  # type: ignore[no-untyped-def]
    response = await client.post("/api/detectqr", json=payload)
    body = await response.get_json()

    assert response.status_code == 422, body
    assert body["error"]["code"] == "validation_error"
    assert [f["field"] for f in body["error"]["details"]["fields"]] == [field]


async def test_invalid_json_is_400(client) -> None:  # type: ignore[no-untyped-def]
    response = await client.post(
        "/api/detectqr", data=b"{nope", headers={"Content-Type": "application/json"}
    )
    body = await response.get_json()

    assert response.status_code == 400
    assert body["error"]["code"] == "invalid_json"


async def test_documented_in_openapi(client) -> None:  # type: ignore[no-untyped-def]
    spec = await (await client.get("/openapi.json")).get_json()
    operation = spec["paths"]["/api/detectqr"]["post"]

    assert "requestBody" in operation
    assert {"200", "400", "422"} <= set(operation["responses"])


# --- the media function ------------------------------------------------------------------


async def test_scan_skips_times_past_the_end(qr_clips) -> None:  # type: ignore[no-untyped-def]
    found = await qr.scan(
        qr_clips["short_none"], [9.0, 0.0, 1.0, 7.0], run_sync=trio.to_thread.run_sync
    )

    assert found.sampled == (0.0, 1.0)
    assert not found.found and found.attempts == 2


async def test_scan_every_half_second_as_ingest_will(qr_clips) -> None:  # type: ignore[no-untyped-def]
    times = [i * 0.5 for i in range(11)]

    found = await qr.scan(qr_clips["short_late"], times, run_sync=trio.to_thread.run_sync)

    assert (found.content, found.timestamp) == (PAYLOAD, 2.0)
    assert found.sampled == (0.0, 0.5, 1.0, 1.5, 2.0)


async def test_wide_frames_are_scaled_to_1920(qr_clips) -> None:  # type: ignore[no-untyped-def]
    seen: list[tuple[int, int]] = []

    async def decode_here(fn: Any, frame: qr.Frame) -> Any:
        seen.append((frame.width, frame.height))
        assert len(frame.pixels) == frame.width * frame.height
        return fn(frame)

    found = await qr.scan(qr_clips["wide"], [0.0], run_sync=decode_here)

    assert seen == [(1920, 1080)]
    assert found.content == PAYLOAD


async def test_default_worker_process_decodes(qr_clips) -> None:  # type: ignore[no-untyped-def]
    # No run_sync: trio-parallel's default worker processes (zxing-cpp holds the GIL).
    found = await qr.scan(qr_clips["start"], [0.0, 1.0])

    assert found.content == PAYLOAD


async def test_ffmpeg_is_gone_once_a_code_is_found(qr_clips) -> None:  # type: ignore[no-untyped-def]
    # A hit before the last sample cancels the rest: ffmpeg is killed and reaped.
    times = [0.0, *map(float, range(1, 40))]
    found = await qr.scan(qr_clips["middle"], times, run_sync=trio.to_thread.run_sync)
    assert found.timestamp == 20.0 and found.attempts == 21
    assert media_children() == []


async def test_cancelling_a_scan_leaves_no_ffmpeg(qr_clips) -> None:  # type: ignore[no-untyped-def]
    started = trio.Event()

    async def stuck_decode(fn: Any, frame: qr.Frame) -> Any:
        started.set()
        await trio.sleep_forever()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(
            partial(qr.scan, qr_clips["none"], [0.0, 1.0, 2.0, 5.0], run_sync=stuck_decode)
        )
        await started.wait()
        nursery.cancel_scope.cancel()
    assert media_children() == []


@pytest.mark.parametrize("content", [b"", os.urandom(4096)])
async def test_scan_of_a_non_media_file_raises(tmp_path: Path, content: bytes) -> None:
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(content)

    with pytest.raises(qr.QrScanError, match="ffmpeg decoded no frame"):
        await qr.scan(junk, [0.0, 1.0])


async def test_scan_without_times_runs_nothing(qr_clips) -> None:  # type: ignore[no-untyped-def]
    found = await qr.scan(qr_clips["start"], [])

    assert (found.found, found.attempts, found.sampled) == (False, 0, ())


async def test_rotated_clip_frames_come_upright(qr_clips) -> None:  # type: ignore[no-untyped-def]
    seen: list[tuple[int, int]] = []

    async def decode_here(fn: Any, frame: qr.Frame) -> Any:
        seen.append((frame.width, frame.height))
        return fn(frame)

    found = await qr.scan(qr_clips["portrait"], [0.0], run_sync=decode_here)

    # 640x360 stored, rotated 90 degrees for display: ffmpeg hands over 360x640.
    assert seen == [(360, 640)]
    assert found.content == PAYLOAD


async def test_scan_past_its_deadline_raises_and_stops_ffmpeg(qr_clips) -> None:  # type: ignore[no-untyped-def]
    async def never_done(fn: Any, frame: qr.Frame) -> Any:
        await trio.sleep_forever()  # a decoder that hangs: only the deadline ends the scan

    with pytest.raises(ToolTimeoutError, match="did not finish within 0.5 s"):
        await qr.scan(qr_clips["none"], [0.0, 1.0, 2.0], run_sync=never_done, timeout=0.5)
    assert media_children() == []
