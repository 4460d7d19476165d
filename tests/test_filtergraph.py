"""The filter-graph builder: exact compiled arguments, escaping, auto-split, scripts.

The exact-argument tests pin the contract other modules compile against; the
ffmpeg tests prove that what the builder escapes is what ffmpeg reads back
(a file name with quotes, a colon, commas and brackets opened through the
``movie`` source filter, whose option parser sees the value after both levels
of unescaping).
"""

from __future__ import annotations

import json
import subprocess
from fractions import Fraction
from pathlib import Path

import pytest

from stinercut_svc.media.filtergraph import (
    SCRIPT_NAME,
    Graph,
    GraphError,
    Stream,
    escape_graph,
    escape_option,
    format_number,
    script_flag,
)
from tests.support.media import make_clip


def test_single_chain_exact_argv() -> None:
    g = Graph()
    v = g.input("in.mp4", "v", options=["-ss", "1.5", "-t", "3"])
    a = g.input_stream(index=0, kind="a")
    s = g.filter("scale", v, w=1280, h=720)
    g.output("out.mp4", s, a, options=["-c:v", "libx264"])
    assert g.compile() == [
        "-ss", "1.5", "-t", "3", "-i", "in.mp4",
        "-filter_complex", "[0:v]scale=w=1280:h=720[v1]",
        "-map", "[v1]", "-map", "0:a", "-c:v", "libx264", "out.mp4",
    ]


def test_two_inputs_xfade_and_number_formatting() -> None:
    g = Graph()
    v0 = g.input("a.mp4")
    v1 = g.input("b.mp4")
    offset = 0.1 + 0.2 + 3.9  # 4.2000000000000002 in binary floating point
    x = g.filter("xfade", v0, v1, transition="fade", duration=1.0, offset=offset)
    g.output("out.mp4", x)
    assert g.filter_text() == "[0:v][1:v]xfade=transition=fade:duration=1:offset=4.2[v1]"


def test_stream_consumed_twice_gets_split() -> None:
    g = Graph()
    v = g.input("a.mp4")
    s = g.filter("scale", v, w=640, h=-2)
    blur = g.filter("gblur", s, sigma=20)
    top = g.filter("overlay", blur, s, x="(W-w)/2", y=0)
    g.output("o.mp4", top)
    assert g.filter_text() == (
        "[0:v]scale=w=640:h=-2[v1];"
        "[v1]split=2[v1s0][v1s1];"
        "[v1s0]gblur=sigma=20[v2];"
        "[v2][v1s1]overlay=x=(W-w)/2:y=0[v3]"
    )


def test_input_stream_consumed_twice_and_mapped_to_two_outputs() -> None:
    g = Graph()
    v = g.input("a.mp4")
    a = g.input_stream(index=0, kind="a")
    big = g.filter("scale", v, w=1920, h=1080)
    small = g.filter("scale", v, w=640, h=360)
    loud = g.filter("volume", a, volume=2)
    g.output("big.mp4", big, loud)
    g.output("small.mp4", small, loud)
    assert g.compile() == [
        "-i", "a.mp4",
        "-filter_complex",
        "[0:v]split=2[0_vs0][0_vs1];"
        "[0_vs0]scale=w=1920:h=1080[v1];"
        "[0_vs1]scale=w=640:h=360[v2];"
        "[0:a]volume=volume=2[a3];"
        "[a3]asplit=2[a3s0][a3s1]",
        "-map", "[v1]", "-map", "[a3s0]", "big.mp4",
        "-map", "[v2]", "-map", "[a3s1]", "small.mp4",
    ]


def test_multi_output_filter_unused_pad_goes_to_null_sink() -> None:
    g = Graph()
    a = g.input("a.wav", "a")
    left, _right = g.filter_multi("asplit", a, outputs=2)
    v0, a0 = g.filter_multi("concat", g.input("x.mp4"), g.input_stream(index=1, kind="a"),
                            outputs=["v", "a"], n=1, v=1, a=1)
    g.output("o.mkv", v0, a0, left)
    assert g.filter_text() == (
        "[0:a]asplit=2[a1][a2];[a2]anullsink;"
        "[1:v][1:a]concat=n=1:v=1:a=1[v3][a4]"
    )


def test_source_filter_needs_kind() -> None:
    g = Graph()
    with pytest.raises(GraphError):
        g.filter("color", c="black")
    black = g.filter("color", out_kind="v", c="black", s="320x240", d=Fraction(3, 2), r=25)
    g.output("o.mp4", black)
    assert g.filter_text() == "color=c=black:s=320x240:d=3/2:r=25[v1]"


