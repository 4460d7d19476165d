"""Name screens rendered by real ffmpeg: where layers are, how opaque, and a whole card.

The graph's picture is read back as raw grey frames (no encoder in between), so
a layer's measured edge is where the overlay put it. The expected positions
come from the same :class:`~stinercut_svc.render.keyframes.Track` the graph was
compiled from, evaluated in Python: the test fails if the expression, the
easing, the time base or the pixel mapping is off by more than 2 px.
"""

from __future__ import annotations

import json
import subprocess
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest

from stinercut_svc.media.filtergraph import Graph
from stinercut_svc.render.compile import compile_timeline
from stinercut_svc.render.name_screen import (
    CustomerData,
    PreparedNameScreen,
    RasterRequest,
    prepare_sync,
)
from stinercut_svc.render.recipes.name_screen import (
    blurred_still,
    frame_count,
    name_screen,
    name_screen_audio,
    title_card,
)
from stinercut_svc.render.timeline import OutputSpec, Timeline
from tests.support.media import make_audio, make_clip

DEJAVU = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
W, H, FPS = 320, 180, Fraction(25)

TEMPLATE = """<svg xmlns="http://www.w3.org/2000/svg" width="[[[WIDTH]]]" height="[[[HEIGHT]]]"
     viewBox="0 0 1920 1080">
  <g id="box"><rect x="0" y="0" width="192" height="108" fill="#fff"/></g>
  <g id="dot"><rect x="1500" y="700" width="240" height="240" fill="#fff"/></g>
  <g id="corner"><rect x="0" y="0" width="60" height="60" fill="#fff"/></g>
  <script type="application/json" id="stinercut-animation">{config}</script>
</svg>
"""
MOVING = {
    "duration": 3.0,
    "layers": [
        {
            "id": "box",
            "group_id": "box",
            "animations": [
                {
                    "property": "x",
                    "easing": "ease-in-out",
                    "keyframes": [
                        {"time": 0.2, "value": -192},
                        {"time": 1.0, "value": 600},
                        {"time": 1.6, "value": 600},
                        {"time": 2.6, "value": 1500},
                    ],
                },
                {
                    "property": "y",
                    "easing": "ease-out",
                    "keyframes": [{"time": 0.0, "value": 100}, {"time": 2.0, "value": 800}],
                },
            ],
        },
        {
            "id": "dot",
            "group_id": "dot",
            "initial": {"opacity": 0},
            "animations": [
                {
                    "property": "opacity",
                    "keyframes": [
                        {"time": 0.4, "value": 0},
                        {"time": 1.4, "value": 1, "easing": "ease-in"},
                        {"time": 2.4, "value": 0.3},
                    ],
                },
            ],
        },
    ],
}


def prepare(
    tmp_path: Path, config: dict[str, object], *, font: Path | None = None, name: str = "x"
) -> PreparedNameScreen:
    template = tmp_path / "template.svg"
    template.write_text(TEMPLATE.format(config=json.dumps(config)), encoding="utf-8")
    return prepare_sync(
        RasterRequest(
            template_path=template,
            font_path=font,
            data=CustomerData.of(name, None),
            width=W,
            height=H,
            duration=None,
            work_dir=tmp_path / "layers",
        )
    )


