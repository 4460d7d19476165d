"""Loudness of source files, measured once, so a render can hit its target in one pass.

Why not ``loudnorm`` in the render: single-pass ``loudnorm`` is dynamic (it rides
the gain, audibly, and resamples to 192 kHz), and the two-pass form needs the
*programme* measured before it is rendered, i.e. a second encode. Instead each
source is measured once, the first time a render needs it, and the programme's
loudness is *predicted* from the measurements and the gains the render applies;
the render then applies one exact gain and a true-peak limiter.

What is stored is what makes that prediction exact: BS.1770 loudness is the
gated mean of K-weighted energy over 400 ms blocks with 75 % overlap, i.e. over
groups of four 100 ms sub-blocks. So a source is stored as its K-weighted
energy per 100 ms sub-block (channels summed with weight 1, as for L/R), and
any trim, gain envelope, loop or mix of sources is a sum of shifted, scaled
sub-block series whose integrated loudness :func:`integrated_lufs` computes with
the standard's gates. Uncorrelated sources add in energy, which is what music
and camera sound are.

The measurement feeds the signal exactly as the render's camera recipe does
(stereo, a mono source on both channels at full level, see
:func:`stinercut_svc.render.recipes.audio.stereo_filters`), resampled to 48 kHz,
through the K-weighting filter (two ``biquad`` stages with the standard's 48 kHz
coefficients), as 32-bit float PCM on a pipe; numpy sums the squares. Results
are cached on disk per file path, size and modification time, so the second
render of a project measures nothing.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import secrets
import shutil
from collections.abc import Sequence
from functools import partial
from pathlib import Path

import attrs
import numpy as np
import trio
from numpy.typing import NDArray

from .runner import keep_head, run_streaming

RATE = 48000
BLOCK_S = 0.1
BLOCK_SAMPLES = int(RATE * BLOCK_S)
#: BS.1770-4 K-weighting at 48 kHz: the head's high shelf, then the RLB high-pass.
K_SHELF = (1.53512485958697, -2.69169618940638, 1.19839281085285,
           1.0, -1.69065929318241, 0.73248077421585)  # fmt: skip
K_HIGHPASS = (1.0, -2.0, 1.0, 1.0, -1.99004745483398, 0.99007225036621)
ABSOLUTE_GATE_LUFS = -70.0
RELATIVE_GATE_LU = -10.0
SILENCE_LUFS = -120.0
#: Bump when the measured signal changes (filter chain, block size): old cache
#: entries then simply stop matching.
MEASURE_VERSION = 1
MEASURE_TIMEOUT_S = 600.0
READ_CHUNK = 1 << 18

FloatArray = NDArray[np.float64]


class LoudnessError(RuntimeError):
    """A source's audio could not be measured; the message says which and why."""


@attrs.frozen(eq=False)
class SourceLoudness:
    """K-weighted energy of one source per 100 ms sub-block (channels summed)."""

    blocks: FloatArray
    duration: float

    def window(self, start: float, duration: float) -> FloatArray:
        """The sub-blocks of ``[start, start + duration)``, zero past the end."""
        first = int(round(start / BLOCK_S))
        count = max(0, int(round(duration / BLOCK_S)))
        out = np.zeros(count)
        part = self.blocks[first : first + count]
        out[: part.size] = part
        return out

    def looped(self, offset: float, duration: float) -> FloatArray:
        """``duration`` seconds from ``offset`` of the source played in a loop."""
        count = max(0, int(round(duration / BLOCK_S)))
        if self.blocks.size == 0 or count == 0:
            return np.zeros(count)
        first = int(round(offset / BLOCK_S)) % self.blocks.size
        reps = math.ceil((first + count) / self.blocks.size)
        return np.tile(self.blocks, reps)[first : first + count]

    def integrated(self, start: float = 0.0, duration: float | None = None) -> float:
        """Integrated loudness (LUFS) of a stretch of the source."""
        length = self.duration - start if duration is None else duration
        return integrated_lufs(self.window(start, length))