def test_none_options_are_left_out_and_foreign_streams_rejected() -> None:
    g = Graph()
    v = g.input("a.mp4")
    out = g.filter("fps", v, fps=25, round=None)
    assert g.filter_text() == "[0:v]fps=fps=25[v1];[v1]nullsink"  # not mapped yet
    g.output("o.mp4", out)
    assert g.filter_text() == "[0:v]fps=fps=25[v1]"
    with pytest.raises(GraphError):
        g.filter("null", Stream("v99", "v"))
    with pytest.raises(GraphError):
        Graph().output("o.mp4", out)
    with pytest.raises(GraphError):
        Graph().compile()


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (4.2, "4.2"),
        (0.1 + 0.2, "0.3"),
        (1e-7, "0"),
        (-0.0000001, "0"),
        (1234567.5, "1234567.5"),
        (1e20, "100000000000000000000"),
        (2, "2"),
        (True, "1"),
        (Fraction(30000, 1001), "30000/1001"),
        (Fraction(50, 2), "25"),
    ],
)
def test_format_number(value: float, text: str) -> None:
    assert format_number(value) == text


def test_format_number_rejects_nan() -> None:
    with pytest.raises(GraphError):
        format_number(float("nan"))


def test_escaping_levels() -> None:
    assert escape_option("PTS-STARTPTS") == "PTS-STARTPTS"
    assert escape_option("O'Neil: 4-way") == "'O'\\''Neil: 4-way'"
    assert escape_option(" padded ") == "' padded '"
    assert escape_option("") == "''"
    assert escape_graph("'a,b[c];d\\'") == "\\'a\\,b\\[c\\]\\;d\\\\\\'"
    g = Graph()
    v = g.input("a.mp4")
    g.output("o.mp4", g.filter("drawtext", v, text="O'Neil: 4-way, [x]"))
    assert g.filter_text() == "[0:v]drawtext=text=\\'O\\'\\\\\\'\\'Neil: 4-way\\, \\[x\\]\\'[v1]"


def test_script_file_for_long_graphs(tmp_path: Path) -> None:
    g = Graph()
    v = g.input("a.mp4")
    for _ in range(3):
        v = g.filter("null", v)
    g.output("o.mp4", v)
    assert g.compile(tmp_path)[2] == "-filter_complex"  # short: stays inline
    argv = g.compile(tmp_path, inline_max=10, flag=script_flag((7, 1)))
    script = tmp_path / SCRIPT_NAME
    assert argv == ["-i", "a.mp4", "-/filter_complex", str(script), "-map", "[v3]", "o.mp4"]
    assert script.read_text() == "[0:v]null[v1];\n[v1]null[v2];\n[v2]null[v3]\n"
    assert script_flag((5, 1)) == "-filter_complex_script"
    assert script_flag(None) == "-filter_complex_script"


def _run(argv: list[str]) -> None:
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-y", *argv],
                   check=True, timeout=60)


def _probe(path: Path) -> dict:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_streams", "-show_format", "-of", "json", str(path)],
        check=True, capture_output=True, timeout=30,
    )
    return json.loads(out.stdout)


def test_ffmpeg_reads_escaped_values_back(tmp_path: Path) -> None:
    """A file name full of separators reaches the ``movie`` filter intact, via a script."""
    odd = tmp_path / "O'Neil: 4-way, [tandem]; \\ 'jump'.mp4"
    make_clip(odd, seconds=1.0, audio=False)
    g = Graph()
    v = g.filter("movie", out_kind="v", filename=odd)
    small = g.filter("scale", v, w=160, h=120)
    big = g.filter("scale", v, w=320, h=240)  # `v` consumed twice: auto split
    g.output(tmp_path / "small.mp4", small, options=["-c:v", "libx264", "-preset", "ultrafast"])
    g.output(tmp_path / "big.mp4", big, options=["-c:v", "libx264", "-preset", "ultrafast"])
    _run(g.compile(tmp_path, inline_max=0))
    assert (tmp_path / SCRIPT_NAME).exists()
    for name, width in (("small.mp4", 160), ("big.mp4", 320)):
        info = _probe(tmp_path / name)
        assert info["streams"][0]["width"] == width
        assert float(info["format"]["duration"]) == pytest.approx(1.0, abs=0.05)


def test_ffmpeg_runs_unused_pads_and_input_split(tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "c.mp4", seconds=1.0)
    g = Graph()
    v = g.input(clip)
    a = g.input_stream(index=0, kind="a")
    first, _unused = g.filter_multi("asplit", a, outputs=2)
    left = g.filter("crop", v, w=160, h=240, x=0, y=0)
    right = g.filter("crop", v, w=160, h=240, x=160, y=0)
    both = g.filter("hstack", left, right)
    g.output(tmp_path / "o.mp4", both, first,
             options=["-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac"])
    _run(g.compile())
    kinds = sorted(s["codec_type"] for s in _probe(tmp_path / "o.mp4")["streams"])
    assert kinds == ["audio", "video"]
