"""Customer video benchmark: a full customer video with every option on, through the service.

Starts the real service (Hypercorn on 127.0.0.1 in this process, a throw-away SQLite
database and storage folder), makes the sources with ffmpeg's lavfi (nothing binary is
checked in) and renders, through ``POST /api/projects/{uuid}/render``:

intro → name screen (animated ``pax_template`` SVG, DejaVuSans, blurred still, a
jingle) → clips with crossfades (or ``--transition slide``) → outro; watermark on the
clips; music per phase (bed, freefall track from exit to deployment set by hand on one
clip, canopy track), ducking, loudness target −14 LUFS; a slow-motion window around
the exit (the freefall clip is 60 fps, so real frames); editions ``vertical``
(1080x1920, cropped at the focus) and ``preview`` (640 px) written by the same ffmpeg run.

Prints:

* **realtime factor**: programme seconds / wall seconds of the job (POST → completed);
* **peak RSS of the service process tree** (this process, which is the service, plus
  every descendant: the guard, ffmpeg, ffprobe, the name screen's worker), sampled from
  /proc every 0.2 s, and the largest single child's exact peak (``ru_maxrss``);
* **job vs by hand**: the job's wall time, and the lifetime of its render ffmpeg,
  against the same ffmpeg command run by hand — rebuilt the way the job builds it
  (``prepare_inputs`` → ``add_name_screen`` → ``build_plan``; the filter script written
  into a folder like the job's temp folder) and run with plain ``subprocess``.

    .venv/bin/python bench/customer_video.py [--minutes 3] [--repeats 1] [--quick]
        [--transition slide] [--keep]

``--quick`` is a smoke run (640x360, ultrafast, 20 s unless ``--minutes``). ``--keep``
keeps the temp folder, with the rebuilt argv and filter script in ``by_hand/``. ``scripts/frame_strip`` uses
:func:`render_customer_video` for the README's frame strip.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any

import attrs
import httpx
import trio
from hypercorn.config import Config
from hypercorn.trio import serve

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from stinercut_svc.app import create_app  # noqa: E402
from stinercut_svc.config import Settings  # noqa: E402
from stinercut_svc.context import StinercutApp  # noqa: E402
from stinercut_svc.jobs import queue  # noqa: E402
from stinercut_svc.jobs.plan import build_plan  # noqa: E402
from stinercut_svc.media.runner import restrict_inputs  # noqa: E402
from stinercut_svc.models import Asset, AssetType, Project, Video  # noqa: E402
from tests.support.media import ffmpeg  # noqa: E402
from tests.support.processes import _proc_table, descendants, memory_kib  # noqa: E402

DEJAVU = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
RENDER_TIMEOUT_S = 3 * 3600
SAMPLE_S = 0.2
INTRO_S, OUTRO_S, NAME_SCREEN_S = 3.0, 3.0, 4.0

#: The name screen: the newer release's animated format (a band that slides in, the
#: passenger's name fading in over it, the date below). A text layer's y is the top
#: of its line box.
ANIMATION = {
    "duration": NAME_SCREEN_S,
    "layers": [
        {"id": "band", "group_id": "band",
         "initial": {"x": -1920, "y": 0},
         "animations": [{"property": "x", "easing": "ease-out",
                         "keyframes": [{"time": 0, "value": -1920}, {"time": 0.6, "value": 0}]}]},
        {"id": "name", "type": "text", "content": "{{pax_name}}",
         "text_style": {"font_path": "fonts/DejaVuSans.ttf", "font_size": 120,
                        "fill": "#ffffff", "anchor": "middle"},
         "initial": {"x": 960, "y": 460},
         "animations": [{"property": "opacity", "easing": "ease-in-out",
                         "keyframes": [{"time": 0.4, "value": 0}, {"time": 1.2, "value": 1}]}]},
        {"id": "date", "type": "text", "content": "{{date}}",
         "text_style": {"font_path": "fonts/DejaVuSans.ttf", "font_size": 56,
                        "fill": "#ffd200", "anchor": "middle"},
         "initial": {"x": 960, "y": 620}},
    ],
}  # fmt: skip
TEMPLATE = f"""<svg xmlns="http://www.w3.org/2000/svg" width="[[[WIDTH]]]" height="[[[HEIGHT]]]"
     viewBox="0 0 1920 1080">
  <g id="band"><rect x="0" y="420" width="1920" height="300" fill="#0a3d91" opacity="0.85"/></g>
  <script type="application/json" id="stinercut-animation">{json.dumps(ANIMATION)}</script>
