"""Audio recipes: camera sound, the music bed that follows the jump, the finished mix.

The programme's sound is built in four steps, each a recipe on the
:class:`~stinercut_svc.media.filtergraph.Graph`:

1. :func:`camera_audio` per segment (before the compiler joins segments): 48 kHz
   stereo float, a mono camera on *both* channels at full level (the default
   up-mix puts it at -3 dB per channel, so mono clips came out 3 dB quieter
   than stereo ones), and the clip's loudness gain.
2. :func:`music_bed`: one input per :class:`~stinercut_svc.render.music.MusicCue`
   (looped, trimmed, gain-matched), chained with equal-power ``acrossfade`` so
   each switch is centred on the exit or the deployment, then the programme
   fade-in and fade-out.
3. :func:`programme`: the joined camera sound lowered inside the freefall windows
   (wind), the music ducked under speech by ``sidechaincompress`` whose key is the
   camera sound *silenced* inside those windows (wind never ducks the music),
   the two mixed without amix's normalisation.
4. :func:`finish`: one exact gain to the loudness target and a true-peak limiter.

The gains come from :func:`plan_levels`, a pure function of the sources'
measured loudness (:mod:`stinercut_svc.media.loudness`) and the plan: it
predicts the programme's integrated loudness sub-block by sub-block the way the
graph will mix it (phase gains, ducking, crossfades, fades), so the one render
lands on the target without measuring its own output.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

import attrs
import numpy as np

from ...media.filtergraph import Graph, Stream, format_number
from ...media.loudness import (
    BLOCK_S,
    SILENCE_LUFS,
    FloatArray,
    LoudnessCache,
    SourceLoudness,
    integrated_lufs,
    place,
)
from ...media.probe import MediaInfo
from ..music import MusicPlan, Placement, ResolvedAudio, plan_music
from .slowmo import SlowMotionOptions, SlowWindow, slow_motion, slow_motion_audio, to_output

if TYPE_CHECKING:
    from ..timeline import Schedule, Segment, Timeline

AUDIO_RATE = 48000
#: Camera speech is normalised to this before the mix; music sits relative to it.
SPEECH_REF_LUFS = -23.0
#: A clip's camera gain never moves further than this (a silent clip is not boosted to noise).
MAX_CAMERA_GAIN_DB = 12.0
#: Length of the camera's ramp into and out of a freefall window.
FREEFALL_RAMP_S = 0.3
#: Ducking: the key is boosted by this much (sidechaincompress' threshold cannot go
#: low enough for a -23 LUFS speech key otherwise); threshold and ratio follow duck_db.
KEY_BOOST_DB = 12.0
DUCK_HEADROOM_DB = 6.0
DUCK_ATTACK_MS = 20
DUCK_RELEASE_MS = 400
#: The limiter works on samples; true peaks between samples can be up to ~0.5 dB higher.
TRUE_PEAK_MARGIN_DB = 0.5


def stereo_filters(channels: int | None) -> list[tuple[str, dict[str, str]]]:
    """The filters bringing a source with ``channels`` channels to stereo.

    Mono goes to both channels at full level (``pan``), so a mono camera has the
    loudness of a stereo one recording the same sound; more than two channels are
    down-mixed by ffmpeg's standard matrix. Also used (as text) by the loudness
    measurement, so the measured signal is the mixed one.
    """
    if channels == 1:
        return [("pan", {"args": "stereo|c0=c0|c1=c0"})]
    if channels == 2:
        return []
    return [("aformat", {"channel_layouts": "stereo"})]


def stereo_chain(channels: int | None) -> str:
    """:func:`stereo_filters` as an ``-af`` chain (for the measurement command)."""
    parts = []
    for name, opts in stereo_filters(channels):
        parts.append(f"{name}=" + ":".join(f"{k}={v}" for k, v in opts.items()))
    return ",".join(parts)


def _stereo(g: Graph, stream: Stream, channels: int | None) -> Stream:
    for name, opts in stereo_filters(channels):
        stream = g.filter(name, stream, out_kind="a", **opts)
    return stream


def camera_audio(g: Graph, stream: Stream, *, channels: int | None, gain_db: float = 0.0) -> Stream:
    """One segment's own sound: 48 kHz stereo float, mono on both channels, its gain."""
    out = g.filter("aresample", stream, osr=AUDIO_RATE)
    out = _stereo(g, out, channels)
    out = g.filter(
        "aformat", out, sample_fmts="fltp", sample_rates=AUDIO_RATE, channel_layouts="stereo"
    )
    if abs(gain_db) > 1e-6:
        out = g.filter("volume", out, volume=f"{format_number(gain_db)}dB")
    return out


