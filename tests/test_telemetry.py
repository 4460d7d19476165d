"""GoPro telemetry as the second freefall signal: reader, detector, fusion, pipeline.

Files are real: ffmpeg makes the clips (tiny video, quiet audio with or without the
wind band), ``tests/support/gpmf.py`` writes GPMF payloads from a jump's altitude
profile into a ``gpmd`` track, ffprobe/ffmpeg prove that track well-formed, and the
service reads it back. The profile is physical (a body accelerates at ~g to ~50 m/s,
a canopy opens in ~1 s), with reproducible GPS noise.
"""

from __future__ import annotations

import json
import random
import shutil
import subprocess
from pathlib import Path
from typing import Any

import attrs
import httpx
import numpy as np
import pytest
import trio
from sqlalchemy import select
from sqlalchemy.orm import Session

from stinercut_svc.app import create_app
from stinercut_svc.config import Settings
from stinercut_svc.ingest.freefall import (
    FreefallConfig,
    FreefallSource,
    Phase,
    analyse_recording,
    decode_levels,
    fuse,
)
from stinercut_svc.ingest.resolve import JumpState, QrSighting
from stinercut_svc.ingest.service import analyse_folder, analyse_signals, qr_reader_from
from stinercut_svc.ingest.telemetry import (
    AltitudeTrack,
    TelemetryError,
    analyse_altitude,
    detect_from_altitude,
    iter_klv,
    load_altitude_track,
    parse_gps,
    read_altitude_track,
)
from stinercut_svc.models import Project
from stinercut_svc.models.ingest import VideoFile, VideoFileSegment
from tests.support.cards import gopro_folder, make_jump_clip, make_plain_clip, write_bytes_file
from tests.support.gpmf import (
    GpsSample,
    Jump,
    add_telemetry,
    gps_payload,
    inject_gpmd,
    jump_profile,
    klv,
    make_chaptered_telemetry_jump,
    top_level_boxes,
)
from tests.support.media import ffmpeg, make_clip
from tests.support.processes import media_children
from tests.support.qr import make_gopro_qr_shot
from tests.support.server import running_server

TOLERANCE_S = 0.5
A = "11111111-1111-1111-1111-111111111111"

# One jump, 150 s: in the plane (climb, then a level jump run), exit at 30 s from
# 2400 m, 40 s of freefall, canopy to the ground (400 m) at ~5 m/s, on the ground.
PROFILE = jump_profile(seconds=150, exit_at=30.0, exit_altitude=2400.0, ground=400.0)


