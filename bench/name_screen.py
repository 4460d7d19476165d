"""Name screen benchmark: rasterising, and the cost of the animation in ffmpeg.

A 1920x1080, 6 s, 30 fps name screen from an animated template (full-frame
gradient background, three moving and fading groups, the passenger name sliding
and fading in, a date) is

1. **prepared** (template parsed, glyphs checked, layers rasterised by resvg and
   cropped): wall time, median of ``--repeats``;
2. **rendered** by ffmpeg to ``-f null`` (the filter graph's cost alone, no
   encoder) with the recipe's graph: per-frame position by ``overlay``
   ``eval=frame``, opacity by ``sendcmd [expr]`` into ``colorchannelmixer``,
   static bottom layers composed once on the background, animated layers
   decoded once and repeated by ``loop``, the top one read as a ``-loop 1``
   image input (a live input);
3. against four **baselines in the same run**, each changing one choice:
   opacity by ``geq`` (the per-pixel expression); ``loop-filter``: the top
   layer also decoded once and repeated by ``loop`` (every input then ends at
   once and ffmpeg 5/6 polls with 10 ms sleeps when the graph waits: on a
   loaded machine more wall time for the same CPU, on a quiet one no change);
   ``loop-input``: every animated layer read as a ``-loop 1`` input (decoded
   per frame: more CPU); the static bottom layers overlaid on every frame
   instead of composed once on the background. Medians; CPU time
   (user + system of the ffmpeg process) is the figure that survives a
   loaded machine, wall time shows the polling.

    .venv/bin/python bench/name_screen.py [--repeats 3] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from stinercut_svc.media.filtergraph import Graph, Stream, format_number  # noqa: E402
from stinercut_svc.render.name_screen import (  # noqa: E402
    CustomerData,
    PreparedNameScreen,
    RasterRequest,
    prepare_sync,
)
from stinercut_svc.render.recipes.name_screen import frame_count, name_screen  # noqa: E402

DEJAVU = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf")
W, H, FPS, SECONDS = 1920, 1080, Fraction(30), 6.0


def fade(start: float, end: float) -> dict[str, object]:
    return {
        "property": "opacity",
        "easing": "ease-in-out",
        "keyframes": [{"time": start, "value": 0}, {"time": end, "value": 1}],
    }


CONFIG = {
    "duration": SECONDS,
    "layers": [
        {"id": "bg", "group_id": "bg"},
        {
            "id": "plane",
            "group_id": "plane",
            "animations": [
                {
                    "property": "x",
                    "easing": "ease-out",
                    "keyframes": [
                        {"time": 0, "value": -900},
                        {"time": 2.5, "value": 0},
                        {"time": 6, "value": 200},
                    ],
                },
                fade(0, 1),
            ],
        },
        {
            "id": "diver",
            "group_id": "diver",
            "animations": [
                {
                    "property": "y",
                    "easing": "ease-in",
                    "keyframes": [{"time": 1, "value": -500}, {"time": 3.5, "value": 0}],
                },
                fade(1, 1.5),
            ],
        },
        {"id": "sun", "group_id": "sun", "animations": [fade(0.5, 2.5)]},
        {
            "id": "name",
            "type": "text",
            "content": "{{pax_name}}",
            "text_style": {
                "font_size": 150,
                "fill": "white",
                "stroke": "#222",
                "stroke_width": 4,
                "anchor": "middle",
            },
            "initial": {"x": 960, "y": 640},
            "animations": [
                fade(2.5, 3.5),
                {
                    "property": "y",
                    "easing": "ease-out",
                    "keyframes": [{"time": 2.5, "value": 700}, {"time": 3.5, "value": 640}],
                },
            ],
        },
        {
            "id": "date",
            "type": "text",
            "content": "{{date}}",
            "text_style": {"font_size": 60, "fill": "#ddd", "anchor": "middle"},
            "initial": {"x": 960, "y": 860},
            "animations": [fade(3.5, 4.5)],
        },
    ],
}

TEMPLATE = """<svg xmlns="http://www.w3.org/2000/svg" width="[[[WIDTH]]]" height="[[[HEIGHT]]]"
     viewBox="0 0 1920 1080">
  <defs><linearGradient id="sky" x1="0" y1="0" x2="0" y2="1">
    <stop offset="0" stop-color="#1d4e89"/><stop offset="1" stop-color="#7fb7e6"/>
  </linearGradient></defs>
  <g id="bg"><rect width="1920" height="1080" fill="url(#sky)"/></g>
  <g id="plane"><path d="M200 200 h700 l120 60 h-820 z" fill="#eee"/>
    <rect x="450" y="150" width="80" height="160" fill="#ccc"/></g>
  <g id="diver"><circle cx="1400" cy="420" r="70" fill="#f60"/>
    <rect x="1330" y="490" width="140" height="220" rx="40" fill="#f60"/></g>
  <g id="sun"><circle cx="1700" cy="160" r="110" fill="#ffd54a" opacity="0.9"/></g>
  <script type="application/json" id="stinercut-animation">{config}</script>