# --- music -----------------------------------------------------------------------------


@attrs.frozen
class Track:
    """A music asset as the bed needs it: file, channels, gain to its reference level."""

    path: Path
    channels: int | None
    gain_db: float = 0.0


def music_bed(g: Graph, plan: MusicPlan, tracks: Mapping[str, Track]) -> Stream | None:
    """The music of the whole programme: cues crossfaded, faded in and out.

    Each cue is its own looped input (``-stream_loop -1``) cut with ``atrim``
    from its offset: a short track loops, a long one is cut, and a track that
    returns after the freefall resumes where it stopped. Crossfades use the
    quarter-sine curve on both sides (equal power: no dip at the switch).
    Exactly ``plan.total_s`` long.
    """
    if not plan.cues:
        return None
    bed: Stream | None = None
    for index, cue in enumerate(plan.cues):
        track = tracks[cue.asset]
        src = g.input(track.path, "a", options=["-stream_loop", "-1"])
        part = g.filter("aresample", src, osr=AUDIO_RATE)
        part = _stereo(g, part, track.channels)
        part = g.filter(
            "aformat", part, sample_fmts="fltp", sample_rates=AUDIO_RATE, channel_layouts="stereo"
        )
        part = g.filter("atrim", part, start=cue.offset, duration=cue.duration)
        part = g.filter("asetpts", part, expr="PTS-STARTPTS")
        if abs(track.gain_db) > 1e-6:
            part = g.filter("volume", part, volume=f"{format_number(track.gain_db)}dB")
        if bed is None:
            bed = part
        elif plan.cues[index - 1].fade_out > 0:
            bed = g.filter("acrossfade", bed, part, d=cue.fade_in, c1="qsin", c2="qsin")
        else:
            bed = g.filter("concat", bed, part, n=2, v=0, a=1)
    assert bed is not None
    if plan.fade_in_s > 0:
        bed = g.filter("afade", bed, t="in", st=0, d=plan.fade_in_s)
    if plan.fade_out_s > 0:
        bed = g.filter("afade", bed, t="out", st=plan.total_s - plan.fade_out_s, d=plan.fade_out_s)
    # Exactly the programme's length, whatever the last sample rounding did.
    bed = g.filter("apad", bed)
    return g.filter("atrim", bed, end=plan.total_s)


# --- the mix -----------------------------------------------------------------------------


def _window_sum(windows: Sequence[tuple[float, float]], ramp: float) -> str:
    """An expression of ``t``: 1 inside the windows, 0 outside, linear ramps centred on the edges."""
    terms = [
        f"clip(min((t-{format_number(a)})/{format_number(ramp)}+0.5,"
        f"({format_number(b)}-t)/{format_number(ramp)}+0.5),0,1)"
        for a, b in windows
    ]
    return "+".join(terms)


def freefall_gain_expr(windows: Sequence[tuple[float, float]], level: float) -> str:
    """``volume`` expression: 1 outside freefall, ``level`` inside (ramped)."""
    return f"1-{format_number(1 - level)}*({_window_sum(windows, FREEFALL_RAMP_S)})"