def wind_clip(path: Path, *, seconds: float, bursts: list[tuple[float, float]]) -> Path:
    """Quiet audio with wind-band noise at each ``(start, length)`` (like cards.py's)."""
    inputs = ["-f", "lavfi", "-i", f"color=c=gray:size=64x36:rate=5:duration={seconds}"]
    inputs += ["-f", "lavfi", "-i", f"anoisesrc=d={seconds}:c=pink:a=0.01:r=48000"]
    parts, labels = [], ["[1:a]"]
    for i, (start, length) in enumerate(bursts, start=2):
        inputs += ["-f", "lavfi", "-i", f"anoisesrc=d={length}:c=white:a=0.5:r=48000"]
        parts.append(
            f"[{i}:a]highpass=f=800,highpass=f=800,lowpass=f=1500,lowpass=f=1500,volume=4,"
            f"adelay={int(start * 1000)}:all=1,apad=whole_dur={seconds}[w{i}]"
        )
        labels.append(f"[w{i}]")
    parts.append("".join(labels) + f"amix=inputs={len(labels)}:duration=first:normalize=0[a]")
    ffmpeg(
        *inputs, "-filter_complex", ";".join(parts), "-map", "0:v", "-map", "[a]",
        "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
        "-c:a", "aac", "-b:a", "64k", "-t", str(seconds), str(path),
    )  # fmt: skip
    return path


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    d = tmp_path_factory.mktemp("telemetry")
    made: dict[str, Any] = {}
    # (a) wind where the altitude falls: both signals agree.
    agree = make_jump_clip(d / "agree.mp4", seconds=150, freefall=(30.0, 40.0))[0]
    made["agree_before"] = agree.read_bytes()
    made["agree_payloads"] = add_telemetry(agree, PROFILE, seconds=150)
    made["agree"] = agree
    # (b) a muted/cased camera: quiet audio, the altitude alone shows the freefall.
    silent = make_jump_clip(d / "silent.mp4", seconds=150)[0]
    add_telemetry(silent, PROFILE, seconds=150, stream="GPS9", seed=2)
    made["silent"] = silent
    # (c) wind, and a GPS that never got a fix.
    nofix = make_jump_clip(d / "nofix.mp4", seconds=150, freefall=(30.0, 40.0))[0]
    add_telemetry(nofix, PROFILE, seconds=150, fix=lambda t: 0)
    made["nofix"] = nofix
    # (d) the door opens 20 s before the exit: wind in level flight, then freefall.
    door_jump = jump_profile(seconds=150, exit_at=60.0, exit_altitude=2600.0, jump_run_s=45.0)
    door = wind_clip(d / "door.mp4", seconds=150, bursts=[(20.0, 25.0), (60.0, 40.0)])
    add_telemetry(door, door_jump, seconds=150, seed=3)
    made["door"], made["door_jump"] = door, door_jump
    # A freefall across two chapters (GoPro splits at ~4 GB), telemetry in each.
    made["chapters"] = list(make_chaptered_telemetry_jump(
        d / "GX010007.MP4", d / "GX020007.MP4", PROFILE, split_s=50.0, seconds=150,
        seeds=(4, 5), freefall=(30.0, 40.0),
    ))  # fmt: skip
    made["plain"] = make_plain_clip(d / "plain.mp4", seconds=3)
    return made


# --- the file: real tools agree it is well-formed ------------------------------------


def test_injected_track_is_what_ffprobe_and_ffmpeg_see(
    clips: dict[str, Any], tmp_path: Path
) -> None:
    path: Path = clips["agree"]
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-show_streams", "-of", "json", str(path)],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    streams = json.loads(probe.stdout)["streams"]
    assert [s["codec_type"] for s in streams] == ["video", "audio", "data"]
    data = streams[2]
    assert data["codec_tag_string"] == "gpmd"
    assert data["tags"]["handler_name"] == "GoPro MET"
    assert int(data["nb_frames"]) == 150
    out = tmp_path / "gpmd.bin"
    ffmpeg("-i", str(path), "-map", "0:d:0", "-c", "copy", "-f", "data", str(out))
    assert out.read_bytes() == b"".join(clips["agree_payloads"])
    # Video and audio still decode, every frame and sample of them.
    decode = subprocess.run(
        ["ffmpeg", "-v", "error", "-nostdin", "-i", str(path), "-map", "0:v", "-map", "0:a",
         "-f", "null", "-"],
        capture_output=True, text=True,
    )  # fmt: skip
    assert decode.returncode == 0 and decode.stderr == ""
    # The boxes before the old moov are byte-identical.
    before: bytes = clips["agree_before"]
    moov_start = top_level_boxes(before)[-1][1]
    assert path.read_bytes()[:moov_start] == before[:moov_start]


# --- GPMF parsing --------------------------------------------------------------------


