"""Freefall and jump phases from the sound of a recording.

Why sound: freefall on a helmet or hand camera is a roar of wind whose energy sits
around 800–1500 Hz, far louder than the plane's cabin and the canopy ride, and it lasts
25–60 s on a tandem. Decoding only the audio (mono, 8 kHz, through a band-pass) is
hundreds of times faster than looking at frames, so a whole card is analysed in
seconds; the original product sampled video frames every 10 s through an image
classifier and could not say when the exit happened.

Pipeline, per recording:

1. ffmpeg decodes *only* the first audio stream of each chapter (``-map 0:a:0``,
   ``-vn``: video packets are demuxed and dropped, never decoded), down-mixed,
   resampled to 8 kHz, band-passed 800–1500 Hz (two high-pass and two low-pass
   biquads, 24 dB/octave), as signed 16-bit PCM on a pipe. Chapters are decoded one
   after another into one envelope, so a freefall that spans two chapters is one
   freefall on one timeline.
2. The envelope: band energy in dB per 0.1 s window, computed as the bytes arrive
   (memory grows with duration at 10 floats a second, not with the audio).
3. Detection (pure, :func:`detect`): the envelope is smoothed with a centred 1 s
   moving average; Otsu's method splits the recording's levels into a quiet and a
   loud class (adaptive: no absolute level, works whatever share of the recording
   the freefall is). Loud stretches (gaps ≤ 2 s bridged) longer than
   ``min_freefall_s`` (20 s) are freefall when the loud class is at least
   ``min_contrast_db`` above the quiet one. A stretch longer than ``max_freefall_s``
   (the plane *and* the freefall above a ground-level threshold) is split again inside
   itself, so the louder freefall is found within the plane ride.
4. Edges are placed where the smoothed level crosses half-way (in dB) between the
   stretch's level and its surroundings: a centred average of a step crosses its
   midpoint at the step, so start and end land within a window or two of the truth.
5. Confidence = contrast (20 dB above the surroundings → 1) × plausibility of the
   length (25–60 s → 1, shorter or longer scaled down).
6. Phases: before an exit, ``flight`` back to the last quiet stretch of at least
   ``quiet_run_s``, ``ground_before`` before it; after a freefall, ``canopy`` up to
   the next quiet stretch (the landing), ``ground_after`` from there. Without a
   freefall, the recording is one ``unknown`` segment: sound alone cannot tell the
   ground from the plane.

With GoPro telemetry (:mod:`.telemetry`, altitude from GPS) the two signals are fused
by :func:`fuse`: where the GPS has a good fix the altitude decides how many freefalls
there are and where their edges lie (the wind may roar on the ground too, a muted or
cased camera hears nothing); where both agree the freefall is one, its source
``both`` and its confidence raised; where the GPS has no fix the sound decides as it
does alone. Phases are rebuilt around the fused freefalls, takeoff and landing taken
from the altitude when it shows them. Without telemetry nothing of the above changes.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import attrs
import numpy as np
import trio
from numpy.typing import NDArray

from ..media.runner import keep_head, run_streaming
from .phases import FreefallSource, Phase

if TYPE_CHECKING:
    from .telemetry import TelemetryAnalysis

SAMPLE_RATE = 8000
BAND_FILTER = "highpass=f=800,highpass=f=800,lowpass=f=1500,lowpass=f=1500"
READ_CHUNK = 1 << 16
SILENCE_DB = -120.0

FloatArray = NDArray[np.float64]


class AnalysisError(RuntimeError):
    """A recording's audio could not be decoded; the message says why."""


@attrs.frozen
class FreefallConfig:
    """Tunables of the detector; defaults from tandem jumps (25–60 s of freefall)."""

    window_s: float = 0.1
    smooth_s: float = 1.0
    min_freefall_s: float = 20.0
    max_freefall_s: float = 150.0
    max_gap_s: float = 2.0
    min_contrast_db: float = 10.0
    full_contrast_db: float = 20.0
    expected_s: tuple[float, float] = (25.0, 60.0)
    quiet_margin_db: float = 6.0
    quiet_run_s: float = 10.0
    min_phase_s: float = 2.0
    max_split_depth: int = 3


@attrs.frozen
class Freefall:
    """A freefall on the recording's timeline (seconds from its first chapter's start)."""

    start: float
    end: float
    confidence: float
    source: FreefallSource = FreefallSource.AUDIO

    @property
    def duration(self) -> float:
        return self.end - self.start


