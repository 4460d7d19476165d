"""Find a QR code in a video: frames from ffmpeg, decoded by zxing-cpp in a worker process.

Staff film a printed QR (payload ``Stinercut: <uuid>``) as the first shot of a
jump; ``POST /api/detectqr`` and the ingest pipeline both ask "is there a code
in this clip, and where?". :func:`scan` answers for a list of sample times and
stops at the first frame that holds a code.

How frames are made: **one** ffmpeg for all sample times. Each time is its own
input (``-ss T -i file``: a fast seek to the keyframe before ``T``, then decoding
up to ``T``), each input is trimmed to one frame, scaled to at most 1920 px wide
(zxing-cpp gains nothing from more pixels, and a 4K frame would be 4x the work),
turned grey and concatenated; the frames come out of a pipe as PGM images
(``image2pipe``), which carry their own size, so rotated and odd-sized clips
need no arithmetic here. Nothing touches the disk. One process instead of one
per time saves ffmpeg's start-up and probing per sample: for the 8 samples of a
60 s 1080p clip one ffmpeg per time took 2.3–2.8x as long (``bench/detectqr.py``,
loaded machine; 0.66–0.89 s vs 1.02–1.13 s CPU unloaded). Times are sorted,
so a time past the last frame can only be followed by other such times: its
input yields no frame and every later one neither, which is why frame *k* of
the pipe is always sample *k*, and why samples beyond the end are simply not
scanned rather than errors.

While one frame is decoded, ffmpeg already seeks and decodes the next (a
one-frame channel between them); once a code is found the scan's cancel scope
ends and ffmpeg is killed (it writes no file, so there is nothing to finish).

Why a worker process for decoding: zxing-cpp 3.1's binding keeps the GIL while
it decodes (measured: two threads decode no faster than one, and a pure-Python
loop beside a decoding thread stalls for the whole of each decode: ~6 ms for a
1080p test-pattern frame, ~20 ms for a noisy one). In a thread every decode
competes with the trio thread, i.e. with every request of the service; in a
worker process (trio-parallel) it does not, and shipping a 2 MB grey frame
there costs a few milliseconds. The bench compares the three placements by the
trio loop's lateness during scans (worker process best, trio thread worst).
The API passes the app's worker context (``app.font_workers``); the default is
trio-parallel's default context.
"""

from __future__ import annotations

import collections
import os
import re
import signal
import subprocess
from collections.abc import Awaitable, Callable, Iterable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import attrs
import numpy
import trio
import trio_parallel
import zxingcpp

from .runner import (
    ToolTimeoutError,
    _require,
    _single,
    _spawn_options,
    guarded,
    restrict_inputs,
)

#: Frames wider than this are scaled down (aspect kept) before decoding.
MAX_FRAME_WIDTH = 1920
#: The fixed samples of ``POST /api/detectqr`` (seconds), as the original.
DETECT_FIXED_TIMES = (0.0, 1.0, 2.0, 5.0)
#: Clips longer than this also get the fractional samples below.
DETECT_LONG_CLIP_S = 10.0
DETECT_FRACTIONS = (0.10, 0.25, 0.50, 0.75)
DETECT_MAX_SAMPLES = 8
#: A whole scan (all samples) may take this long before it is abandoned.
SCAN_TIMEOUT_S = 120.0
STDERR_TAIL_LINES = 10

#: ``RunSync(fn, *args)``: run a sync function off the trio thread and return its
#: result, e.g. ``WorkerContext.run_sync`` or :func:`trio_parallel.run_sync`.
RunSync = Callable[..., Awaitable[Any]]

_PAYLOAD_RE = re.compile(r"^Stinercut:\s*([0-9a-f-]{36})$", re.IGNORECASE)
_UUID_RE = re.compile(
    r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE
)
_CANONICAL_UUID_RE = re.compile(rf"^{_UUID_RE.pattern}$", re.IGNORECASE)
_PGM_HEADER_RE = re.compile(rb"^P5\s+(\d+)\s+(\d+)\s+(\d+)\s")
#: Longest PGM header we wait for before declaring the stream garbage.
_PGM_HEADER_MAX = 64


class QrScanError(RuntimeError):
    """ffmpeg could not produce a single frame; the message says why (for a 422)."""


@attrs.frozen
class Frame:
    """One grey frame: ``width * height`` bytes, row after row."""

    width: int
    height: int
    pixels: bytes