def key_gate_expr(windows: Sequence[tuple[float, float]]) -> str:
    """``volume`` expression for the ducking key: silent inside freefall (wind)."""
    return f"max(0,1-({_window_sum(windows, FREEFALL_RAMP_S)}))"


def duck_params(duck_db: float) -> tuple[float, float]:
    """``sidechaincompress`` threshold (linear) and ratio for ``duck_db`` of ducking.

    Speech at the reference level (per channel about 3 dB under its LUFS value,
    boosted by :data:`KEY_BOOST_DB`) sits ``duck_db + DUCK_HEADROOM_DB`` over the
    threshold; the ratio makes that overshoot give ``duck_db`` of gain reduction.
    """
    key_level = SPEECH_REF_LUFS - 3.0 + KEY_BOOST_DB
    over = duck_db + DUCK_HEADROOM_DB
    threshold = 10 ** ((key_level - over) / 20)
    return round(threshold, 6), round(over / DUCK_HEADROOM_DB, 4)


def programme(
    g: Graph,
    camera: Stream | None,
    music: Stream | None,
    plan: MusicPlan,
    audio: ResolvedAudio,
) -> Stream | None:
    """Camera sound (lowered in freefall) and music (ducked under speech), mixed 1:1."""
    windows = plan.freefall
    lowered = camera
    if camera is not None and windows and audio.freefall_camera_level < 1:
        lowered = g.filter(
            "volume",
            camera,
            volume=freefall_gain_expr(windows, audio.freefall_camera_level),
            eval="frame",
        )
    if music is not None and camera is not None and audio.ducking:
        key = camera
        if windows:
            key = g.filter("volume", camera, volume=key_gate_expr(windows), eval="frame")
        threshold, ratio = duck_params(audio.duck_db)
        music = g.filter(
            "sidechaincompress",
            music,
            key,
            threshold=threshold,
            ratio=ratio,
            attack=DUCK_ATTACK_MS,
            release=DUCK_RELEASE_MS,
            level_sc=round(10 ** (KEY_BOOST_DB / 20), 6),
        )
    if lowered is None:
        return music
    if music is None:
        return lowered
    return g.filter(
        "amix", lowered, music, inputs=2, duration="first", dropout_transition=0, normalize=0
    )


def finish(g: Graph, stream: Stream, *, gain_db: float, true_peak_dbtp: float) -> Stream:
    """The programme gain, then a look-ahead limiter under the true-peak ceiling."""
    out = stream
    if abs(gain_db) > 1e-6:
        out = g.filter("volume", out, volume=f"{format_number(gain_db)}dB")
    limit = 10 ** ((true_peak_dbtp - TRUE_PEAK_MARGIN_DB) / 20)
    # level=0: no auto-levelling (it would undo the exact gain); latency=1: no delay.
    return g.filter(
        "alimiter", out, limit=round(limit, 6), attack=5, release=50, level=0, latency=1
    )


# --- levels (pure) -------------------------------------------------------------------------


@attrs.frozen
class CameraPart:
    """One segment's own sound on the output timeline, for the level plan."""

    loudness: SourceLoudness | None  # None: no audio (silence)
    source_start: float
    source_duration: float
    out_start: float
    out_duration: float
    fade_in: float = 0.0
    fade_out: float = 0.0


@attrs.frozen
class Levels:
    """Every gain the graph applies, and the loudness it is predicted to reach."""

    camera_gain_db: tuple[float, ...]
    music_gain_db: Mapping[str, float]
    programme_gain_db: float
    #: Integrated loudness of the mix before the programme gain (LUFS).
    predicted_lufs: float


def _blocks(seconds: float) -> int:
    return max(0, int(round(seconds / BLOCK_S)))


