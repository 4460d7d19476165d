"""The frontend's render defaults (``video.*`` rows) beneath the project's and the
request's options: precedence, codecs, the bitrate ceiling, clear failures.

Pure tests check the resolution and the encoder arguments; real renders of tiny
lavfi clips check what comes out with ffprobe.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest

from stinercut_svc.context import StinercutApp
from stinercut_svc.jobs.options import (
    OutputOptions,
    RenderOptions,
    ResolvedOptions,
    parse_bitrate,
    parse_resolution,
    resolve,
    setting_overrides,
)
from stinercut_svc.jobs.plan import (
    ENCODERS,
    PlanError,
    RenderInputs,
    Source,
    build_plan,
    clip_segment,
)
from stinercut_svc.media.encoders import parse_encoders
from stinercut_svc.media.probe import AudioStream, MediaInfo, VideoStream
from stinercut_svc.models.job import RenderPath
from tests.test_render_helpers import (
    add_project,
    clip,
    ffprobe_json,
    set_setting,
    start_render,
    wait_job,
)

#: What a fresh database holds (the frontend's seed rows plus the service's render.* rows).
FRONTEND = {
    "video.default_resolution": "1920x1080",
    "video.default_fps": 30,
    "video.default_codec": "h264",
    "video.default_bitrate": "8M",
}
SERVICE = {"render.output_width": 0, "render.output_height": 0, "render.output_fps": "auto",
           "render.output_crf": 20, "render.output_preset": "veryfast"}  # fmt: skip


def resolved(settings: dict[str, Any], options: dict[str, Any] | None = None) -> ResolvedOptions:
    defaults, ignored = setting_overrides(settings)
    assert ignored == []
    return resolve(RenderOptions.model_validate(options or {}), defaults)


# --- precedence (pure) ---------------------------------------------------------------


def test_frontend_rows_apply_when_nothing_above_sets_a_value() -> None:
    out = resolved({**SERVICE, **FRONTEND})
    assert (out.width, out.height, out.fps) == (1920, 1080, Fraction(30))
    assert (out.codec, out.max_bitrate, out.crf) == ("h264", 8_000_000, 20)
    assert out.codec_source == "setting video.default_codec"


def test_service_rows_beat_frontend_rows() -> None:
    out = resolved(
        {**FRONTEND, "render.output_width": 1280, "render.output_height": 0,
         "render.output_fps": "30000/1001"}
    )  # fmt: skip
    # Size is one decision: render.output_width wins, height follows the clip's aspect.
    assert (out.width, out.height) == (1280, None)
    assert out.fps == Fraction(30000, 1001)


def test_project_and_request_beat_every_row() -> None:
    out = resolved(
        {**SERVICE, **FRONTEND, "render.output_width": 1280},
        {"output": {"height": 480, "fps": 25, "codec": "vp9", "bitrate": "2.5M", "crf": 30}},
    )
    assert (out.width, out.height, out.fps) == (None, 480, Fraction(25))
    assert (out.codec, out.max_bitrate, out.crf) == ("vp9", 2_500_000, 30)
    assert out.codec_source == "option output.codec"
    # "0" lifts the ceiling the frontend row sets.
    assert resolved(FRONTEND, {"output": {"bitrate": "0"}}).max_bitrate is None


def test_built_in_defaults_without_any_row() -> None:
    out = resolved({})
    assert (out.width, out.height, out.fps) == (None, None, None)
    assert (out.codec, out.max_bitrate) == ("h264", None)


def test_unusable_frontend_rows_are_skipped_and_reported() -> None:
    defaults, ignored = setting_overrides(
        {"video.default_resolution": "full hd", "video.default_fps": "fast",
         "video.default_bitrate": "8 MB", "video.default_codec": "mpeg2"}
    )  # fmt: skip
    assert ignored == ["video.default_resolution", "video.default_fps", "video.default_bitrate"]
    out = resolve(RenderOptions(), defaults)
    assert (out.width, out.fps, out.max_bitrate) == (None, None, None)
    # The codec is passed on as written: the plan fails the job naming it.
    assert out.codec == "mpeg2"


def test_parsers() -> None:
    assert parse_resolution("3840x2160") == (3840, 2160)
    assert parse_resolution(" 1280 X 720 ") == (1280, 720)
    for bad in ("1921x1080", "0x0", "1920", "99999x2", "abc"):
        assert parse_resolution(bad) is None, bad
    assert parse_bitrate("8M") == 8_000_000
    assert parse_bitrate("800k") == 800_000
    assert parse_bitrate("2.5M") == 2_500_000
    assert parse_bitrate("12000000") == 12_000_000
    assert parse_bitrate("0") is None
    for bad in ("8 MB", "-1M", "fast", "501M"):
        with pytest.raises(ValueError):
            parse_bitrate(bad)


def test_request_model_refuses_unknown_codec_and_bad_bitrate() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError) as codec:
        OutputOptions.model_validate({"codec": "mpeg2"})
    assert codec.value.errors()[0]["loc"] == ("codec",)
    with pytest.raises(ValidationError) as rate:
        OutputOptions.model_validate({"bitrate": "900M"})
    assert rate.value.errors()[0]["loc"] == ("bitrate",)


# --- encoders (pure) -----------------------------------------------------------------


def _source(codec: str = "h264", bit_rate: int | None = 1_000_000) -> Source:
    info = MediaInfo(
        format_name="mov,mp4,m4a,3gp,3g2,mj2",
        duration=2.0,
        video=VideoStream(codec, 320, 240, 25.0, "25/1", "yuv420p", 0, "High", bit_rate),
        audio=AudioStream("aac", 2, 48000),
        other_streams=0,
    )
    return Source(Path("/media/a.mp4"), info, "clip 'a.mp4'")


def _plan(
    options: ResolvedOptions, source: Source | None = None, encoders: frozenset[str] | None = None
):  # type: ignore[no-untyped-def]
    inputs = RenderInputs((clip_segment(source or _source()),), options, encoders=encoders)
    return build_plan(inputs, Path("/tmp/out.mp4"), Path("/tmp/list.ffconcat"))  # fmt: skip


def _after(args: tuple[str, ...], flag: str) -> str:
    return args[args.index(flag) + 1]


@pytest.mark.parametrize(
    ("codec", "encoder", "cap_flag"),
    [("h264", "libx264", "-maxrate"), ("h265", "libx265", "-maxrate"),
     ("vp9", "libvpx-vp9", "-b:v"), ("av1", "libsvtav1", "-maxrate")],
)  # fmt: skip
def test_each_codec_encodes_capped_crf(codec: str, encoder: str, cap_flag: str) -> None:
    plan = _plan(ResolvedOptions(codec=codec, width=160, height=120, crf=24, max_bitrate=800_000))
    assert plan.render_path is RenderPath.REENCODE
    assert _after(plan.args, "-c:v") == encoder
    assert _after(plan.args, "-crf") == "24"
    assert _after(plan.args, cap_flag) == "800000"
    assert plan.args[-1] == "/tmp/out.mp4" and _after(plan.args, "-f") == "mp4"


def test_uncapped_vp9_is_constant_quality() -> None:
    plan = _plan(ResolvedOptions(codec="vp9", width=160, height=120))
    assert _after(plan.args, "-b:v") == "0" and "-maxrate" not in plan.args


def test_av1_falls_back_to_libaom_when_svt_is_missing() -> None:
    have = frozenset({"libx264", "libaom-av1"})
    plan = _plan(ResolvedOptions(codec="av1", width=160, height=120), encoders=have)
    assert _after(plan.args, "-c:v") == "libaom-av1"


def test_unknown_codec_fails_naming_the_value_and_the_choices() -> None:
    with pytest.raises(PlanError) as err:
        _plan(ResolvedOptions(codec="mpeg2", codec_source="setting video.default_codec"))
    message = str(err.value)
    assert "'mpeg2'" in message and "video.default_codec" in message
    assert "h264, h265, vp9, av1" in message


def test_unavailable_codec_fails_naming_what_this_ffmpeg_has() -> None:
    with pytest.raises(PlanError) as err:
        _plan(ResolvedOptions(codec="h265"), encoders=frozenset({"libx264", "libvpx-vp9"}))
    message = str(err.value)
    assert "'h265'" in message and "libx265" in message
    assert "available codecs: h264, vp9" in message


def test_fast_path_follows_the_codec_and_the_cap() -> None:
    def opts(codec: str = "h264", max_bitrate: int | None = None) -> ResolvedOptions:
        return ResolvedOptions(
            width=320, height=240, fps=Fraction(25), codec=codec, max_bitrate=max_bitrate
        )

    assert _plan(opts()).render_path is RenderPath.FASTPATH
    hevc = _plan(opts("h265"), _source("hevc"))
    assert hevc.render_path is RenderPath.FASTPATH
    wrong = _plan(opts("h265"))
    assert wrong.reencode_reason == "video is not unrotated H.265"
    over = _plan(opts(max_bitrate=500_000))
    assert over.reencode_reason is not None and "bitrate" in over.reencode_reason
    unknown = _plan(opts(max_bitrate=5_000_000), _source(bit_rate=None))
    assert unknown.render_path is RenderPath.REENCODE
    under = _plan(opts(max_bitrate=5_000_000))
    assert under.render_path is RenderPath.FASTPATH


def test_encoder_listing_is_parsed() -> None:
    listing = (
        "Encoders:\n V..... = Video\n ------\n"
        " V....D libx264              libx264 H.264 (codec h264)\n"
        " V..... libsvtav1            SVT-AV1 (codec av1)\n"
        " A....D aac                  AAC (Advanced Audio Coding)\n"
    )
    assert parse_encoders(listing) == frozenset({"libx264", "libsvtav1"})
    assert set(ENCODERS) == {"h264", "h265", "vp9", "av1"}


# --- real renders ----------------------------------------------------------------------


def _video(app: StinercutApp, done: dict[str, Any]) -> dict[str, Any]:
    data = ffprobe_json(app.storage.resolve(done["output_path"]))
    assert data["format"]["format_name"].startswith("mov,mp4")
    return next(s for s in data["streams"] if s["codec_type"] == "video")


async def _frontend_defaults(app: StinercutApp, **values: str) -> None:
    await app.schema_ready.wait()
    for key, value in values.items():
        await set_setting(app, f"video.default_{key}", value)


@pytest.mark.parametrize(
    ("codec", "probe_name"), [("h265", "hevc"), ("vp9", "vp9"), ("av1", "av1")]
)
async def test_frontend_codec_resolution_and_fps_are_honoured(
    app: StinercutApp,
    client,
    media_dir: Path,
    codec: str,
    probe_name: str,  # type: ignore[no-untyped-def]
) -> None:
    await _frontend_defaults(app, codec=codec, resolution="160x120", fps="15")
    await set_setting(app, "render.output_preset", "ultrafast")
    project = await add_project(app, [clip(media_dir, "c05", seconds=0.5, size="96x96")])
    job = await start_render(client, project)
    done = await wait_job(app, job["uuid"], timeout=120)
    assert done["status"] == "completed" and done["render_path"] == "reencode", done
    video = _video(app, done)
    assert (video["codec_name"], video["width"], video["height"]) == (probe_name, 160, 120)
    assert video["avg_frame_rate"] == "15/1"
    if codec == "h265":
        assert video["codec_tag_string"] == "hvc1"


async def test_project_options_beat_the_frontend_rows(
    app: StinercutApp,
    client,
    media_dir: Path,  # type: ignore[no-untyped-def]
) -> None:
    await _frontend_defaults(app, codec="vp9", resolution="160x120", fps="15")
    project = await add_project(
        app,
        [clip(media_dir, "c05", seconds=0.5, size="96x96")],
        settings={"output": {"codec": "h264", "width": 64, "height": 64, "preset": "ultrafast"}},
    )
    job = await start_render(client, project, {"output": {"fps": 10}})
    done = await wait_job(app, job["uuid"], timeout=60)
    assert done["status"] == "completed", done
    video = _video(app, done)
    assert (video["codec_name"], video["width"], video["height"]) == ("h264", 64, 64)
    assert video["avg_frame_rate"] == "10/1"


async def test_bitrate_row_caps_the_encode(
    app: StinercutApp,
    client,
    media_dir: Path,  # type: ignore[no-untyped-def]
) -> None:
    """CRF 0 (lossless) would be megabits; the frontend's ceiling holds it near 300k."""
    await _frontend_defaults(app, resolution="320x240", fps="25", bitrate="300k")
    noisy = clip(media_dir, "c2s-320", seconds=2, size="320x240", audio=False)  # fmt: skip
    project = await add_project(
        app, [noisy], settings={"output": {"crf": 0, "preset": "ultrafast"}}
    )
    job = await start_render(client, project)
    done = await wait_job(app, job["uuid"], timeout=60)
    assert done["status"] == "completed", done
    capped = int(_video(app, done)["bit_rate"])
    # VBV bound: the rate plus the 2 s buffer spread over the 2 s clip.
    assert capped <= 300_000 + 600_000 / 2, capped

    uncapped_job = await start_render(client, project, {"output": {"bitrate": "0"}})
    uncapped = await wait_job(app, uncapped_job["uuid"], timeout=60)
    assert uncapped["status"] == "completed", uncapped
    assert int(_video(app, uncapped)["bit_rate"]) > 3 * capped


async def test_unsupported_codec_row_fails_the_job_clearly(
    app: StinercutApp,
    client,
    media_dir: Path,  # type: ignore[no-untyped-def]
) -> None:
    await _frontend_defaults(app, codec="mpeg2")
    project = await add_project(app, [clip(media_dir, "c05", seconds=0.5, size="96x96")])
    job = await start_render(client, project)
    done = await wait_job(app, job["uuid"], timeout=30)
    assert done["status"] == "failed", done
    message = done["error_message"]
    assert "'mpeg2'" in message and "video.default_codec" in message
    assert "h264, h265, vp9, av1" in message
    assert not message.startswith("internal error")


async def test_render_request_naming_an_unknown_codec_is_422(
    app: StinercutApp,
    client,
    media_dir: Path,  # type: ignore[no-untyped-def]
) -> None:
    project = await add_project(app, [clip(media_dir, "c05", seconds=0.5, size="96x96")])
    response = await client.post(
        f"/api/projects/{project}/render", json={"output": {"codec": "mpeg2", "bitrate": "8 MB"}}
    )
    assert response.status_code == 422
    body = await response.get_json()
    fields = str(body["error"]["details"])
    assert "codec" in fields and "bitrate" in fields