def grey_frames(g: Graph, tmp_path: Path) -> list[bytes]:
    argv = g.compile(tmp_path)
    result = subprocess.run(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", *argv],
        capture_output=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr.decode()
    size = W * H
    assert len(result.stdout) % size == 0
    return [result.stdout[i : i + size] for i in range(0, len(result.stdout), size)]


@pytest.mark.parametrize("fps", [FPS, Fraction(30000, 1001)])
def test_layer_positions_follow_the_keyframes(fps: Fraction, tmp_path: Path) -> None:
    # A static layer on top: the moving box is then a decoded-once layer under
    # the top one, which is read as a live input (see the recipe).
    corner = {"id": "corner", "group_id": "corner"}
    config = {"duration": 3.0, "layers": [MOVING["layers"][0], corner]}  # type: ignore[index]
    prepared = prepare(tmp_path, config)
    box, _ = prepared.layers
    g = Graph()
    g.output(
        "pipe:1",
        name_screen(g, prepared, fps=fps, background=None),
        options=["-f", "rawvideo", "-pix_fmt", "gray", "-fps_mode", "passthrough"],
    )
    frames = grey_frames(g, tmp_path)
    assert len(frames) == frame_count(3.0, fps) == round(3 * fps)
    checked = 0
    for n in range(0, len(frames), 2):
        t = float(n / fps)
        x, y = box.x.value_at(t), box.y.value_at(t)
        if x < 0 or x + box.width > W or y + box.height > H:
            continue  # partly outside: no edge to find on that side
        frame = frames[n]
        row = frame[round(y + box.height / 2) * W :][:W]
        left = next(i for i in range(W) if row[i] > 128)
        column = [frame[r * W + round(x + box.width / 2)] for r in range(H)]
        top = next(i for i in range(H) if column[i] > 128)
        assert left == pytest.approx(x, abs=2), f"x at {t} s"
        assert top == pytest.approx(y, abs=2), f"y at {t} s"
        checked += 1
    assert checked >= 20
    # Before its first keyframe the box rests off-frame left; at the end, at 1500/6.
    assert max(frames[0][round(box.y.value_at(0) + 9) * W :][:W]) < 40
    assert box.x.value_at(3.0) == pytest.approx(1500 / 6)


def test_layer_opacity_follows_the_keyframes(tmp_path: Path) -> None:
    config = {"duration": 3.0, "layers": [MOVING["layers"][1]]}  # type: ignore[index]
    prepared = prepare(tmp_path, config)
    (dot,) = prepared.layers
    g = Graph()
    g.output(
        "pipe:1",
        name_screen(g, prepared, fps=FPS, background=None),
        options=["-f", "rawvideo", "-pix_fmt", "gray"],
    )
    frames = grey_frames(g, tmp_path)
    cx, cy = round(dot.x.final + dot.width / 2), round(dot.y.final + dot.height / 2)
    black = frames[0][cy * W + cx]
    white = frames[35][cy * W + cx]  # t = 1.4 s: opacity 1
    assert white - black > 180
    for n in range(0, 75, 2):
        expected = black + (white - black) * dot.opacity.value_at(n / 25)
        assert frames[n][cy * W + cx] == pytest.approx(expected, abs=6), f"frame {n}"
    # ease-in from 1.4 s: below the straight line in the first half of the segment.
    linear_mid = black + (white - black) * (1 + 0.3) / 2
    assert frames[47][cy * W + cx] > linear_mid + 20  # t = 1.88 s: still nearly opaque


def test_a_whole_name_screen_with_background_and_sound(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "first.mp4", seconds=1.0, size="320x240")
    sound = make_audio(tmp_path / "sound.m4a", seconds=1.0)
    config = {
        "duration": 2.0,
        "layers": [
            {
                "id": "name",
                "type": "text",
                "content": "{{pax_name}}",
                "text_style": {
                    "font_size": 140,
                    "fill": "white",
                    "stroke": "black",
                    "stroke_width": 3,
                    "anchor": "middle",
                },
                "initial": {"x": 960, "y": 480},
            }
        ],
    }
    prepared = prepare(tmp_path, config, font=DEJAVU, name="Jürgen Müßig")
    g = Graph()
    still = blurred_still(g, clip, at_s=0.5, width=W, height=H)
    video = name_screen(g, prepared, fps=FPS, background=still)
    audio = name_screen_audio(g, sound, duration=2.0)
    out = tmp_path / "card.mp4"
    g.output(out, video, audio, options=["-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac"])
    subprocess.run(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", *g.compile(tmp_path)],
        check=True,
        timeout=120,
    )
    streams = _probe(out)
    v = next(s for s in streams if s["codec_type"] == "video")
    a = next(s for s in streams if s["codec_type"] == "audio")
    assert (v["width"], v["height"], int(v["nb_read_frames"])) == (W, H, 50)
    assert float(a["duration"]) == pytest.approx(1.0, abs=0.1)  # the sound, then nothing
    frame = _grey_frame(out, 1.0)
    (name,) = prepared.layers
    # Text row: white name pixels; above it, the blurred (not black) clip.
    row = frame[round(name.y.final + name.height / 2) * W :][:W]
    assert max(row) > 200
    assert 30 < sum(frame[: W * 20]) / (W * 20) < 220


def test_the_title_card_in_a_timeline(tmp_path: Path) -> None:
    config = {"duration": 1.2, "layers": [MOVING["layers"][0]]}  # type: ignore[index]
    prepared = prepare(tmp_path, config)
    card = title_card(prepared, background_clip=None, sound=None)
    out = tmp_path / "timeline.mp4"
    timeline = Timeline(
        items=(card,),
        transitions=(),
        width=W,
        height=H,
        fps=FPS,
        outputs=(
            OutputSpec(
                name="main",
                path=out,
                width=W,
                height=H,
                video_args=("-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"),
                audio_args=("-c:a", "aac"),
            ),
        ),
    )
    compiled = compile_timeline(timeline, script_dir=tmp_path)
    subprocess.run(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-y", *compiled.argv],
        check=True,
        timeout=120,
    )
    v = next(s for s in _probe(out) if s["codec_type"] == "video")
    assert int(v["nb_read_frames"]) == 30
    with pytest.raises(ValueError, match="rasterised at 320x180"):
        card.build_video(Graph(), 640, 360, FPS)


def _probe(path: Path) -> list[dict[str, Any]]:
    result = subprocess.run(
        [
            "ffprobe",
            "-v",
            "error",
            "-count_frames",
            "-show_entries",
            "stream=codec_type,width,height,nb_read_frames,duration",
            "-of",
            "json",
            str(path),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return list(json.loads(result.stdout)["streams"])


def _grey_frame(path: Path, at_s: float) -> bytes:
    result = subprocess.run(
        [
            "ffmpeg",
            "-hide_banner",
            "-loglevel",
            "error",
            "-ss",
            str(at_s),
            "-i",
            str(path),
            "-frames:v",
            "1",
            "-f",
            "rawvideo",
            "-pix_fmt",
            "gray",
            "pipe:1",
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return result.stdout


def test_a_plain_template_renders_as_one_static_layer(tmp_path: Path) -> None:
    template = tmp_path / "plain.svg"
    template.write_text(
        '<svg xmlns="http://www.w3.org/2000/svg" width="[[[WIDTH]]]" height="[[[HEIGHT]]]" '
        'viewBox="0 0 1920 1080"><rect x="0" y="0" width="960" height="1080" fill="#fff"/>'
        '<text x="1440" y="600" font-size="150" text-anchor="middle" fill="#fff">'
        "{{pax_name}}</text></svg>",
        encoding="utf-8",
    )
    prepared = prepare_sync(
        RasterRequest(template_path=template, font_path=DEJAVU,
                      data=CustomerData.of("Zoë", None), width=W, height=H, duration=2.0,
                      work_dir=tmp_path / "layers")
    )  # fmt: skip
    (sheet,) = prepared.layers
    assert sheet.is_static
    g = Graph()
    g.output("pipe:1", name_screen(g, prepared, fps=FPS, background=None),
             options=["-f", "rawvideo", "-pix_fmt", "gray"])  # fmt: skip
    frames = grey_frames(g, tmp_path)
    assert len(frames) == 50
    for frame in (frames[0], frames[49]):
        assert frame[90 * W + 80] > 200  # the white left half
        name_row = frame[90 * W + 170 : 90 * W + 310]  # around x = 1440/6 = 240
        assert max(name_row) > 200 and min(name_row) < 60  # letters on black
