"""Audio benchmark: what measuring a source's loudness costs, and what the sound chain costs.

1. **measurement** of a ``--seconds`` long camera-like file (AAC stereo,
   48 kHz, in an MP4 with a 320x240 picture that is never decoded): the K-weighted
   100 ms energies through :func:`stinercut_svc.media.loudness.measure`, against
   the baseline in the same run: ffmpeg decoding the same audio to ``-f null``
   (the floor of any measurement). Realtime factors and the ratio of medians;
2. a **cache hit** (:class:`LoudnessCache` with the entry on disk, fresh object);
3. the **sound chain** of a render: ``programme_sound`` (music bed with a
   freefall switch, freefall lowering, ducking, gain, limiter) over the same
   length, rendered to ``-f null``, against the plain mix it replaces (the bed
   looped, cut, ``amix``) in the same run.

    .venv/bin/python bench/audio_loudness.py [--seconds 180] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from stinercut_svc.media.filtergraph import Graph  # noqa: E402
from stinercut_svc.media.loudness import LoudnessCache, measure  # noqa: E402
from stinercut_svc.render.music import (  # noqa: E402
    AudioOptions,
    Placement,
    plan_music,
    resolve_audio,
)
from stinercut_svc.render.recipes.audio import (  # noqa: E402
    AudioPrep,
    CameraPart,
    Track,
    camera_audio,
    plan_levels,
    programme_sound,
    stereo_chain,
)

BED = "00000000-0000-0000-0000-0000000000b1"
FREEFALL = "00000000-0000-0000-0000-0000000000f1"


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-y", *args],
                   check=True)  # fmt: skip


def timed(fn) -> float:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=180.0)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    seconds = args.seconds
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        clip = d / "camera.mp4"
        ffmpeg("-f", "lavfi", "-i", f"testsrc2=s=320x240:r=25:d={seconds}",
               "-f", "lavfi", "-i", f"anoisesrc=d={seconds}:c=pink:a=0.2:r=48000",
               "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", "-ac", "2",
               "-shortest", str(clip))  # fmt: skip
        ffmpeg("-f", "lavfi", "-i", "sine=f=440:r=48000:d=60", "-ac", "2", str(d / "bed.wav"))
        ffmpeg("-f", "lavfi", "-i", "sine=f=1000:r=48000:d=60", str(d / "ff.wav"))

        decode, measured = [], []
        for _ in range(args.repeats):
            decode.append(
                timed(lambda: ffmpeg("-i", str(clip), "-map", "0:a:0", "-f", "null", "-"))
            )
            measured.append(timed(lambda: trio.run(measure, clip, stereo_chain(2))))
        cache = LoudnessCache(d / "cache")
        trio.run(cache.get, clip, stereo_chain(2))
        hits = [timed(lambda: trio.run(LoudnessCache(d / "cache").get, clip, stereo_chain(2)))
                for _ in range(args.repeats)]  # fmt: skip

        audio = resolve_audio(AudioOptions.model_validate({"music": {"freefall": FREEFALL}}),
                              audio_asset=BED)  # fmt: skip
        exit_at, deploy_at = seconds * 0.3, seconds * 0.3 + 45
        plan = plan_music([Placement(0.0, seconds, None, ((exit_at, deploy_at),))], seconds,
                          audio, {BED: 60.0, FREEFALL: 60.0})  # fmt: skip
        loud = trio.run(cache.get, clip, stereo_chain(2))
        music = {BED: trio.run(cache.get, d / "bed.wav", stereo_chain(2)),
                 FREEFALL: trio.run(cache.get, d / "ff.wav", stereo_chain(1))}  # fmt: skip
        levels = plan_levels([CameraPart(loud, 0, seconds, 0, seconds)], plan, music, audio)
        tracks = {BED: Track(d / "bed.wav", 2, levels.music_gain_db[BED]),
                  FREEFALL: Track(d / "ff.wav", 1, levels.music_gain_db[FREEFALL])}  # fmt: skip
        prep = AudioPrep(audio, plan, levels, tracks)

        def chain() -> list[str]:
            g = Graph()
            sound = camera_audio(
                g, g.input(clip, "a"), channels=2, gain_db=levels.camera_gain_db[0]
            )
            g.output("-", programme_sound(g, sound, prep), options=["-f", "null"])
            return g.compile(d)

        def plain() -> list[str]:
            g = Graph()
            sound = g.filter("aformat", g.input(clip, "a"), sample_fmts="fltp",
                             sample_rates=48000, channel_layouts="stereo")  # fmt: skip
            bed = g.input(d / "bed.wav", "a", options=["-stream_loop", "-1"])
            bed = g.filter("atrim", bed, end=seconds)
            mix = g.filter("amix", sound, bed, inputs=2, duration="first", normalize=0)
            g.output("-", mix, options=["-f", "null"])
            return g.compile(d)

        full, base = [], []
        for _ in range(args.repeats):
            base.append(timed(lambda: ffmpeg(*plain())))
            full.append(timed(lambda: ffmpeg(*chain())))

    med = statistics.median
    print(f"source: {seconds:g} s AAC stereo in MP4 (320x240 picture not decoded); "
          f"median of {args.repeats}")  # fmt: skip
    print(
        f"  audio decode to null (baseline): {med(decode):.3f} s = {seconds / med(decode):.0f}x realtime"
    )
    print(
        f"  loudness measurement:            {med(measured):.3f} s = "
        f"{seconds / med(measured):.0f}x realtime, {med(measured) / med(decode):.2f}x the decode"
    )
    print(f"  cache hit (fresh cache object):  {med(hits) * 1000:.1f} ms")
    print(f"  plain music mix (baseline):      {med(base):.3f} s")
    print(f"  full sound chain:                {med(full):.3f} s = {med(full) / med(base):.2f}x "
          f"the plain mix, {seconds / med(full):.0f}x realtime")  # fmt: skip


if __name__ == "__main__":
    main()