</svg>
"""


@attrs.frozen
class Shape:
    """What to render: programme length, sizes, encoder speed."""

    minutes: float
    width: int
    height: int
    fps: int
    preset: str
    transition: str = "crossfade"
    preview_width: int = 640

    @property
    def vertical(self) -> tuple[int, int]:
        """9:16 as wide as the master is high: 1080x1920 for a 1080p master (the phone
        deliverable: a 608 px wide crop scaled up, as a customer would get it)."""
        height = self.height * 16 // 9
        return self.height, height - height % 2


# --- sources --------------------------------------------------------------------


def make_sources(folder: Path, shape: Shape) -> dict[str, Any]:
    """Camera-like clips and the assets, all from lavfi. Returns paths and clip timings.

    The programme is intro + name screen + clips + outro, minus one transition per
    join; the clips share what is left. Clip 1 is the jump (60 fps, wind noise inside
    its freefall window); the others are 30 fps with "speech" (a warbling tone).
    """
    folder.mkdir(parents=True, exist_ok=True)
    total = shape.minutes * 60
    count = 4 if total >= 60 else 3
    overlap = 1.0 if shape.transition != "none" else 0.0
    slow_extra = 2.0  # the slow-motion window adds its own length once (2 s at 0.5)
    clip_s = max(4.0, (total - INTRO_S - NAME_SCREEN_S - OUTRO_S - slow_extra
                       + overlap * (count - 1)) / count)  # fmt: skip
    size = f"{shape.width}x{shape.height}"
    clips = []
    for n in range(count):
        jump = n == 1
        fps = 60 if jump else 30
        path = folder / f"clip{n}.mp4"
        if jump:  # wind (loud pink noise) inside the freefall, speech-like tone around it
            ff = (clip_s * 0.3, clip_s * 0.7)
            sound = (f"anoisesrc=d={clip_s}:c=pink:a=0.3:r=48000:seed=3,"
                     f"volume='if(between(t,{ff[0]:.2f},{ff[1]:.2f}),1,0.05)':eval=frame")  # fmt: skip
        else:
            sound = (f"sine=f={300 + 60 * n}:r=48000:d={clip_s},"
                     "volume='0.5+0.5*sin(2*PI*3*t)':eval=frame")  # fmt: skip
        label = (f"drawtext=fontfile={DEJAVU}:text='camera {n + 1}':fontsize=h/9:x=w/20:"
                 "y=h*0.72:fontcolor=white:box=1:boxcolor=black@0.5:boxborderw=12")  # fmt: skip
        ffmpeg("-f", "lavfi", "-i", f"testsrc2=size={size}:rate={fps}:duration={clip_s}",
               "-f", "lavfi", "-i", sound, "-vf", f"hue=h={70 * n},{label}", "-c:v", "libx264", "-preset", "veryfast",
               "-b:v", "12M" if shape.width >= 1280 else "2M", "-pix_fmt", "yuv420p",
               "-c:a", "aac", "-ac", "1" if jump else "2", "-shortest", str(path))  # fmt: skip
        clips.append(path)
    for name, colour, seconds in (("intro", "0x102040", INTRO_S), ("outro", "0x402010", OUTRO_S)):
        ffmpeg("-f", "lavfi", "-i", f"color=c={colour}:size={size}:rate=30:duration={seconds}",
               "-f", "lavfi", "-i", f"sine=f=660:r=48000:d={seconds}",
               "-vf", "drawbox=x=iw/4:y=ih/3:w=iw/2:h=ih/3:color=white@0.6:t=fill",
               "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p",
               "-c:a", "aac", "-shortest", str(folder / f"{name}.mp4"))  # fmt: skip
    ffmpeg("-f", "lavfi", "-i", "color=c=white@0.7:size=256x96", "-vf",
           "drawbox=x=8:y=8:w=240:h=80:color=0xe0301e@0.9:t=fill", "-frames:v", "1",
           "-pix_fmt", "rgba", str(folder / "mark.png"))  # fmt: skip
    tracks = {"bed": (220, 60), "freefall": (880, 30), "canopy": (330, 90), "jingle": (523, 3)}
    for name, (freq, seconds) in tracks.items():
        ffmpeg("-f", "lavfi", "-i", f"sine=f={freq}:r=44100:d={seconds}", "-f", "lavfi", "-i",
               f"sine=f={freq * 1.5}:r=44100:d={seconds}", "-filter_complex",
               "[0:a][1:a]amerge=inputs=2", "-c:a", "aac", str(folder / f"{name}.m4a"))  # fmt: skip
    (folder / "pax.svg").write_text(TEMPLATE, encoding="utf-8")
    return {"clips": clips, "clip_s": clip_s, "folder": folder}


# --- the service ------------------------------------------------------------------


@asynccontextmanager
async def running_service(root: Path) -> AsyncIterator[tuple[StinercutApp, httpx.AsyncClient]]:
    """The app behind Hypercorn on a free port, on a temp SQLite database under ``root``."""
    settings = Settings(
        database_url=f"sqlite:///{root / 'service.sqlite3'}",
        shared_video_path=root / "storage",
        cors_origins=(),
        detector_url="http://127.0.0.1:9",
        log_level="WARNING",
    )
    app = create_app(settings)
    config = Config()
    config.bind = ["127.0.0.1:0"]
    config.accesslog = None
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        urls = await nursery.start(
            partial(serve, app, config, shutdown_trigger=stop.wait)  # type: ignore[arg-type]
        )
        with trio.fail_after(60):
            await app.supervisor.started.wait()
            await app.schema_ready.wait()
        async with httpx.AsyncClient(base_url=urls[0], timeout=httpx.Timeout(60.0)) as http:
            try:
                yield app, http
            finally:
                stop.set()
                nursery.cancel_scope.cancel()


async def add_asset(app: StinercutApp, kind: AssetType, source: Path, name: str) -> str:
    def create(session) -> str:  # type: ignore[no-untyped-def]
        target = app.storage.uploads / "assets" / source.name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        asset = Asset(type=kind, name=name, path=app.storage.relative(target))
        session.add(asset)
        session.flush()
        return asset.uuid

    return await app.db.run(create)


async def add_project(app: StinercutApp, name: str, clips: list[Path]) -> tuple[str, list[str]]:
    """A project (the passenger's name) with the clips in order: its uuid and the clips'."""

    def create(session) -> tuple[str, list[str]]:  # type: ignore[no-untyped-def]
        project = Project(name=name, settings="{}")
        session.add(project)
        session.flush()
        folder = app.storage.uploads / project.uuid
        folder.mkdir(parents=True, exist_ok=True)
        videos = []
        for order, source in enumerate(clips):
            target = folder / f"{order}-{source.name}"
            shutil.copyfile(source, target)
            video = Video(project_id=project.id, filename=source.name, order=order,
                          path=app.storage.relative(target))  # fmt: skip
            session.add(video)
            videos.append(video)
        session.flush()
        return project.uuid, [v.uuid for v in videos]

    return await app.db.run(create)


async def customer_project(
    app: StinercutApp, media: dict[str, Any], shape: Shape
) -> tuple[str, dict[str, Any]]:
    """Assets, font and project in the service; the render body with every option on."""
    folder: Path = media["folder"]
    fonts = app.storage.root / "fonts"
    fonts.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(DEJAVU, fonts / "DejaVuSans.ttf")
    assets = {
        "intro": await add_asset(app, AssetType.INTRO, folder / "intro.mp4", "Intro"),
        "outro": await add_asset(app, AssetType.OUTRO, folder / "outro.mp4", "Outro"),
        "mark": await add_asset(app, AssetType.WATERMARK, folder / "mark.png", "Logo"),
        "bed": await add_asset(app, AssetType.AUDIO, folder / "bed.m4a", "Bed"),
        "freefall": await add_asset(
            app, AssetType.AUDIO_FREEFALL, folder / "freefall.m4a", "Freefall"
        ),
        "canopy": await add_asset(app, AssetType.AUDIO, folder / "canopy.m4a", "Canopy"),
        "jingle": await add_asset(app, AssetType.AUDIO, folder / "jingle.m4a", "Jingle"),
        "pax": await add_asset(app, AssetType.PAX_TEMPLATE, folder / "pax.svg", "Welcome band"),
    }
    project, videos = await add_project(app, "Jean-Luc O'Brien-Núñez", media["clips"])
    clip_s: float = media["clip_s"]
    jump = videos[1]
    vertical_w, vertical_h = shape.vertical
    body = customer_body(assets, jump, clip_s, shape, vertical=(vertical_w, vertical_h))
    return project, body


def customer_body(
    assets: dict[str, str], jump: str, clip_s: float, shape: Shape, *, vertical: tuple[int, int]
) -> dict[str, Any]:
    """The render request: every option of the customer video on."""
    exit_s, deployment_s = round(clip_s * 0.3, 2), round(clip_s * 0.7, 2)
    return {
        "intro_asset": assets["intro"],
        "outro_asset": assets["outro"],
        "watermark_asset": assets["mark"],
        "watermark_position": "top-right",
        "watermark_on_intro": False,
        "audio_asset": assets["bed"],
        "transition": shape.transition,
        "transition_duration": 1.0,
        "transition_direction": "left",
        "output": {"width": shape.width, "height": shape.height, "fps": shape.fps,
                   "codec": "h264", "crf": 23, "preset": shape.preset},
        "editions": [{"name": "vertical", "width": vertical[0], "height": vertical[1]},
                     {"name": "preview", "width": shape.preview_width}],
        "focus_x": 0.5,
        "name_screen": {"enabled": True, "template_asset": assets["pax"],
                        "font": "fonts/DejaVuSans.ttf", "background_blur": True,
                        "sound_asset": assets["jingle"], "duration": NAME_SCREEN_S},
        "audio": {
            "music": {"freefall": assets["freefall"], "canopy": assets["canopy"]},
            "crossfade_s": 1, "fade_in_s": 2, "fade_out_s": 3,
            "freefall_camera_level": 0.1, "ducking": True, "duck_db": 12,
            "normalize": True, "loudness_lufs": -14, "true_peak_dbtp": -1,
            "clips": {jump: {"freefall_start_s": exit_s, "freefall_end_s": deployment_s}},
        },
        "slow_motion": {"around_exit": {"before_s": 1.0, "after_s": 1.0, "speed": 0.5}},
    }  # fmt: skip


# --- measuring ----------------------------------------------------------------------


def _rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


@attrs.define
class TreeSampler:
    """Peak summed RSS of this process and its descendants; lifetimes of ffmpeg children."""

    peak_kib: int = 0
    ffmpeg_seen: dict[int, list[float]] = attrs.Factory(dict)

    async def run(self) -> None:
        me = os.getpid()
        while True:
            table = _proc_table()
            tree = descendants(me)
            self.peak_kib = max(self.peak_kib, _rss_kib(me) + sum(_rss_kib(p) for p in tree))
            now = time.perf_counter()
            for pid in tree:
                if pid in table and table[pid][0] == "ffmpeg" and table[pid][2] != "Z":
                    self.ffmpeg_seen.setdefault(pid, [now, now])[1] = now
            await trio.sleep(SAMPLE_S)

    def longest_ffmpeg_s(self) -> float:
        """The render's ffmpeg: the longest-lived one (loudness/still ones are short)."""
        return max((end - start for start, end in self.ffmpeg_seen.values()), default=0.0)


async def render_job(
    app: StinercutApp, http: httpx.AsyncClient, project: str, body: dict[str, Any]
) -> tuple[dict[str, Any], float]:
    """POST the render, poll the job until it finishes: (job row, wall seconds)."""
    started = time.perf_counter()
    response = await http.post(f"/api/projects/{project}/render", json=body)
    if response.status_code != 202:
        raise RuntimeError(f"render request refused: {response.status_code} {response.text}")
    job_uuid = response.json()["uuid"]
    with trio.fail_after(RENDER_TIMEOUT_S):
        while True:
            job = (await http.get(f"/api/jobs/{job_uuid}")).json()
            if job["status"] in ("completed", "failed", "cancelled"):
                break
            await trio.sleep(0.25)
    elapsed = time.perf_counter() - started
    if job["status"] != "completed":
        raise RuntimeError(f"render {job['status']}: {job.get('error_message')}")
    return job, elapsed


async def job_argv(app: StinercutApp, job: dict[str, Any], folder: Path) -> tuple[list[str], float]:
    """The job's ffmpeg argv, rebuilt as the job builds it, writing into ``folder``."""
    handler: Any = app.supervisor.handler("render")
    context = await app.db.run(partial(queue.load_context, job_id=job["id"]))
    inputs = await handler.prepare_inputs(context)
    folder.mkdir(parents=True, exist_ok=True)
    inputs = await handler.add_name_screen(context, inputs, folder)
    plan = build_plan(inputs, folder / "output.mp4", folder / "inputs.ffconcat")
    if plan.concat_list is not None:
        (folder / "inputs.ffconcat").write_text(plan.concat_list)
    if plan.filter_script is not None:
        plan.filter_script[0].write_text(plan.filter_script[1])
    argv = ["ffmpeg", "-hide_banner", "-nostdin", "-nostats", "-loglevel", "error",
            "-progress", "pipe:1", *restrict_inputs(list(plan.args))]  # fmt: skip
    (folder / "argv.json").write_text(json.dumps(argv))  # kept with --keep, to re-run by hand
    return argv, plan.duration


async def by_hand(argv: list[str]) -> float:
    """Wall seconds of ``argv`` run with plain ``subprocess`` (no runner, no guard)."""
    started = time.perf_counter()
    await trio.to_thread.run_sync(
        partial(
            subprocess.run, argv, check=True, stdout=subprocess.DEVNULL, timeout=RENDER_TIMEOUT_S
        )
    )
    return time.perf_counter() - started


def loudness_lufs(path: Path) -> str:
    """Integrated loudness of a file (ffmpeg's EBU R128 meter), for the printout."""
    result = subprocess.run(
        ["ffmpeg", "-hide_banner", "-nostdin", "-i", str(path), "-vn", "-af", "ebur128=peak=true",
         "-f", "null", "-"], capture_output=True, text=True, check=True,
    )  # fmt: skip
    summary = result.stderr[result.stderr.rfind("Summary:") :]
    values = [line.split(":")[1].strip() for line in summary.splitlines()
              if line.strip().startswith(("I:", "Peak:"))]  # fmt: skip
    return ", ".join(values)


def video_size(path: Path) -> str:
    result = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
         "stream=width,height:format=duration", "-of", "json", str(path)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    data = json.loads(result.stdout)
    stream = data["streams"][0]
    return f"{stream['width']}x{stream['height']} {float(data['format']['duration']):.2f} s"


@attrs.frozen
class Rendered:
    job: dict[str, Any]
    body: dict[str, Any]  # the render request
    files: list[Path]  # main output first, then the editions
    clip_s: float  # length of each generated clip


async def render_customer_video(
    root: Path, shape: Shape, *, after: Callable[..., Any] | None = None
) -> Rendered:
    """Make the sources, start the service, render: the job, its request and files.

    ``after(app, http, project, body, job, sampler, wall, files)`` (async) runs while the
    service is still up.
    """
    media = make_sources(root / "media", shape)
    async with running_service(root) as (app, http):
        project, body = await customer_project(app, media, shape)
        sampler = TreeSampler()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(sampler.run)
            job, wall = await render_job(app, http, project, body)
            nursery.cancel_scope.cancel()
        outputs = (await http.get(f"/api/jobs/{job['uuid']}/outputs")).json()["items"]
        files = [app.storage.resolve(job["output_path"])]
        files += [app.storage.output / project / f"{job['uuid']}-{item['name']}.mp4"
                  for item in outputs if item["name"] != "main"]  # fmt: skip
        if after is not None:
            await after(app, http, project, body, job, sampler, wall, files)
    return Rendered(job, body, files, media["clip_s"])


async def main(args: argparse.Namespace) -> None:
    if args.quick:
        shape = Shape(minutes=args.minutes or 20 / 60, width=640, height=360, fps=30, preset="ultrafast",
                      transition=args.transition, preview_width=320)  # fmt: skip
    else:
        shape = Shape(minutes=args.minutes or 3.0, width=1920, height=1080, fps=30, preset=args.preset,
                      transition=args.transition)  # fmt: skip
    root = Path(tempfile.mkdtemp(prefix="stinercut-customer-"))
    print(f"cpus {os.cpu_count()}, load average {os.getloadavg()[0]:.1f}; "
          f"{shape.minutes:g} min {shape.width}x{shape.height}@{shape.fps} {shape.preset}, "
          f"transition {shape.transition}; sources in {root}", flush=True)  # fmt: skip

    async def report(
        app: StinercutApp,
        http: httpx.AsyncClient,
        project: str,
        job_body: dict[str, Any],
        job: dict[str, Any],
        sampler: TreeSampler,
        wall: float,
        files: list[Path],
    ) -> None:
        child_peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        service_hwm_mb = memory_kib(os.getpid())["VmHWM"] / 1024
        argv, programme = await job_argv(app, job, root / "by_hand")
        walls, renders, hands = [wall], [sampler.longest_ffmpeg_s()], []
        for repeat in range(args.repeats):
            # Alternating order from the second round, so load changes hit both sides.
            if repeat % 2:
                hands.append(await by_hand(argv))
            if repeat:  # later rounds: the same request again (loudness cache warm)
                again = TreeSampler()
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(again.run)
                    _, seconds = await render_job(app, http, project, job_body)
                    nursery.cancel_scope.cancel()
                walls.append(seconds)
                renders.append(again.longest_ffmpeg_s())
                sampler.peak_kib = max(sampler.peak_kib, again.peak_kib)
            if not repeat % 2:
                hands.append(await by_hand(argv))
            print(f"  round {repeat + 1}: job {walls[-1]:.1f} s (its ffmpeg {renders[-1]:.1f} s), "
                  f"by hand {hands[-1]:.1f} s", flush=True)  # fmt: skip
        wall, render_s, hand = (statistics.median(v) for v in (walls, renders, hands))
        for path in files:
            print(f"  {path.name}: {video_size(path)}")
        print(f"  main output loudness (I, true peak): {loudness_lufs(files[0])}")
        print(f"programme {programme:.2f} s; job (POST -> completed) {wall:.1f} s wall; "
              f"its render ffmpeg ran {render_s:.1f} s (sampled every {SAMPLE_S} s)")  # fmt: skip
        print(f"realtime factor: x{programme / wall:.3f} (programme s / wall s of the job; "
              f"x{programme / render_s:.3f} for its ffmpeg alone)")  # fmt: skip
        print(f"peak RSS, service process tree (this process + guard + ffmpeg ...): "
              f"{sampler.peak_kib / 1024:.0f} MB; largest single child {child_peak_mb:.0f} MB; "
              f"service process itself {service_hwm_mb:.0f} MB (with the bench's client)")  # fmt: skip
        print(f"same ffmpeg command by hand: {hand:.1f} s; job / by hand {wall / hand:.3f}x "
              f"(includes probing, loudness measurement, name screen rasterising); "
              f"job's ffmpeg / by hand {render_s / hand:.3f}x (target <= 1.05)")  # fmt: skip
        print(f"load average after: {os.getloadavg()[0]:.1f}")

    try:
        await render_customer_video(root, shape, after=report)
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=None, help="programme length (default 3)")
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: 640x360, ultrafast, 20 s unless --minutes"
    )
    parser.add_argument(
        "--transition", default="crossfade", choices=["crossfade", "slide", "fade", "wipe"]
    )
    parser.add_argument("--preset", default="veryfast")
    parser.add_argument("--repeats", type=int, default=1, help="job + by-hand rounds (medians)")
    parser.add_argument(
        "--keep", action="store_true", help="keep the temp folder (sources, outputs)"
    )
    trio.run(main, parser.parse_args())