@attrs.frozen
class PhaseSegment:
    phase: Phase
    start: float
    end: float
    confidence: float


@attrs.frozen
class AudioAnalysis:
    """What the sound says about one recording."""

    duration: float
    freefalls: tuple[Freefall, ...]
    phases: tuple[PhaseSegment, ...]

    @property
    def landing(self) -> float | None:
        """Start of the first ``ground_after`` segment: when the jumper is down."""
        return next((p.start for p in self.phases if p.phase is Phase.GROUND_AFTER), None)


class Envelope:
    """Band energy in dB per window, fed with raw s16le bytes as they arrive."""

    def __init__(self, *, sample_rate: int = SAMPLE_RATE, window_s: float = 0.1) -> None:
        self.window = max(1, int(round(sample_rate * window_s)))
        self.sample_rate = sample_rate
        self._carry = b""
        self._pending = np.zeros(0, dtype=np.float64)
        self._levels: list[FloatArray] = []
        self.samples = 0

    def feed(self, chunk: bytes | bytearray) -> None:
        data = self._carry + bytes(chunk)
        usable = len(data) - (len(data) % 2)
        self._carry = data[usable:]
        samples = np.frombuffer(data[:usable], dtype="<i2").astype(np.float64) / 32768.0
        self.samples += samples.size
        samples = np.concatenate((self._pending, samples))
        full = samples.size - samples.size % self.window
        if full:
            power = np.mean(np.square(samples[:full]).reshape(-1, self.window), axis=1)
            self._levels.append(_db(power))
        self._pending = samples[full:]

    def levels(self) -> FloatArray:
        """Levels so far, the last partial window included when it is at least half full."""
        parts = list(self._levels)
        if self._pending.size * 2 >= self.window:
            parts.append(_db(np.array([np.mean(np.square(self._pending))])))
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.float64)

    @property
    def duration(self) -> float:
        return self.samples / self.sample_rate


def _db(power: FloatArray) -> FloatArray:
    return np.maximum(10.0 * np.log10(np.maximum(power, 1e-20)), SILENCE_DB)


def decode_command(path: Path, *, ffmpeg: str = "ffmpeg") -> list[str]:
    """ffmpeg argv that writes the band-passed mono 8 kHz audio of ``path`` to stdout."""
    return [
        ffmpeg,
        "-hide_banner",
        "-nostdin",
        "-loglevel",
        "error",
        "-vn",
        "-sn",
        "-dn",
        "-i",
        str(path),
        "-map",
        "0:a:0",
        "-af",
        f"aformat=channel_layouts=mono,aresample={SAMPLE_RATE},{BAND_FILTER}",
        "-ac",
        "1",
        "-ar",
        str(SAMPLE_RATE),
        "-f",
        "s16le",
        "-acodec",
        "pcm_s16le",
        "pipe:1",
    ]


async def analyse_recording(
    chapters: Sequence[Path],
    *,
    ffmpeg: str = "ffmpeg",
    config: FreefallConfig | None = None,
) -> AudioAnalysis:
    """Decode the chapters' audio in order as one timeline and detect the phases.

    Cancellation: each ffmpeg runs inside the caller's scope (``trio.run_process``
    terminates it and reaps it). Detection itself runs in a worker thread: it is
    numpy over a few thousand values per minute of audio, but it is CPU work.
    """
    cfg = config or FreefallConfig()
    levels, duration = await decode_levels(chapters, ffmpeg=ffmpeg, config=cfg)
    return await trio.to_thread.run_sync(detect, levels, cfg, duration)


async def decode_levels(
    chapters: Sequence[Path], *, ffmpeg: str = "ffmpeg", config: FreefallConfig | None = None
) -> tuple[FloatArray, float]:
    """The chapters' band levels (dB per window) on one timeline, and its duration."""
    cfg = config or FreefallConfig()
    binary = shutil.which(ffmpeg)
    if binary is None:
        raise AnalysisError(f"{ffmpeg} is not installed or not executable")
    envelope = Envelope(window_s=cfg.window_s)
    for chapter in chapters:
        await _decode_into(chapter, envelope, binary)
    if envelope.samples == 0:
        raise AnalysisError("the recording has no decodable audio")
    return envelope.levels(), envelope.duration