@attrs.frozen
class QrScan:
    """What a scan found. ``sampled`` lists the times of the frames actually decoded."""

    content: str | None
    timestamp: float | None
    sampled: tuple[float, ...]

    @property
    def found(self) -> bool:
        return self.content is not None

    @property
    def attempts(self) -> int:
        return len(self.sampled)


def detect_times(duration: float) -> list[float]:
    """The samples of ``POST /api/detectqr``: 0, 1, 2, 5 s, plus 10/25/50/75 % of long clips.

    As the original: times at or past the end are dropped, duplicates merged,
    at most eight, in ascending order.
    """
    times = list(DETECT_FIXED_TIMES)
    if duration > DETECT_LONG_CLIP_S:
        times += [duration * fraction for fraction in DETECT_FRACTIONS]
    return sorted({round(t, 3) for t in times if t < duration})[:DETECT_MAX_SAMPLES]


def parse_payload(text: str) -> str | None:
    """The customer UUID in a QR payload, lower-case, or None.

    ``Stinercut: <uuid>`` (any case, any spacing after the colon) is the printed
    format; otherwise the first UUID anywhere in the text counts (older prints).
    """
    stripped = text.strip()
    match = _PAYLOAD_RE.match(stripped)
    if match and _CANONICAL_UUID_RE.match(match.group(1)):
        return match.group(1).lower()
    found = _UUID_RE.search(stripped)
    return found.group(0).lower() if found else None


def decode_frame(frame: Frame) -> str | None:
    """The text of the first QR code in ``frame``, or None. CPU-bound, holds the GIL.

    Rotated, inverted and small codes are tried too (zxing-cpp's defaults).
    """
    # A grey (height, width) uint8 array over the frame's bytes: no copy.
    image = numpy.frombuffer(frame.pixels, dtype=numpy.uint8).reshape(frame.height, frame.width)
    formats = zxingcpp.BarcodeFormats(zxingcpp.BarcodeFormat.QRCode)
    for code in zxingcpp.read_barcodes(image, formats=formats):
        if code.valid:
            return code.text
    return None


def frames_command(path: Path, times: Sequence[float], *, ffmpeg: str = "ffmpeg") -> list[str]:
    """The ffmpeg command writing one grey PGM frame per time to stdout, in order."""
    inputs: list[str] = []
    chains: list[str] = []
    for index, at in enumerate(times):
        inputs += ["-ss", f"{at:.3f}", "-i", str(path)]
        chains.append(
            f"[{index}:v:0]trim=end_frame=1,setpts=PTS-STARTPTS,"
            f"scale=w='min({MAX_FRAME_WIDTH},iw)':h=-2:flags=area,format=gray[f{index}]"
        )
    joined = "".join(f"[f{index}]" for index in range(len(times)))
    graph = ";".join([*chains, f"{joined}concat=n={len(times)}:v=1:a=0[out]"])
    return [
        ffmpeg, "-hide_banner", "-nostdin", "-nostats", "-loglevel", "error",
        # Only local files, even if the "video" is a playlist naming URLs.
        *restrict_inputs(inputs),
        "-filter_complex", graph, "-map", "[out]",
        # One frame per input, whatever their timestamps: no duplicates, no drops.
        "-fps_mode", "passthrough",
        "-f", "image2pipe", "-c:v", "pgm", "pipe:1",
    ]  # fmt: skip