def test_gps5_and_gps9_round_trip_with_scal_and_fix() -> None:
    samples = [GpsSample(altitude=1234.567 - i, fix=3, dop=1.25) for i in range(18)]
    for stream in ("GPS5", "GPS9"):
        (rows,) = parse_gps(gps_payload(samples, stream=stream))
        assert rows.stream == stream
        assert rows.altitudes == pytest.approx([s.altitude for s in samples], abs=1e-3)
        assert rows.dop == pytest.approx([1.25] * 18)
        assert rows.fix.tolist() == [3] * 18
    # SCAL is applied: the raw GPS5 altitude is in millimetres.
    payload = gps_payload(samples[:1])
    raw = next(i for i in _all_items(payload) if i.key == b"GPS5")
    assert int.from_bytes(payload[raw.start + 8 : raw.start + 12], "big", signed=True) == 1234567
    # One SCAL for every element is applied to each.
    single = klv(b"STRM", 0, 4, 0, b"")  # an empty stream is fine
    body = klv(b"SCAL", "l", 4, 1, (10).to_bytes(4, "big")) + klv(
        b"GPS5", "l", 20, 1, b"".join(v.to_bytes(4, "big", signed=True) for v in (1, 2, 35, 4, 5))
    )
    strm = klv(b"STRM", 0, 4, len(body) // 4, body)
    (rows,) = parse_gps(single + klv(b"DEVC", 0, 4, len(strm) // 4, strm))
    assert rows.altitudes.tolist() == [3.5]
    assert rows.fix.tolist() == [0]  # no GPSF: no fix known, so the reader drops it


def test_gps9_wins_over_gps5_in_the_same_payload(tmp_path: Path) -> None:
    clip = make_plain_clip(tmp_path / "both.mp4", seconds=4)
    gps5 = [GpsSample(altitude=1000.0, fix=3)] * 10
    gps9 = [GpsSample(altitude=2000.0, fix=3)] * 18
    inject_gpmd(clip, [gps_payload(gps5) + gps_payload(gps9, stream="GPS9")] * 4)
    track = read_altitude_track([clip])
    assert track is not None and track.streams == ("GPS9",)
    assert track.size == 4 * 18 and set(track.altitudes.tolist()) == {2000.0}


def _all_items(payload: bytes) -> list[Any]:
    out, stack = [], [(0, len(payload))]
    while stack:
        a, b = stack.pop()
        for item in iter_klv(payload, a, b):
            out.append(item)
            if item.type == 0:
                stack.append((item.start, item.end))
    return out


def test_samples_without_a_fix_are_dropped(tmp_path: Path) -> None:
    for stream in ("GPS5", "GPS9"):
        clip = make_plain_clip(tmp_path / f"{stream}.mp4", seconds=10)
        add_telemetry(clip, PROFILE, seconds=10, stream=stream, fix=lambda t: 0 if t < 4.5 else 3)
        track = read_altitude_track([clip])
        assert track is not None and track.streams == (stream,)
        # GPS5 has one fix per payload (the payload's first row), GPS9 one per row.
        first = 5.0 if stream == "GPS5" else 4.5
        assert track.times[0] == pytest.approx(first, abs=1 / 18)
        assert track.size == round((10 - first) * 18)
        # Rows spread evenly inside each one-second payload.
        assert np.diff(track.times) == pytest.approx(np.full(track.size - 1, 1 / 18))
        assert track.altitudes == pytest.approx(PROFILE.altitude(track.times), abs=5.0)


def test_garbage_and_truncation_are_clear_errors_never_crashes(tmp_path: Path) -> None:
    payload = gps_payload([GpsSample(altitude=100.0)] * 18)
    with pytest.raises(TelemetryError, match="FourCC"):
        parse_gps(b"\xff" * 64)
    with pytest.raises(TelemetryError, match="overruns"):
        parse_gps(payload[:-40])
    # Random damage: a result or a TelemetryError, nothing else, and it ends.
    rng = random.Random(7)
    outcomes = {"ok": 0, "error": 0}
    for _ in range(500):
        broken = bytearray(payload)
        for _ in range(rng.randint(1, 6)):
            broken[rng.randrange(len(broken))] = rng.randrange(256)
        try:
            parse_gps(bytes(broken[: rng.randint(0, len(broken))]))
            outcomes["ok"] += 1
        except TelemetryError:
            outcomes["error"] += 1
    assert outcomes["ok"] and outcomes["error"]


def test_damaged_files_error_or_read_as_no_telemetry(tmp_path: Path, clips: dict[str, Any]) -> None:
    # No gpmd track (a phone, an ffmpeg file), random bytes, an empty file: None.
    assert read_altitude_track([clips["plain"]]) is None
    assert read_altitude_track([write_bytes_file(tmp_path / "junk.mp4", 50_000)]) is None
    (tmp_path / "empty.mp4").write_bytes(b"")
    assert read_altitude_track([tmp_path / "empty.mp4"]) is None
    # The gpmd payloads overwritten with garbage: a clear error naming the file.
    good: Path = clips["agree"]
    data = bytearray(good.read_bytes())
    kind, start, end = top_level_boxes(bytes(data))[-2]
    assert kind == b"mdat"  # the injected one, before the new moov
    data[start + 8 : end] = bytes(random.Random(1).randbytes(end - start - 8))
    garbled = tmp_path / "garbled.mp4"
    garbled.write_bytes(bytes(data))
    with pytest.raises(TelemetryError, match="garbled.mp4"):
        read_altitude_track([garbled])
    # Cut short (a card pulled mid-copy): the moov is gone, so no telemetry.
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(good.read_bytes()[: len(data) // 2])
    assert read_altitude_track([cut]) is None
    # Sample table pointing past the end of the file.
    moov_kind, moov_start, _ = top_level_boxes(bytes(data))[-1]
    shrunk = tmp_path / "shrunk.mp4"
    original = good.read_bytes()
    shrunk.write_bytes(original[:start] + original[moov_start:])
    with pytest.raises(TelemetryError, match="past the file|not a FourCC|overruns"):
        read_altitude_track([shrunk])


# --- detection from altitude (pure) --------------------------------------------------


@pytest.mark.parametrize("physical", [True, False], ids=["physical", "steps"])
@pytest.mark.parametrize("noise_m", [0.0, 1.5])
def test_freefall_from_altitude_within_half_a_second(physical: bool, noise_m: float) -> None:
    # The whole jump: 8 m/s climb to 4000 m, exit, 40 s at up to 50 m/s, canopy 5 m/s.
    jump = jump_profile(
        seconds=900, exit_at=480.0, exit_altitude=4000.0, ground=300.0, physical=physical
    )
    t = np.arange(0, 900, 1 / 18)
    alt = jump.altitude(t) + np.random.default_rng(11).standard_normal(t.size) * noise_m
    (ff,) = detect_from_altitude(t, alt)
    assert ff.start == pytest.approx(jump.exit, abs=TOLERANCE_S)
    assert ff.end == pytest.approx(jump.deploy, abs=TOLERANCE_S)
    assert ff.source is FreefallSource.TELEMETRY and ff.confidence == 1.0


def test_plane_and_canopy_alone_are_no_freefall() -> None:
    t = np.arange(0, 600, 1 / 18)
    climb = 400.0 + 8.0 * t  # the plane
    assert detect_from_altitude(t, climb) == ()
    canopy = 1500.0 - 6.0 * t  # a canopy ride, steep
    assert detect_from_altitude(t, canopy) == ()
    short = np.where(t < 100, 3000.0, 3000.0 - 50.0 * np.clip(t - 100, 0, 8))  # 8 s only
    assert detect_from_altitude(t, short) == ()


def test_poor_gps_lowers_confidence() -> None:
    t = np.arange(0, 150, 1 / 18)
    alt = PROFILE.altitude(t)
    good = detect_from_altitude(t, alt, dop=np.full(t.size, 1.5), fix=np.full(t.size, 3))
    poor = detect_from_altitude(t, alt, dop=np.full(t.size, 15.0), fix=np.full(t.size, 2))
    assert good[0].confidence == 1.0
    assert 0.0 < poor[0].confidence < 0.2


# --- recordings: one timeline, fusion with the sound ----------------------------------


async def test_freefall_across_two_chapters_is_one(clips: dict[str, Any]) -> None:
    track = await load_altitude_track(clips["chapters"])
    assert track is not None and track.duration == pytest.approx(150.0, abs=0.1)
    (ff,) = analyse_altitude(track).freefalls
    assert ff.start == pytest.approx(PROFILE.exit, abs=TOLERANCE_S)
    assert ff.end == pytest.approx(PROFILE.deploy, abs=TOLERANCE_S)
    result = await analyse_signals(clips["chapters"])
    (fused,) = result.freefalls
    assert fused.source is FreefallSource.BOTH
    assert (fused.start, fused.end) == (ff.start, ff.end)


async def test_a_both_signals_agree(clips: dict[str, Any]) -> None:
    heard = await analyse_recording([clips["agree"]])
    result = await analyse_signals([clips["agree"]])
    (ff,) = result.freefalls
    assert ff.source is FreefallSource.BOTH
    assert ff.start == pytest.approx(PROFILE.exit, abs=TOLERANCE_S)
    assert ff.end == pytest.approx(PROFILE.deploy, abs=TOLERANCE_S)
    assert ff.confidence >= heard.freefalls[0].confidence
    assert [p.phase for p in result.phases] == [
        Phase.FLIGHT, Phase.FREEFALL, Phase.CANOPY, Phase.GROUND_AFTER,
    ]  # fmt: skip
    assert PROFILE.landing is not None
    assert result.landing == pytest.approx(PROFILE.landing, abs=1.5)
    bounds = [(p.start, p.end) for p in result.phases]
    assert bounds[0][0] == 0.0 and bounds[-1][1] == pytest.approx(150.0, abs=0.1)
    assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:], strict=False))


async def test_b_silent_audio_freefall_from_telemetry(clips: dict[str, Any]) -> None:
    assert (await analyse_recording([clips["silent"]])).freefalls == ()  # sound alone: none
    result = await analyse_signals([clips["silent"]])
    (ff,) = result.freefalls
    assert ff.source is FreefallSource.TELEMETRY
    assert ff.start == pytest.approx(PROFILE.exit, abs=TOLERANCE_S)
    assert ff.end == pytest.approx(PROFILE.deploy, abs=TOLERANCE_S)
    phases = [p.phase for p in result.phases]
    assert phases == [Phase.FLIGHT, Phase.FREEFALL, Phase.CANOPY, Phase.GROUND_AFTER]
    assert result.landing == pytest.approx(PROFILE.landing, abs=1.5)


async def test_c_no_gps_fix_keeps_the_sound_result_as_it_was(clips: dict[str, Any]) -> None:
    track = await load_altitude_track([clips["nofix"]])
    assert track is not None and track.size == 0  # a track, but not one usable sample
    heard = await analyse_recording([clips["nofix"]])
    fused = await analyse_signals([clips["nofix"]])
    assert fused == heard
    assert [f.source for f in fused.freefalls] == [FreefallSource.AUDIO]


async def test_d_two_loud_stretches_but_one_fall(clips: dict[str, Any]) -> None:
    jump: Jump = clips["door_jump"]
    heard = await analyse_recording([clips["door"]])
    assert len(heard.freefalls) == 2  # the open door roars like a freefall
    result = await analyse_signals([clips["door"]])
    (ff,) = result.freefalls
    assert ff.source is FreefallSource.BOTH
    assert ff.start == pytest.approx(jump.exit, abs=TOLERANCE_S)
    assert ff.end == pytest.approx(jump.deploy, abs=TOLERANCE_S)
    # In the plane from the start (altitude), under canopy at the end (no landing yet).
    phases = [p.phase for p in result.phases]
    assert phases == [Phase.FLIGHT, Phase.FREEFALL, Phase.CANOPY]
    assert result.landing is None


async def test_sound_where_the_gps_has_no_fix_still_counts(clips: dict[str, Any]) -> None:
    # The door roar happens while the GPS has no fix: telemetry cannot rule on it.
    jump: Jump = clips["door_jump"]
    levels, duration = await decode_levels([clips["door"]])
    t = np.arange(0, 150, 1 / 18)
    keep = t >= 50.0
    tele = analyse_altitude(_track(t[keep], jump.altitude(t[keep]), duration))
    result = fuse(levels, duration, tele, FreefallConfig())
    assert [f.source for f in result.freefalls] == [FreefallSource.AUDIO, FreefallSource.BOTH]


def _track(t: np.ndarray, alt: np.ndarray, duration: float) -> AltitudeTrack:
    return AltitudeTrack(
        times=t, altitudes=alt, dop=np.full(t.size, 1.5), fix=np.full(t.size, 3),
        duration=duration, streams=("GPS5",),
    )  # fmt: skip


async def test_unreadable_telemetry_falls_back_to_the_sound(
    clips: dict[str, Any], tmp_path: Path
) -> None:
    data = bytearray(clips["agree"].read_bytes())
    kind, start, end = top_level_boxes(bytes(data))[-2]
    data[start + 8 : end] = b"\xee" * (end - start - 8)
    garbled = tmp_path / "garbled.mp4"
    garbled.write_bytes(bytes(data))
    result = await analyse_signals([garbled])
    assert result == await analyse_recording([garbled])
    assert [f.source for f in result.freefalls] == [FreefallSource.AUDIO]


# --- the pipeline ----------------------------------------------------------------------


class Events:
    def __init__(self) -> None:
        self.items: list[tuple[str, dict[str, Any]]] = []

    async def __call__(self, command: str, data: dict[str, Any]) -> None:
        self.items.append((command, data))


@pytest.fixture(scope="module")
def telemetry_card(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A GoPro card: a QR clip, then a muted two-chapter jump with a gpmd track."""
    root = tmp_path_factory.mktemp("tcard")
    g = gopro_folder(root)
    make_plain_clip(g / "GH010001.MP4", seconds=3, creation_time="2026-12-01T10:00:00Z")
    make_chaptered_telemetry_jump(
        g / "GX010002.MP4", g / "GX020002.MP4", PROFILE, split_s=50.0, seconds=150,
        seeds=(8, 9), creation_time="2026-12-01T10:05:00Z",
    )  # fmt: skip
    return root


async def test_analyse_folder_uses_telemetry(telemetry_card: Path, tmp_path: Path) -> None:
    folder = tmp_path / "input" / "b1"
    shutil.copytree(telemetry_card / "DCIM", folder)
    events = Events()
    qr = {"100GOPRO/GH:0001": QrSighting(code=A, customer=A, last_seen=2.5)}
    result = await analyse_folder(
        folder, batch_uuid="b1", publish=events, read_qr=qr_reader_from(qr)
    )
    (jump,) = result.jumps
    assert jump.state is JumpState.RESOLVED and jump.customer == A
    assert jump.freefall is not None and jump.freefall.key == "100GOPRO/GX:0002"
    assert jump.freefall.start == pytest.approx(PROFILE.exit, abs=TOLERANCE_S)
    assert jump.freefall.end == pytest.approx(PROFILE.deploy, abs=TOLERANCE_S)
    analysed = [d for c, d in events.items if c == "videofile:file_analyzed"]
    assert [d["freefall_sources"] for d in analysed] == [[], ["telemetry"], ["telemetry"]]


async def test_no_sound_at_all_but_telemetry(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "noaudio.mp4", seconds=150, size="64x36", rate="5", audio=False)
    add_telemetry(clip, PROFILE, seconds=150, seed=12)
    result = await analyse_signals([clip])
    (ff,) = result.freefalls
    assert ff.source is FreefallSource.TELEMETRY
    assert ff.start == pytest.approx(PROFILE.exit, abs=TOLERANCE_S)
    assert result.duration == pytest.approx(150.0, abs=0.1)
    assert [p.phase for p in result.phases] == [
        Phase.FLIGHT, Phase.FREEFALL, Phase.CANOPY, Phase.GROUND_AFTER,
    ]  # fmt: skip


# --- through the service: API, supervisor, database ------------------------------------

CUSTOMER = "5a1d7c3e-0b6f-4e8a-9d21-3f4c5b6a7d81"


async def test_import_of_a_muted_gopro_jump_resolves_from_telemetry(
    settings: Settings, telemetry_card: Path, tmp_path: Path
) -> None:

    roots = tmp_path / "media"
    card = roots / "card"
    shutil.copytree(telemetry_card, card)
    g = card / "DCIM" / "100GOPRO"
    (g / "GH010001.MP4").unlink()
    make_gopro_qr_shot(g / "GH010001.MP4", CUSTOMER, creation_time="2026-12-01T10:00:00Z")
    app = create_app(attrs.evolve(settings, import_roots=(roots,)))
    async with running_server(app) as url, httpx.AsyncClient(base_url=url, timeout=30) as http:

        def add(session: Session) -> int:
            project = Project(uuid=CUSTOMER, name="Muted camera")
            session.add(project)
            session.flush()
            return project.id

        project_id = await app.db.run(add)
        answer = await http.post("/api/imports", json={"path": str(card)})
        assert answer.status_code == 202, answer.text
        uuid = answer.json()["uuid"]
        detail: dict[str, Any] = {}
        with trio.move_on_after(90):
            while detail.get("status") not in {"resolved", "needs_manual", "error", "cancelled"}:
                await trio.sleep(0.2)
                detail = (await http.get(f"/api/imports/{uuid}")).json()
        assert detail["status"] == "resolved", detail
        (jump,) = detail["jumps"]
        assert jump["state"] == "resolved" and jump["project_id"] == project_id
        freefall = jump["freefall"]
        assert freefall["recording"] == "100GOPRO/GX:0002"
        assert freefall["start"] == pytest.approx(PROFILE.exit, abs=TOLERANCE_S)
        assert freefall["end"] == pytest.approx(PROFILE.deploy, abs=TOLERANCE_S)

        def segments(session: Session) -> dict[str, list[tuple[str, float, float]]]:
            rows = session.execute(
                select(VideoFile.original_filename, VideoFileSegment.classification,
                       VideoFileSegment.start_time, VideoFileSegment.end_time)
                .join(VideoFileSegment, VideoFileSegment.video_file_id == VideoFile.id)
                .order_by(VideoFile.id, VideoFileSegment.sequence_order)
            ).all()  # fmt: skip
            out: dict[str, list[tuple[str, float, float]]] = {}
            for name, phase, start, end in rows:
                out.setdefault(name, []).append((phase.value, float(start), float(end)))
            return out

        stored = await app.db.run(segments)
    # The freefall is cut at the chapter boundary (50 s), local times per file.
    (ff1,) = [s for s in stored["GX010002.MP4"] if s[0] == "freefall"]
    (ff2,) = [s for s in stored["GX020002.MP4"] if s[0] == "freefall"]
    assert ff1[1] == pytest.approx(PROFILE.exit, abs=TOLERANCE_S) and ff1[2] == pytest.approx(
        50.0, abs=0.3
    )
    assert ff2[1] == pytest.approx(0.0, abs=0.3)
    assert ff2[2] == pytest.approx(PROFILE.deploy - 50.0, abs=TOLERANCE_S)
    assert [s[0] for s in stored["GX010002.MP4"]] == ["flight", "freefall"]
    assert [s[0] for s in stored["GX020002.MP4"]] == ["freefall", "canopy", "ground_after"]


async def test_cancelling_a_fused_analysis_leaves_no_ffmpeg(clips: dict[str, Any]) -> None:
    with trio.move_on_after(0.05) as scope:
        await analyse_signals([clips["agree"]] * 20)
    assert scope.cancelled_caught
    assert media_children("ffmpeg") == []