async def _decode_into(path: Path, envelope: Envelope, ffmpeg: str) -> None:
    before = envelope.samples
    # Chapters are whole windows apart only by chance: keep the timeline exact by
    # carrying the partial window over into the next chapter (Envelope does).
    stderr = bytearray()
    async with trio.open_nursery() as nursery:
        # Behind the runner's guard, local files only (#11).
        process: trio.Process = await nursery.start(
            partial(run_streaming, decode_command(path, ffmpeg=ffmpeg), tag="freefall")
        )
        assert process.stdout is not None and process.stderr is not None
        nursery.start_soon(keep_head, process.stderr, stderr)
        while chunk := await process.stdout.receive_some(READ_CHUNK):
            envelope.feed(chunk)
    if process.returncode != 0:
        tail = stderr.decode("utf-8", "replace").strip().splitlines()[-3:]
        raise AnalysisError(f"{path.name}: audio decode failed ({' '.join(tail) or 'no output'})")
    if envelope.samples == before:
        raise AnalysisError(f"{path.name}: no audio stream")


# --- detection (pure) ---------------------------------------------------------------


def smooth(levels: FloatArray, width: int) -> FloatArray:
    """Centred moving average with edge padding (same length as the input)."""
    if width <= 1 or levels.size == 0:
        return levels.astype(np.float64)
    half = width // 2
    padded = np.pad(levels, (half, width - 1 - half), mode="edge")
    kernel = np.ones(width) / width
    return np.convolve(padded, kernel, mode="valid")


def otsu_threshold(values: FloatArray) -> float:
    """The level that best splits ``values`` into two classes (Otsu, 0.5 dB bins)."""
    lo, hi = float(values.min()), float(values.max())
    if hi - lo < 1e-9:
        return hi
    bins = max(2, int((hi - lo) / 0.5))
    hist, edges = np.histogram(values, bins=bins, range=(lo, hi))
    centres = (edges[:-1] + edges[1:]) / 2
    weight = np.cumsum(hist).astype(np.float64)
    total = weight[-1]
    cum_mean = np.cumsum(hist * centres)
    w0 = weight[:-1]
    w1 = total - w0
    valid = (w0 > 0) & (w1 > 0)
    mu0 = np.where(valid, cum_mean[:-1] / np.where(w0 > 0, w0, 1), 0.0)
    mu1 = np.where(valid, (cum_mean[-1] - cum_mean[:-1]) / np.where(w1 > 0, w1, 1), 0.0)
    between = np.where(valid, w0 * w1 * (mu0 - mu1) ** 2, -1.0)
    return float(edges[int(np.argmax(between)) + 1])


def runs_above(mask: NDArray[np.bool_], max_gap: int) -> list[tuple[int, int]]:
    """Index ranges ``[start, end)`` where ``mask`` holds, gaps of ≤ ``max_gap`` bridged."""
    runs: list[tuple[int, int]] = []
    idx = np.flatnonzero(np.diff(np.concatenate(([0], mask.astype(np.int8), [0]))))
    for start, end in zip(idx[::2], idx[1::2], strict=True):
        if runs and start - runs[-1][1] <= max_gap:
            runs[-1] = (runs[-1][0], int(end))
        else:
            runs.append((int(start), int(end)))
    return runs


def detect(levels: FloatArray, config: FreefallConfig, duration: float) -> AudioAnalysis:
    """Freefalls and phases from per-window levels (dB). Pure; see the module text."""
    if levels.size == 0:
        return AudioAnalysis(duration=duration, freefalls=(), phases=())
    smoothed, freefalls = _audio_freefalls(levels, config)
    phases = _phases(smoothed, freefalls, config, duration)
    return AudioAnalysis(duration=duration, freefalls=freefalls, phases=phases)


def _audio_freefalls(
    levels: FloatArray, config: FreefallConfig
) -> tuple[FloatArray, tuple[Freefall, ...]]:
    smoothed = smooth(levels, max(1, int(round(config.smooth_s / config.window_s))))
    spans = _find(smoothed, 0, smoothed.size, config, 0)
    freefalls = [_refine(smoothed, s, e, config) for s, e in spans]
    return smoothed, tuple(f for f in freefalls if f.duration >= config.min_freefall_s * 0.9)


