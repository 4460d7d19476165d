"""Camera cards built with ffmpeg for the ingest tests: real files, real tags, real audio.

Clips are tiny (64x36 at 5 fps) so the suite stays fast; only the audio matters for
freefall detection: quiet pink noise as the ground/plane bed and white noise
band-passed to 800–1500 Hz (the wind roar of freefall) at a known start and length.
"""

from __future__ import annotations

from pathlib import Path

from tests.support.media import ffmpeg

FREEFALL_AMPLITUDE = 0.5
QUIET_AMPLITUDE = 0.01


def _audio_graph(
    seconds: float,
    freefall: tuple[float, float] | None,
    canopy: tuple[float, float] | None,
) -> tuple[list[str], str]:
    """lavfi inputs and a filter graph ending in ``[a]``: quiet bed plus wind bursts."""
    inputs = ["-f", "lavfi", "-i", f"anoisesrc=d={seconds}:c=pink:a={QUIET_AMPLITUDE}:r=48000"]
    parts: list[str] = []
    labels = ["[1:a]"]
    index = 2
    for span, amplitude in ((freefall, FREEFALL_AMPLITUDE), (canopy, FREEFALL_AMPLITUDE / 8)):
        if span is None:
            continue
        start, length = span
        inputs += ["-f", "lavfi", "-i", f"anoisesrc=d={length}:c=white:a={amplitude}:r=48000"]
        delay = int(round(start * 1000))
        parts.append(
            f"[{index}:a]highpass=f=800,highpass=f=800,lowpass=f=1500,lowpass=f=1500,"
            f"volume=4,adelay={delay}:all=1,apad=whole_dur={seconds}[w{index}]"
        )
        labels.append(f"[w{index}]")
        index += 1
    if len(labels) == 1:
        parts.append("[1:a]anull[a]")
    else:
        parts.append("".join(labels) + f"amix=inputs={len(labels)}:duration=first:normalize=0[a]")
    return inputs, ";".join(parts)


def make_jump_clip(
    path: Path,
    *,
    seconds: float,
    freefall: tuple[float, float] | None = None,
    canopy: tuple[float, float] | None = None,
    creation_time: str | None = None,
    size: str = "64x36",
    rate: int = 5,
    chapters: list[tuple[Path, float]] | None = None,
    video_bitrate: str | None = None,
) -> list[Path]:
    """A clip of quiet audio with freefall noise at ``freefall=(start, length)``.

    ``chapters``: instead of one file, write consecutive pieces ``(path, length)`` of
    the same timeline (a GoPro recording split into chapters); ``path`` is then unused.
    ``video_bitrate`` (e.g. ``40M``) makes a camera-sized file for benchmarks.
    Returns the files written.
    """
    inputs, graph = _audio_graph(seconds, freefall, canopy)
    video = ["-f", "lavfi", "-i", f"color=c=gray:size={size}:rate={rate}:duration={seconds}"]
    encode = [
        "-map", "0:v", "-map", "[a]",
        "-c:v", "libx264", "-preset", "ultrafast", "-g", str(rate), "-pix_fmt", "yuv420p",
        "-c:a", "aac", "-b:a", "64k", "-ac", "2",
    ]  # fmt: skip
    if video_bitrate:
        # CBR with filler data: a flat test picture still weighs what a camera file does.
        encode[6:6] = [
            "-b:v", video_bitrate, "-minrate", video_bitrate, "-maxrate", video_bitrate,
            "-bufsize", video_bitrate, "-x264-params", "nal-hrd=cbr",
        ]  # fmt: skip
    tags = ["-metadata", f"creation_time={creation_time}"] if creation_time else []
    outputs: list[str] = []
    written: list[Path] = []
    if chapters is None:
        outputs += [*encode, *tags, "-t", str(seconds), str(path)]
        written.append(path)
    else:
        offset = 0.0
        split = f"{graph};[a]asplit={len(chapters)}" + "".join(
            f"[a{i}]" for i in range(len(chapters))
        )
        graph = split
        vsplit = f"[0:v]split={len(chapters)}" + "".join(f"[v{i}]" for i in range(len(chapters)))
        graph = f"{graph};{vsplit}"
        for i, (chapter_path, length) in enumerate(chapters):
            graph += (
                f";[a{i}]atrim=start={offset}:duration={length},asetpts=PTS-STARTPTS[ao{i}]"
                f";[v{i}]trim=start={offset}:duration={length},setpts=PTS-STARTPTS[vo{i}]"
            )
            outputs += [
                "-map", f"[vo{i}]", "-map", f"[ao{i}]",
                *encode[4:], *tags, str(chapter_path),
            ]  # fmt: skip
            offset += length
            written.append(chapter_path)
    ffmpeg(*video, *inputs, "-filter_complex", graph, *outputs)
    return written


def make_plain_clip(
    path: Path, *, seconds: float = 1.0, creation_time: str | None = None, size: str = "64x36"
) -> Path:
    """A short clip with a tone (a phone clip, a QR shot): no freefall in it."""
    args = [
        "-f", "lavfi", "-i", f"color=c=blue:size={size}:rate=5:duration={seconds}",
        "-f", "lavfi", "-i", f"sine=frequency=300:sample_rate=48000:duration={seconds}",
        "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
        "-c:a", "aac", "-b:a", "64k", "-shortest",
    ]  # fmt: skip
    if creation_time:
        args += ["-metadata", f"creation_time={creation_time}"]
    ffmpeg(*args, str(path))
    return path


def gopro_folder(card: Path, name: str = "100GOPRO") -> Path:
    folder = card / "DCIM" / name
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def write_bytes_file(path: Path, size: int, *, seed: int = 0) -> Path:
    """A file of ``size`` pseudo-random bytes (copy tests do not need real video)."""
    import random

    rng = random.Random(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as out:
        left = size
        while left > 0:
            chunk = min(left, 1 << 20)
            out.write(rng.randbytes(chunk))
            left -= chunk
    return path