def integrated_lufs(blocks: FloatArray) -> float:
    """BS.1770 integrated loudness of a sub-block energy series (100 ms steps).

    Gating blocks are 400 ms (four sub-blocks) every 100 ms; absolute gate
    -70 LUFS, relative gate 10 LU under the absolutely gated mean. Silence and
    series shorter than one block give :data:`SILENCE_LUFS`.
    """
    if blocks.size < 4:
        return SILENCE_LUFS
    cumulative = np.concatenate(([0.0], np.cumsum(blocks)))
    gating = (cumulative[4:] - cumulative[:-4]) / 4.0
    loud = gating[_lufs(gating) > ABSOLUTE_GATE_LUFS]
    if loud.size == 0:
        return SILENCE_LUFS
    threshold = _lufs(np.array([loud.mean()]))[0] + RELATIVE_GATE_LU
    kept = loud[_lufs(loud) > threshold]
    return float(_lufs(np.array([kept.mean()]))[0])


def _lufs(energy: FloatArray) -> FloatArray:
    return -0.691 + 10.0 * np.log10(np.maximum(energy, 1e-30))


def blocks_from_pcm(samples: NDArray[np.float32], channels: int) -> FloatArray:
    """Sub-block energies of interleaved K-weighted PCM (a trailing partial block counts,
    averaged over the samples it has)."""
    frames = samples.size // channels
    whole = frames // BLOCK_SAMPLES
    data = samples[: whole * BLOCK_SAMPLES * channels].reshape(whole, BLOCK_SAMPLES * channels)
    # Sum of squares per block in float64 (the input stays float32: no copy of the PCM).
    energy = np.einsum("ij,ij->i", data, data, dtype=np.float64) / BLOCK_SAMPLES
    rest = samples[whole * BLOCK_SAMPLES * channels : frames * channels].astype(np.float64)
    if rest.size:
        energy = np.append(energy, (rest**2).sum() / (rest.size // channels))
    return energy


# --- measuring ------------------------------------------------------------------


def measure_command(path: Path, stereo_chain: str, *, ffmpeg: str = "ffmpeg") -> list[str]:
    """ffmpeg argv writing the K-weighted stereo 48 kHz float PCM of ``path`` to stdout.

    ``stereo_chain`` is the render's own channel handling for this source
    (``pan=…`` for mono), so what is measured is what the graph mixes.
    """

    def biquad(c: tuple[float, ...]) -> str:
        return f"biquad=b0={c[0]}:b1={c[1]}:b2={c[2]}:a0={c[3]}:a1={c[4]}:a2={c[5]}"

    chain = ",".join(
        part
        for part in (
            f"aresample={RATE}",
            stereo_chain,
            "aformat=sample_fmts=dbl",
            biquad(K_SHELF),
            biquad(K_HIGHPASS),
            # One-second frames: ffmpeg writes the pipe in big pieces (about a third
            # faster than its default 1024-sample frames, which cost a wake-up each).
            f"asetnsamples=n={RATE}",
        )
        if part
    )
    return [
        ffmpeg, "-hide_banner", "-nostdin", "-loglevel", "error",
        "-vn", "-sn", "-dn", "-i", str(path), "-map", "0:a:0",
        "-af", chain, "-ac", "2", "-ar", str(RATE), "-f", "f32le", "-c:a", "pcm_f32le",
        "pipe:1",
    ]  # fmt: skip


async def measure(path: Path, stereo_chain: str, *, ffmpeg: str = "ffmpeg") -> SourceLoudness:
    """Measure ``path``'s first audio stream (decode only; runs in the caller's scope)."""
    binary = shutil.which(ffmpeg)
    if binary is None:
        raise LoudnessError(f"{ffmpeg} is not installed or not executable")
    argv = measure_command(path, stereo_chain, ffmpeg=binary)
    stderr = bytearray()
    pending = b""
    parts: list[FloatArray] = []
    frame_bytes = BLOCK_SAMPLES * 2 * 4  # one sub-block of stereo float32
    frames = 0
    with trio.fail_after(MEASURE_TIMEOUT_S):
        async with trio.open_nursery() as nursery:
            process: trio.Process = await nursery.start(
                partial(run_streaming, argv, tag="loudness")
            )
            assert process.stdout is not None and process.stderr is not None
            nursery.start_soon(keep_head, process.stderr, stderr)
            while chunk := await process.stdout.receive_some(READ_CHUNK):
                pending += chunk
                whole = len(pending) - len(pending) % frame_bytes
                if whole:
                    parts.append(blocks_from_pcm(np.frombuffer(pending[:whole], "<f4"), 2))
                    frames += whole // 8
                    pending = pending[whole:]
    if process.returncode != 0:
        tail = stderr.decode("utf-8", "replace").strip().splitlines()[-3:]
        raise LoudnessError(f"{path.name}: audio measurement failed ({' '.join(tail) or '?'})")
    usable = len(pending) - len(pending) % 8
    if usable:
        parts.append(blocks_from_pcm(np.frombuffer(pending[:usable], "<f4"), 2))
        frames += usable // 8
    if frames == 0:
        raise LoudnessError(f"{path.name}: no audio to measure")
    return SourceLoudness(np.concatenate(parts), frames / RATE)


# --- the cache -------------------------------------------------------------------


@attrs.define
class LoudnessCache:
    """Measurements on disk, keyed by file path + size + mtime (+ channel handling).

    One small ``.npy`` per source (8 bytes per 100 ms: 4.8 KB per minute) and a
    ``.json`` beside it with the key's parts for humans. A changed file (new size
    or mtime) gets a new key; stale entries are harmless and tiny.
    """

    directory: Path
    ffmpeg: str = "ffmpeg"
    _memory: dict[str, SourceLoudness] = attrs.field(factory=dict)

    def key(self, path: Path, stereo_chain: str) -> str:
        stat = path.stat()
        parts = [str(path.resolve()), str(stat.st_size), str(stat.st_mtime_ns),
                 stereo_chain, str(MEASURE_VERSION)]  # fmt: skip
        return hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:32]

    async def get(self, path: Path, stereo_chain: str) -> SourceLoudness:
        """The measurement of ``path``, measured now only if not cached."""
        key = await trio.to_thread.run_sync(self.key, path, stereo_chain)
        if key in self._memory:
            return self._memory[key]
        cached = await trio.to_thread.run_sync(self._load, key)
        if cached is None:
            cached = await measure(path, stereo_chain, ffmpeg=self.ffmpeg)
            await trio.to_thread.run_sync(self._store, key, path, cached)
        self._memory[key] = cached
        return cached

    def _load(self, key: str) -> SourceLoudness | None:
        blocks_file = self.directory / f"{key}.npy"
        meta_file = self.directory / f"{key}.json"
        try:
            meta = json.loads(meta_file.read_text(encoding="utf-8"))
            blocks = np.load(blocks_file, allow_pickle=False)
        except (OSError, ValueError):
            return None
        return SourceLoudness(blocks.astype(np.float64), float(meta["duration"]))

    def _store(self, key: str, path: Path, value: SourceLoudness) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        # Written under unique temporary names and renamed: a reader never sees half a
        # file, and two renders measuring the same file at once never share a temp file.
        unique = f"{os.getpid()}.{secrets.token_hex(4)}"
        tmp = self.directory / f".{key}.{unique}.npy"
        np.save(tmp, value.blocks, allow_pickle=False)
        os.replace(tmp, self.directory / f"{key}.npy")
        meta = {"path": str(path), "duration": value.duration,
                "integrated_lufs": round(value.integrated(), 2), "version": MEASURE_VERSION}  # fmt: skip
        tmp_meta = self.directory / f".{key}.{unique}.json"
        tmp_meta.write_text(json.dumps(meta), encoding="utf-8")
        os.replace(tmp_meta, self.directory / f"{key}.json")


def place(length: int, parts: Sequence[tuple[float, FloatArray]]) -> FloatArray:
    """Sum sub-block series each starting at an output time (seconds) into one series."""
    out = np.zeros(length)
    for start, series in parts:
        first = int(round(start / BLOCK_S))
        lo, hi = max(first, 0), min(first + series.size, length)
        if hi > lo:
            out[lo:hi] += series[lo - first : hi - first]
    return out