def fuse(
    levels: FloatArray | None,
    duration: float,
    telemetry: TelemetryAnalysis | None,
    config: FreefallConfig,
) -> AudioAnalysis:
    """Freefalls and phases from the sound (``levels``, None when it has none) and the
    altitude (``telemetry``). Pure; the rules are in the module text.

    Without telemetry this is :func:`detect` exactly.
    """
    if telemetry is None:
        if levels is None:
            return AudioAnalysis(duration=duration, freefalls=(), phases=())
        return detect(levels, config, duration)
    smoothed: FloatArray | None = None
    heard: tuple[Freefall, ...] = ()
    if levels is not None and levels.size:
        smoothed, heard = _audio_freefalls(levels, config)
    fused: list[tuple[Freefall, tuple[float | None, float | None]]] = []
    matched: set[int] = set()
    for i, seen in enumerate(telemetry.freefalls):
        edges = (telemetry.takeoffs[i], telemetry.landings[i])
        overlapping = [
            j for j, h in enumerate(heard) if min(h.end, seen.end) > max(h.start, seen.start)
        ]
        matched.update(overlapping)
        if not overlapping:
            fused.append((attrs.evolve(seen, source=FreefallSource.TELEMETRY), edges))
            continue
        best = max(
            (heard[j] for j in overlapping),
            key=lambda h: min(h.end, seen.end) - max(h.start, seen.start),
        )
        if seen.confidence >= telemetry.good_confidence:
            start, end = seen.start, seen.end
        else:  # a poor fix: weigh the edges by each signal's confidence
            weights = (max(best.confidence, 1e-3), max(seen.confidence, 1e-3))
            total = sum(weights)
            start = (best.start * weights[0] + seen.start * weights[1]) / total
            end = (best.end * weights[0] + seen.end * weights[1]) / total
        confidence = 1.0 - (1.0 - best.confidence) * (1.0 - seen.confidence)
        fused.append(
            (
                Freefall(round(start, 2), round(end, 2), round(confidence, 3), FreefallSource.BOTH),
                edges,
            )
        )
    for j, h in enumerate(heard):
        # Telemetry decides where it saw the whole stretch with a good fix and no freefall.
        if j not in matched and not telemetry.covers(h.start, h.end):
            fused.append((h, (None, None)))
    fused.sort(key=lambda item: item[0].start)
    freefalls = tuple(f for f, _ in fused)
    phases = _phases(smoothed, freefalls, config, duration, tuple(e for _, e in fused))
    return AudioAnalysis(duration=duration, freefalls=freefalls, phases=phases)


def _find(
    smoothed: FloatArray, lo: int, hi: int, config: FreefallConfig, depth: int
) -> list[tuple[int, int]]:
    w = config.window_s
    region = smoothed[lo:hi]
    if region.size < 2:
        return []
    threshold = otsu_threshold(region)
    loud = region > threshold
    if not loud.any() or loud.all():
        return []
    if float(region[loud].mean() - region[~loud].mean()) < config.min_contrast_db:
        return []
    found: list[tuple[int, int]] = []
    for start, end in runs_above(loud, int(round(config.max_gap_s / w))):
        length = (end - start) * w
        if length < config.min_freefall_s:
            continue
        # A loud stretch may hold a louder one (plane then freefall, freefall then
        # canopy): look inside first; keep the stretch itself only when it is
        # uniformly loud and not longer than a freefall can be.
        inner = (
            _find(smoothed, lo + start, lo + end, config, depth + 1)
            if depth < config.max_split_depth
            else []
        )
        if inner:
            found.extend(inner)
        elif length <= config.max_freefall_s:
            found.append((lo + start, lo + end))
    return found


def _crossing(smoothed: FloatArray, around: int, level: float, rising: bool, reach: int) -> float:
    """Fractional window index near ``around`` where the curve crosses ``level``."""
    lo = max(0, around - reach)
    hi = min(smoothed.size - 1, around + reach)
    best: float | None = None
    for i in range(lo, hi):
        a, b = smoothed[i], smoothed[i + 1]
        crosses = (a < level <= b) if rising else (a >= level > b)
        if crosses:
            t = i + (level - a) / (b - a)
            if best is None or abs(t - around) < abs(best - around):
                best = t
    return float(around) if best is None else best


