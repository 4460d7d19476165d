"""Editions benchmark: three outputs in one ffmpeg run versus three renders, and runner cost.

Builds a customer video the way the service does (``build_plan``: clips with
crossfades, a watermark, editions) from generated camera-like clips, then
measures, alternating the cases in each repeat so machine load hits them alike:

1. **one run, three outputs** - main (``--size``), ``vertical`` 9:16
   (cropped at the focus) and a 640 px ``preview``: decoded once, split;
2. **three separate runs** - the same timeline compiled with one output each
   (so each run decodes, scales and joins everything again);
3. **by hand** - the exact argv of case 1 run with plain ``subprocess`` (no
   progress pipe, no guard, no trio), against case 1 through the service's
   runner (:func:`stinercut_svc.media.runner.run_ffmpeg`).

Prints medians, the ratios (targets: editions <= 0.7x, runner <= 1.05x), the
realtime factor and the peak RSS of the ffmpeg children.

    .venv/bin/python bench/render_editions.py [--clips 3] [--seconds 6] [--size 1920x1080]
        [--source-size 1920x1080] [--source-fps 60] [--preset veryfast] [--repeats 3]
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import attrs
import trio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from stinercut_svc.jobs.options import EditionOptions, ResolvedOptions  # noqa: E402
from stinercut_svc.jobs.plan import (  # noqa: E402
    RenderInputs,
    Source,
    build_plan,
    clip_segment,
)
from stinercut_svc.media.probe import probe  # noqa: E402
from stinercut_svc.media.runner import run_ffmpeg  # noqa: E402
from stinercut_svc.render.compile import compile_timeline  # noqa: E402
from tests.support.media import ffmpeg, make_png  # noqa: E402


def make_clips(folder: Path, count: int, seconds: float, size: str, fps: int) -> list[Path]:
    """Camera-like sources: High profile H.264 at a camera's bitrate (20 Mb/s), with audio
    running past the picture. (Decoding them is part of what editions share.)"""
    clips = []
    for n in range(count):
        path = folder / f"clip{n}.mp4"
        ffmpeg("-f", "lavfi", "-i", f"testsrc2=size={size}:rate={fps}:duration={seconds}",
               "-f", "lavfi", "-i", f"sine=frequency={300 + 100 * n}:sample_rate=48000:"
               f"duration={seconds + 0.05}", "-c:v", "libx264", "-preset", "veryfast",
               "-b:v", "20M", "-pix_fmt", "yuv420p", "-c:a", "aac", str(path))  # fmt: skip
        clips.append(path)
    return clips


def write_plan_files(plan) -> None:  # type: ignore[no-untyped-def]
    if plan.filter_script is not None:
        plan.filter_script[0].write_text(plan.filter_script[1])


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


async def service_run(argv: list[str]) -> tuple[float, float]:
    """(wall, CPU of the ffmpeg child) through the service's runner, progress parsed."""
    started, cpu = time.perf_counter(), _children_cpu()

    async def progress(_: object) -> None:
        return None

    await run_ffmpeg(argv, on_progress=progress)
    return time.perf_counter() - started, _children_cpu() - cpu


def by_hand(argv: list[str]) -> tuple[float, float]:
    started, cpu = time.perf_counter(), _children_cpu()
    subprocess.run(["ffmpeg", "-hide_banner", "-nostdin", "-nostats", "-loglevel", "error",
                    *argv], check=True)  # fmt: skip
    return time.perf_counter() - started, _children_cpu() - cpu


async def main(args: argparse.Namespace) -> None:
    work = Path(tempfile.mkdtemp(prefix="stinercut-editions-"))
    width, height = (int(v) for v in args.size.split("x"))
    clips = make_clips(work, args.clips, args.seconds, args.source_size, args.source_fps)
    mark = make_png(work / "mark.png", size="128x64")
    sources = [Source(p, await probe(p), p.name) for p in clips]
    mark_source = Source(mark, await probe(mark), "watermark")
    vertical_h = height - height % 2
    vertical_w = vertical_h * 9 // 16 - (vertical_h * 9 // 16) % 2
    options = ResolvedOptions(
        transition="crossfade", transition_duration=1.0, preset=args.preset, crf=23,
        width=width, height=height, fps=Fraction(args.fps),
        editions=(EditionOptions(name="vertical", width=vertical_w, height=vertical_h),
                  EditionOptions(name="preview", width=640)),
    )  # fmt: skip
    inputs = RenderInputs(tuple(clip_segment(s) for s in sources), options, watermark=mark_source)
    plan = build_plan(inputs, work / "main.mp4", work / "list.ffconcat")
    assert plan.timeline is not None
    write_plan_files(plan)
    together = list(plan.args)
    separate = []
    for index, spec in enumerate(plan.timeline.outputs):
        folder = work / f"single{index}"
        folder.mkdir()
        spec = attrs.evolve(spec, path=folder / spec.path.name)
        compiled = compile_timeline(attrs.evolve(plan.timeline, outputs=(spec,)), script_dir=folder)
        if compiled.script is not None:
            compiled.script[0].write_text(compiled.script[1])
        separate.append(list(compiled.argv))
    print(f"{args.clips} clips x {args.seconds:g} s {args.source_size}@{args.source_fps} "
          f"-> {args.size}@{args.fps}, crossfades, watermark; "
          f"outputs: {', '.join(f'{s.name} {s.width}x{s.height}' for s in plan.timeline.outputs)}; "
          f"programme {plan.duration:.2f} s; preset {args.preset}")  # fmt: skip

    one_run: list[tuple[float, float]] = []
    three_runs: list[tuple[float, float]] = []
    hand: list[tuple[float, float]] = []
    for repeat in range(args.repeats):
        # Alternate the order so a change in machine load does not favour one case.
        if repeat % 2:
            hand.append(by_hand(together))
        one_run.append(await service_run(together))
        singles = [await service_run(argv) for argv in separate]
        three_runs.append((sum(w for w, _ in singles), sum(c for _, c in singles)))
        if not repeat % 2:
            hand.append(by_hand(together))
        print(f"  repeat {repeat + 1}: wall/CPU s: one run {one_run[-1][0]:.2f}/"
              f"{one_run[-1][1]:.2f}, three runs {three_runs[-1][0]:.2f}/{three_runs[-1][1]:.2f},"
              f" by hand {hand[-1][0]:.2f}/{hand[-1][1]:.2f}")  # fmt: skip

    def med(values: list[tuple[float, float]], index: int) -> float:
        return statistics.median(v[index] for v in values)

    rss_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    for label, index in (("wall", 0), ("CPU", 1)):
        one, three, manual = med(one_run, index), med(three_runs, index), med(hand, index)
        print(f"[{label}] one run, 3 outputs {one:.2f} s; three runs {three:.2f} s; "
              f"editions ratio {one / three:.2f}x (target <= 0.70); by hand {manual:.2f} s; "
              f"runner ratio {one / manual:.3f}x (target <= 1.05)")  # fmt: skip
    print(f"realtime factor (wall, one run): x{plan.duration / med(one_run, 0):.2f}")
    print(f"peak RSS of an ffmpeg child: {rss_mb:.0f} MB")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clips", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--size", default="1920x1080", help="main output")
    parser.add_argument("--fps", type=int, default=30, help="output frame rate")
    parser.add_argument("--source-size", default="1920x1080")
    parser.add_argument("--source-fps", type=int, default=60)
    parser.add_argument("--preset", default="veryfast")
    parser.add_argument("--repeats", type=int, default=3)
    trio.run(main, parser.parse_args())