def _ramp_weights(count: int, fade_in: float, fade_out: float, curve: str) -> FloatArray:
    """Energy weights of a fade-in/out over ``count`` sub-blocks (tri or qsin)."""
    centres = (np.arange(count) + 0.5) * BLOCK_S
    total = count * BLOCK_S
    gain = np.ones(count)
    if fade_in > 0:
        gain = np.minimum(gain, np.clip(centres / fade_in, 0, 1))
    if fade_out > 0:
        gain = np.minimum(gain, np.clip((total - centres) / fade_out, 0, 1))
    if curve == "qsin":
        gain = np.sin(gain * math.pi / 2)
    weights: FloatArray = gain**2
    return weights


def _window_weights(length: int, windows: Sequence[tuple[float, float]]) -> FloatArray:
    centres = (np.arange(length) + 0.5) * BLOCK_S
    inside = np.zeros(length)
    for a, b in windows:
        inside += np.clip(np.minimum((centres - a) / FREEFALL_RAMP_S + 0.5,
                                     (b - centres) / FREEFALL_RAMP_S + 0.5), 0, 1)  # fmt: skip
    return np.clip(inside, 0, 1)


def _stretched(series: FloatArray, count: int) -> FloatArray:
    # A slowed stretch: the same sub-blocks, held longer.
    if series.size == 0 or count == 0:
        return np.zeros(count)
    index = np.minimum((np.arange(count) * series.size) // count, series.size - 1)
    return series[index]


def plan_levels(
    parts: Sequence[CameraPart],
    plan: MusicPlan,
    music: Mapping[str, SourceLoudness],
    audio: ResolvedAudio,
) -> Levels:
    """Gains for the camera parts, the music tracks and the programme (pure).

    * each part's camera gain brings its sound *outside* freefall to the speech
      reference (clamped to ±12 dB; silence is left alone);
    * each track's gain brings it to the reference plus ``music_volume``;
    * the programme is simulated per 100 ms sub-block as the graph mixes it —
      freefall lowering, ducking (threshold/ratio as :func:`duck_params`),
      crossfades and fades — and the programme gain is the target minus its
      integrated loudness.
    """
    total = plan.total_s
    length = _blocks(total)
    inside = _window_weights(length, plan.freefall)
    camera_gains: list[float] = []
    placed: list[tuple[float, FloatArray]] = []
    for part in parts:
        count = _blocks(part.out_duration)
        if part.loudness is None or count == 0:
            camera_gains.append(0.0)
            continue
        series = _stretched(part.loudness.window(part.source_start, part.source_duration), count)
        first = _blocks(part.out_start)
        mask = 1.0 - inside[first : first + count]
        mask = np.pad(mask, (0, count - mask.size), constant_values=1.0)
        speech = integrated_lufs(series * (mask >= 0.5))
        gain = 0.0
        if speech > SILENCE_LUFS:
            gain = max(-MAX_CAMERA_GAIN_DB, min(MAX_CAMERA_GAIN_DB, SPEECH_REF_LUFS - speech))
        camera_gains.append(round(gain, 2))
        weights = _ramp_weights(count, part.fade_in, part.fade_out, "tri")
        placed.append((part.out_start, series * weights * 10 ** (round(gain, 2) / 10)))
    camera = place(length, placed) if audio.keep_camera else np.zeros(length)
    key = camera * (1.0 - inside) ** 2
    lowered = camera * (1.0 - (1.0 - audio.freefall_camera_level) * inside) ** 2

    music_gains: dict[str, float] = {}
    for asset in {cue.asset for cue in plan.cues}:
        track = music[asset].integrated()
        wanted = SPEECH_REF_LUFS + 20 * math.log10(max(audio.music_volume, 1e-6))
        music_gains[asset] = round(wanted - track, 2) if track > SILENCE_LUFS else 0.0
    cue_parts = []
    for cue in plan.cues:
        count = _blocks(cue.duration)
        series = music[cue.asset].looped(cue.offset, cue.duration)[:count]
        series = series * _ramp_weights(count, cue.fade_in, cue.fade_out, "qsin")
        cue_parts.append((cue.start, series * 10 ** (music_gains[cue.asset] / 10)))
    bed = place(length, cue_parts) * _ramp_weights(length, plan.fade_in_s, plan.fade_out_s, "tri")
    if audio.ducking and audio.keep_camera and plan.cues:
        threshold, ratio = duck_params(audio.duck_db)
        key_db = 10 * np.log10(np.maximum(key / 2, 1e-30)) + KEY_BOOST_DB
        over = np.maximum(key_db - 20 * math.log10(threshold), 0.0)
        bed = bed * 10 ** (-over * (1 - 1 / ratio) / 10)
    predicted = integrated_lufs(lowered + bed)
    gain = 0.0
    if audio.normalize and predicted > SILENCE_LUFS:
        gain = round(audio.loudness_lufs - predicted, 2)
    return Levels(tuple(camera_gains), music_gains, gain, round(predicted, 2))


# --- the compiler's side: setup on the timeline, plan at compile time, three hooks ---------


@attrs.frozen(eq=False)
class AudioSetup:
    """What a timeline carries for its sound (``Timeline.audio``), all of it known
    before compiling: the resolved options, the music files, every source's
    measured loudness (:func:`measure_sources`), and the slow-motion options."""

    audio: ResolvedAudio
    #: asset uuid → (file, probe) for every music track the options name.
    music: Mapping[str, tuple[Path, MediaInfo]] = attrs.field(factory=dict)
    #: file → measurement, for every clip/intro/outro with sound and every track.
    loudness: Mapping[Path, SourceLoudness] = attrs.field(factory=dict)
    #: The render's slow-motion options (windows per clip, around the exit).
    slow_motion: SlowMotionOptions | None = None

    @property
    def interpolation(self) -> str:
        """How missing slow-motion frames are made (``mci`` unless the options say)."""
        chosen = self.slow_motion.interpolation if self.slow_motion is not None else None
        return chosen or "mci"


@attrs.frozen
class AudioPrep:
    """Everything the compiler needs for the sound of one render (pure, from the setup)."""

    audio: ResolvedAudio
    plan: MusicPlan
    levels: Levels
    tracks: Mapping[str, Track]

    def camera_gain(self, index: int) -> float:
        """Gain (dB) for the sound of timeline item ``index``."""
        return self.levels.camera_gain_db[index]


def segment_windows(item: Segment) -> tuple[SlowWindow, ...]:
    """A segment's slow-motion windows (the timeline stores them untyped)."""
    return tuple(w for w in item.slow_motion if isinstance(w, SlowWindow))


def placements(timeline: Timeline, sched: Schedule, audio: ResolvedAudio) -> list[Placement]:
    """The timeline's items as the music plan sees them (start times from the schedule)."""
    from ..timeline import Segment  # the timeline's package imports recipes, not the reverse

    result: list[Placement] = []
    for index, item in enumerate(timeline.items):
        start, length = sched.start_s(index), sched.duration_s(index)
        if not isinstance(item, Segment) or item.kind != "clip":
            result.append(Placement(start, length, "ground"))
            continue
        by_hand = audio.clips.get(item.video_uuid or "")
        windows: tuple[tuple[float, float], ...] = ()
        if item.freefall is not None:
            slow = segment_windows(item)
            a = to_output(item.freefall[0] - item.start, slow)
            b = to_output(item.freefall[1] - item.start, slow)
            windows = ((start + a, start + b),)
        result.append(Placement(start, length, by_hand.phase if by_hand else None, windows))
    return result


def audio_prep(timeline: Timeline, sched: Schedule, setup: AudioSetup) -> AudioPrep:
    """The music plan and every gain for ``timeline`` (pure: the measurements are in ``setup``)."""
    from ..timeline import Segment

    audio = setup.audio
    durations = {uuid: info.duration or 0.0 for uuid, (_, info) in setup.music.items()}
    plan = plan_music(placements(timeline, sched, audio), sched.total_s, audio, durations)
    parts: list[CameraPart] = []
    for index, item in enumerate(timeline.items):
        loudness = None
        if isinstance(item, Segment) and item.info.audio is not None and audio.keep_camera:
            loudness = setup.loudness.get(item.path)
        fade_in = sched.overlap_s(index - 1) if index > 0 else 0.0
        fade_out = sched.overlap_s(index) if index < len(sched.overlaps) else 0.0
        source_start = item.start if isinstance(item, Segment) else 0.0
        source_length = item.duration if isinstance(item, Segment) else item.output_seconds
        parts.append(CameraPart(loudness, source_start, source_length, sched.start_s(index),
                                sched.duration_s(index), fade_in, fade_out))  # fmt: skip
    music: dict[str, SourceLoudness] = {}
    for uuid in {cue.asset for cue in plan.cues}:
        path = setup.music[uuid][0]
        music[uuid] = setup.loudness.get(path) or SourceLoudness(np.zeros(0), 0.0)
    levels = plan_levels(parts, plan, music, audio)
    tracks = {}
    for uuid in music:
        path, info = setup.music[uuid]
        channels = info.audio.channels if info.audio is not None else None
        tracks[uuid] = Track(path, channels, levels.music_gain_db[uuid])
    return AudioPrep(audio, plan, levels, tracks)


async def measure_sources(
    cache: LoudnessCache, sources: Sequence[tuple[Path, MediaInfo]]
) -> dict[Path, SourceLoudness]:
    """Every source with sound measured (or read from the cache), one after another.

    Sequential on purpose: each measurement is a decode at full speed, and renders
    already run in parallel; a second render of the same files measures nothing.
    """
    found: dict[Path, SourceLoudness] = {}
    for path, info in sources:
        if info.audio is None or path in found:
            continue
        found[path] = await cache.get(path, stereo_chain(info.audio.channels))
    return found


def segment_picture(
    g: Graph, video: Stream, item: Segment, *, fps: Fraction, interpolation: str = "mci"
) -> Stream:
    """Compiler hook, per segment picture (before exact frames): slow motion."""
    windows = segment_windows(item)
    if not windows:
        return video
    video = g.filter("setpts", video, expr="PTS-STARTPTS")  # window times are segment times
    assert item.info.video is not None
    source_fps = Fraction(item.info.video.fps_rational) if item.info.video.fps_rational else None
    return slow_motion(g, video, duration=item.duration, windows=windows, out_fps=fps,
                       source_fps=source_fps, interpolation=interpolation)  # type: ignore[arg-type]  # fmt: skip


def segment_sound(g: Graph, sound: Stream, item: Segment, gain_db: float) -> Stream:
    """Compiler hook, per segment sound (PTS from 0): slow motion, then :func:`camera_audio`."""
    windows = segment_windows(item)
    if windows:
        sound = slow_motion_audio(g, sound, duration=item.duration, windows=windows)
    assert item.info.audio is not None
    return camera_audio(g, sound, channels=item.info.audio.channels, gain_db=gain_db)


def programme_sound(g: Graph, joined: Stream | None, prep: AudioPrep) -> Stream:
    """Compiler hook after the join: music bed, freefall lowering, ducking, loudness, limiter.

    ``joined`` is the programme's own sound (``None`` when the music replaces it).
    """
    bed = music_bed(g, prep.plan, prep.tracks)
    mix = programme(g, joined if prep.audio.keep_camera else None, bed, prep.plan, prep.audio)
    if mix is None:
        mix = g.filter("anullsrc", out_kind="a", r=AUDIO_RATE, cl="stereo")
        mix = g.filter("atrim", mix, end=prep.plan.total_s)
    return finish(g, mix, gain_db=prep.levels.programme_gain_db,
                  true_peak_dbtp=prep.audio.true_peak_dbtp)  # fmt: skip