</svg>
"""


def graph(prepared: PreparedNameScreen, variant: str) -> list[str]:
    """The recipe's graph, or a baseline differing from it in one choice."""
    g = Graph()
    if variant == "recipe":
        g.output("-", name_screen(g, prepared, fps=FPS, background=None), options=["-f", "null"])
        return g.compile()
    frames = frame_count(prepared.duration, FPS)
    rate = format_number(FPS)

    def repeat(stream: Stream) -> Stream:
        stream = g.filter("loop", stream, loop=frames - 1, size=1, start=0)
        stream = g.filter("settb", stream, expr=format_number(1 / FPS))
        return g.filter("setpts", stream, expr="N")

    base = g.filter("color", out_kind="v", c="black", s=f"{W}x{H}", r=FPS)
    base = g.filter("format", g.filter("trim", base, end_frame=1), pix_fmts="yuv420p")
    layers = list(prepared.layers)
    if variant != "per-frame-static":
        while len(layers) > 1 and layers[0].is_static:
            image = g.filter("format", g.input(layers[0].png, "v"), pix_fmts="rgba")
            base = g.filter(
                "overlay",
                base,
                image,
                x=round(layers[0].x.final),
                y=round(layers[0].y.final),
                eval="init",
                format="yuv420",
            )
            layers.pop(0)
    base = repeat(base)
    for layer in layers:
        # The recipe: the top layer live (-loop 1), the others decoded once + loop.
        live = layer is layers[-1] and variant != "loop-filter"
        if variant == "loop-input" or live:
            image = g.input(layer.png, "v", options=["-loop", "1", "-framerate", rate])
            image = g.filter("trim", g.filter("format", image, pix_fmts="rgba"), end_frame=frames)
        else:
            image = g.input(layer.png, "v", options=["-framerate", rate])
            image = repeat(g.filter("format", image, pix_fmts="rgba"))
        if not layer.opacity.is_constant:
            if variant == "geq":
                image = g.filter(
                    "geq",
                    image,
                    r="r(X,Y)",
                    g="g(X,Y)",
                    b="b(X,Y)",
                    a=f"alpha(X,Y)*({layer.opacity.expression('T')})",
                )
            else:
                target = f"colorchannelmixer@b{g.input_count}"
                image = g.filter(
                    "sendcmd",
                    image,
                    commands=(f"0-100 [expr] {target} aa '{layer.opacity.expression('T')}'"),
                )
                image = g.filter(target, image, aa=0)
        animated = not (layer.x.is_constant and layer.y.is_constant)
        base = g.filter(
            "overlay",
            base,
            image,
            x=f"round({layer.x.expression()})",
            y=f"round({layer.y.expression()})",
            eval="frame" if animated else "init",
            format="yuv420",
        )
    g.output("-", base, options=["-f", "null"])
    return g.compile()


def timed(argv: list[str], threads: int) -> tuple[float, float]:
    """Wall seconds and CPU seconds (user + system) of one ffmpeg run."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(
        [
            "ffmpeg",
            "-hide_banner",
            "-loglevel",
            "error",
            "-nostdin",
            "-filter_complex_threads",
            str(threads),
            *argv,
        ],
        check=True,
    )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="-filter_complex_threads (1: steadier on a busy machine)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-namescreen-") as tmp:
        folder = Path(tmp)
        template = folder / "template.svg"
        template.write_text(TEMPLATE.format(config=json.dumps(CONFIG)), encoding="utf-8")
        data = CustomerData.of("Jean-Luc O'Brien-Núñez", "02.12.2026")
        prep_times = []
        prepared = None
        for index in range(args.repeats):
            started = time.perf_counter()
            prepared = prepare_sync(
                RasterRequest(
                    template_path=template,
                    font_path=DEJAVU,
                    data=data,
                    width=W,
                    height=H,
                    duration=None,
                    work_dir=folder / f"layers{index}",
                )
            )
            prep_times.append(time.perf_counter() - started)
        assert prepared is not None
        print(
            f"name screen {W}x{H}, {SECONDS:g} s at {FPS} fps, "
            f"{len(prepared.layers)} layers after merging static ones"
        )
        print(
            f"prepare (parse, glyph check, resvg, crop): median "
            f"{statistics.median(prep_times) * 1000:.0f} ms"
        )
        variants = ("recipe", "geq", "loop-filter", "loop-input", "per-frame-static")
        argvs = {variant: graph(prepared, variant) for variant in variants}
        walls: dict[str, list[float]] = {variant: [] for variant in variants}
        cpus: dict[str, list[float]] = {variant: [] for variant in variants}
        # Interleaved, so a change in machine load hits every variant alike.
        for _ in range(args.repeats):
            for variant in variants:
                wall, cpu = timed(argvs[variant], args.threads)
                walls[variant].append(wall)
                cpus[variant].append(cpu)
        base_cpu = statistics.median(cpus["recipe"])
        print("  variant            wall s  realtime  CPU s  CPU vs the recipe")
        for variant in variants:
            wall, cpu = statistics.median(walls[variant]), statistics.median(cpus[variant])
            print(
                f"  {variant:<17} {wall:6.2f}   x{SECONDS / wall:5.2f}  {cpu:6.2f}  "
                f"{cpu / base_cpu:4.2f}x"
            )


if __name__ == "__main__":
    main()