def _refine(smoothed: FloatArray, start: int, end: int, config: FreefallConfig) -> Freefall:
    w = config.window_s
    context = int(round(10.0 / w))
    inside = float(np.median(smoothed[start:end]))
    before = smoothed[max(0, start - context) : start]
    after = smoothed[end : end + context]
    outside_before = float(np.median(before)) if before.size else None
    outside_after = float(np.median(after)) if after.size else None
    reach = int(round(3 * config.smooth_s / w)) + 2
    # Window i's level is centred at (i + 0.5) * w.
    if outside_before is None:
        t_start = 0.0
    else:
        idx = _crossing(smoothed, start, (inside + outside_before) / 2, True, reach)
        t_start = max(0.0, (idx + 0.5) * w)
    if outside_after is None:
        t_end = smoothed.size * w
    else:
        idx = _crossing(smoothed, end - 1, (inside + outside_after) / 2, False, reach)
        t_end = min(smoothed.size * w, (idx + 0.5) * w)
    outsides = [v for v in (outside_before, outside_after) if v is not None]
    contrast = inside - max(outsides) if outsides else 0.0
    c_level = float(np.clip(contrast / config.full_contrast_db, 0.0, 1.0))
    length = t_end - t_start
    low, high = config.expected_s
    c_length = 1.0 if low <= length <= high else (length / low if length < low else high / length)
    return Freefall(
        start=round(float(t_start), 2),
        end=round(float(t_end), 2),
        confidence=round(float(c_level * c_length), 3),
    )


def _quiet_runs(
    smoothed: FloatArray | None, config: FreefallConfig, lo: float, hi: float
) -> list[tuple[float, float]]:
    """Quiet stretches (≥ ``quiet_run_s``) between times ``lo`` and ``hi``, in seconds."""
    if smoothed is None:
        return []
    w = config.window_s
    quiet_level = float(np.percentile(smoothed, 10)) + config.quiet_margin_db
    a, b = int(lo / w), min(smoothed.size, int(np.ceil(hi / w)))
    if b <= a:
        return []
    runs = runs_above(smoothed[a:b] <= quiet_level, 0)
    return [((a + s) * w, (a + e) * w) for s, e in runs if (e - s) * w >= config.quiet_run_s]


def _phases(
    smoothed: FloatArray | None,
    freefalls: tuple[Freefall, ...],
    config: FreefallConfig,
    duration: float,
    known: tuple[tuple[float | None, float | None], ...] | None = None,
) -> tuple[PhaseSegment, ...]:
    """Phases around ``freefalls``; ``known`` (per freefall: takeoff, landing) from the
    altitude wins over the quiet stretches of the sound where it is given."""
    heard = 0.0 if smoothed is None else smoothed.size * config.window_s
    end_of_audio = max(duration, heard)
    if not freefalls:
        return (PhaseSegment(Phase.UNKNOWN, 0.0, round(end_of_audio, 2), 0.0),)
    segments: list[PhaseSegment] = []
    cursor = 0.0
    for i, ff in enumerate(freefalls):
        next_start = freefalls[i + 1].start if i + 1 < len(freefalls) else end_of_audio
        known_takeoff, known_landing = known[i] if known else (None, None)
        quiet_before = _quiet_runs(smoothed, config, cursor, ff.start)
        takeoff = quiet_before[-1][1] if quiet_before else cursor
        if known_takeoff is not None:
            takeoff = min(max(known_takeoff, cursor), ff.start)
        if ff.start - takeoff < config.min_phase_s:
            takeoff = ff.start  # the smoothing's spill, not a plane ride
        if takeoff > cursor:
            segments.append(PhaseSegment(Phase.GROUND_BEFORE, cursor, takeoff, 0.5))
        if ff.start > takeoff:
            segments.append(PhaseSegment(Phase.FLIGHT, takeoff, ff.start, 0.5))
        segments.append(PhaseSegment(Phase.FREEFALL, ff.start, ff.end, ff.confidence))
        quiet_after = _quiet_runs(smoothed, config, ff.end, next_start)
        landing = quiet_after[0][0] if quiet_after else next_start
        if known_landing is not None:
            landing = min(max(known_landing, ff.end), next_start)
        if landing - ff.end < config.min_phase_s:
            landing = ff.end
        if landing > ff.end:
            segments.append(PhaseSegment(Phase.CANOPY, ff.end, landing, 0.5))
        is_last = i + 1 == len(freefalls)
        ground_end = end_of_audio if is_last else (quiet_after[-1][1] if quiet_after else landing)
        if ground_end > landing:
            segments.append(PhaseSegment(Phase.GROUND_AFTER, landing, ground_end, 0.5))
        cursor = ground_end
    return tuple(
        attrs.evolve(s, start=round(float(s.start), 2), end=round(float(s.end), 2))
        for s in segments
        if s.end - s.start > 1e-6
    )
