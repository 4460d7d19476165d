"""The README's frame strip: render an example customer video, tile six frames into one image.

Runs the service on a temporary SQLite database and storage folder (the same set-up
as ``bench/customer_video.py``: lavfi sources, name screen from an animated
``pax_template`` with DejaVuSans, slide transitions, watermark, music per phase,
editions, slow motion around the exit), renders a ~20 s 1280x720 example through
the API, then grabs six frames — intro, name screen, first clip (watermarked), the
middle of a slide, the freefall, the outro — labels them and tiles them 3x2 into
``docs/customer-video-strip.png`` (1200 px wide, 256-colour palette so the file stays
well under 200 KB; a JPEG next to it if it ever does not).

The request body it used is printed, for the README's example settings object.

    scripts/frame_strip [--out docs/customer-video-strip.png]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from functools import partial
from pathlib import Path

import trio

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.customer_video import (  # noqa: E402
    INTRO_S,
    NAME_SCREEN_S,
    OUTRO_S,
    Shape,
    render_customer_video,
)
from tests.support.media import ffmpeg  # noqa: E402

LIMIT_BYTES = 200 * 1024
TILE_W, TILE_H = 400, 225
FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"


def frame_times(programme_s: float, clip_s: float) -> list[tuple[str, float]]:
    """Six moments of the programme, with a caption each.

    From the fixed parts of the schedule: intro, name screen, then clips joined
    by 1 s transitions. The second clip is the jump: exit at 30 % of it
    (``customer_body``), slowed to half speed from 1 s before the exit, so half a
    second of the clip after the exit is 2 s of output after it.
    """
    clips_start = INTRO_S + NAME_SCREEN_S
    jump_start = clips_start + clip_s - 1.0
    exit_s = round(clip_s * 0.3, 2)
    return [
        ("intro", INTRO_S / 2),
        ("name screen", INTRO_S + NAME_SCREEN_S * 0.6),
        ("clip + watermark", clips_start + clip_s * 0.4),
        ("slide transition", jump_start + 0.5),
        ("freefall (slow motion)", jump_start + exit_s + 2.0),
        ("outro", programme_s - OUTRO_S / 2),
    ]


def grab(video: Path, at_s: float, caption: str, target: Path) -> None:
    label = caption.replace(":", r"\:")
    ffmpeg("-ss", f"{at_s:.3f}", "-i", str(video), "-frames:v", "1", "-vf",
           f"scale={TILE_W}:{TILE_H},drawtext=fontfile={FONT}:text='{label}':x=8:y=h-th-8:"
           "fontsize=18:fontcolor=white:box=1:boxcolor=black@0.6:boxborderw=5",
           str(target))  # fmt: skip


def tile(frames: Path, out: Path) -> Path:
    """3x2 tiles with a 256-colour palette; JPEG instead if the PNG is over the limit."""
    out.parent.mkdir(parents=True, exist_ok=True)
    pattern = str(frames / "frame%d.png")
    ffmpeg("-i", pattern, "-filter_complex",
           "tile=3x2:padding=0,split[a][b];[a]palettegen=max_colors=256:stats_mode=full[p];"
           "[b][p]paletteuse=dither=bayer:bayer_scale=3", "-frames:v", "1",
           "-pred", "mixed", "-update", "1", str(out))  # fmt: skip
    if out.stat().st_size <= LIMIT_BYTES:
        return out
    jpeg = out.with_suffix(".jpg")
    ffmpeg("-i", pattern, "-vf", "tile=3x2", "-frames:v", "1", "-q:v", "4", "-update", "1",
           str(jpeg))  # fmt: skip
    out.unlink()
    return jpeg


async def main(args: argparse.Namespace) -> None:
    shape = Shape(minutes=20 / 60, width=1280, height=720, fps=30, preset="veryfast",
                  transition="slide")  # fmt: skip
    work = Path(tempfile.mkdtemp(prefix="stinercut-strip-"))
    try:
        rendered = await render_customer_video(work, shape)
        job, body, main_file = rendered.job, rendered.body, rendered.files[0]
        probed = await trio.to_thread.run_sync(partial(
            subprocess.run, ["ffprobe", "-v", "error", "-show_entries", "format=duration",
                             "-of", "csv=p=0", str(main_file)],
            capture_output=True, text=True, check=True,
        ))  # fmt: skip
        programme = float(probed.stdout)
        frames = work / "frames"
        frames.mkdir()
        for index, (caption, at_s) in enumerate(frame_times(programme, rendered.clip_s), start=1):
            grab(main_file, at_s, caption, frames / f"frame{index}.png")
        image = tile(frames, args.out)
        size = image.stat().st_size
        print(f"{image}: {size / 1024:.0f} KB from {main_file.name} ({programme:.2f} s, "
              f"job {job['uuid']})")  # fmt: skip
        if size > LIMIT_BYTES:
            raise SystemExit(f"{image} is over {LIMIT_BYTES // 1024} KB")
        print("request body:")
        print(json.dumps(body, indent=2, ensure_ascii=False))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "customer-video-strip.png")
    trio.run(main, parser.parse_args())