async def scan(
    path: Path,
    times: Iterable[float],
    *,
    ffmpeg: str = "ffmpeg",
    run_sync: RunSync | None = None,
    timeout: float = SCAN_TIMEOUT_S,
) -> QrScan:
    """Decode the frames at ``times`` (seconds) until one holds a QR code.

    ``run_sync`` runs :func:`decode_frame` off the trio thread (default: the
    trio-parallel default worker context); pass the app's own worker context
    where there is one. Raises :class:`QrScanError` when ffmpeg fails without
    yielding a frame, :class:`ToolMissingError` without ffmpeg, and
    :class:`ToolTimeoutError` after ``timeout`` seconds. A failure after some
    frames (a file truncated half-way) ends the scan with what was decoded.
    """
    ordered = sorted({round(float(t), 3) for t in times if t >= 0})
    if not ordered:
        return QrScan(content=None, timestamp=None, sampled=())
    decode: RunSync = run_sync if run_sync is not None else trio_parallel.run_sync
    argv = frames_command(path, ordered, ffmpeg=_require(ffmpeg))
    tail: collections.deque[str] = collections.deque(maxlen=STDERR_TAIL_LINES)
    sampled: list[float] = []
    hit: QrScan | None = None
    try:
        with trio.fail_after(timeout):
            async with trio.open_nursery() as nursery:
                process: trio.Process = await nursery.start(
                    partial(
                        trio.run_process,
                        # Behind the runner's guard: no ffmpeg outlives the service.
                        guarded(argv, tag="qr"),
                        stdin=subprocess.DEVNULL,
                        stdout=subprocess.PIPE,
                        stderr=subprocess.PIPE,
                        check=False,
                        deliver_cancel=_kill,
                        **_spawn_options(),
                    )
                )
                assert process.stdout is not None and process.stderr is not None
                # One frame of slack: ffmpeg seeks to the next sample while this one decodes.
                send, receive = trio.open_memory_channel[Frame](1)
                nursery.start_soon(_collect_tail, process.stderr, tail)
                nursery.start_soon(_read_frames, process.stdout, send)
                async with receive:
                    async for frame in receive:
                        if len(sampled) == len(ordered):
                            raise QrScanError("ffmpeg produced more frames than samples")
                        at = ordered[len(sampled)]
                        sampled.append(at)
                        content = await decode(decode_frame, frame)
                        if content is not None:
                            hit = QrScan(content=content, timestamp=at, sampled=tuple(sampled))
                            break
                if hit is not None:
                    # The other samples are not needed: stop ffmpeg. (Not a return from
                    # inside the nursery: closing the channel after the cancel would
                    # raise Cancelled, which the nursery absorbs along with the return.)
                    nursery.cancel_scope.cancel()
    except trio.TooSlowError:
        raise ToolTimeoutError(
            f"QR scan did not finish within {timeout:g} s", returncode=None, stderr_tail=""
        ) from None
    except BaseExceptionGroup as group:
        raise _single(group) from None
    if hit is not None:
        return hit
    if not sampled and process.returncode != 0:
        text = "\n".join(tail)
        raise QrScanError(f"ffmpeg decoded no frame: {text or f'exit code {process.returncode}'}")
    return QrScan(content=None, timestamp=None, sampled=tuple(sampled))


async def _kill(process: trio.Process) -> None:
    """Frames go to a pipe and no file is written: nothing to finish, kill at once.

    The guard leads its own process group; one SIGKILL to the group reaches ffmpeg too.
    """
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        process.kill()


async def _read_frames(stream: trio.abc.ReceiveStream, send: trio.MemorySendChannel[Frame]) -> None:
    """Split ffmpeg's stdout into PGM frames (``P5 W H MAXVAL`` header, then W*H bytes)."""
    buffer = bytearray()
    async with send:
        async for chunk in stream:
            buffer += chunk
            while True:
                frame = _take_frame(buffer)
                if frame is None:
                    break
                try:
                    await send.send(frame)
                except trio.BrokenResourceError:
                    return  # the scanner found its code and stopped reading: done
    if buffer:
        raise QrScanError(f"ffmpeg's frame stream ended inside a frame ({len(buffer)} bytes left)")


def _take_frame(buffer: bytearray) -> Frame | None:
    """Remove and return the first complete frame in ``buffer``, or None if incomplete."""
    match = _PGM_HEADER_RE.match(buffer)
    if match is None:
        if len(buffer) > _PGM_HEADER_MAX:
            raise QrScanError("ffmpeg's output is not a stream of grey PGM frames")
        return None
    width, height, maxval = (int(group) for group in match.groups())
    if maxval != 255 or width <= 0 or height <= 0:
        raise QrScanError(f"unexpected PGM frame {width}x{height} maxval {maxval}")
    start = match.end()
    end = start + width * height
    if len(buffer) < end:
        return None
    pixels = bytes(buffer[start:end])
    del buffer[:end]
    return Frame(width=width, height=height, pixels=pixels)


async def _collect_tail(stream: trio.abc.ReceiveStream, tail: collections.deque[str]) -> None:
    buffer = b""
    async for chunk in stream:
        buffer += chunk
        *lines, buffer = buffer.split(b"\n")
        tail.extend(text for line in lines if (text := line.decode("utf-8", "replace").strip()))
    if buffer.strip():
        tail.append(buffer.decode("utf-8", "replace").strip())
