"""Render options: what a project's ``settings`` may hold, and a render request may override.

Every field is optional. ``None`` (or absent) means "use the default". Precedence,
highest first, per knob:

1. the render request's body;
2. the project's ``settings``;
3. the service's ``render.*`` setting rows (``render.output_width``/``height`` 0 and
   ``render.output_fps`` ``auto`` mean "not set here");
4. the frontend's ``video.*`` rows (``video.default_resolution`` ``1920x1080``,
   ``video.default_fps``, ``video.default_codec``, ``video.default_bitrate``), which
   operators edit on the frontend's settings page;
5. built-in: the first clip's size and frame rate, H.264, CRF 20, no bitrate cap.

The ``render.*`` rows sit above the ``video.*`` rows because they are the narrower,
service-specific knobs (separate width/height, NTSC rates such as 29.97, CRF,
preset): whoever sets one means this service. Left at their "not set" values
they let the frontend's general defaults through.

Output size is resolved as a pair: the first layer that names a width or a height
decides both (the other side follows the first clip's aspect), so a request asking
for width 640 never gets the frontend's 1080 as height.

Rate control is CRF (``output.crf``/``render.output_crf``: quality) with the bitrate
(``output.bitrate``/``video.default_bitrate``, e.g. ``8M``) as a ceiling: capped CRF
(``-maxrate``/``-bufsize`` for x264, x265 and SVT-AV1; constrained quality ``-b:v``
for VP9 and libaom). Simple clips stay small, busy freefall footage never exceeds
what the operator allowed.

The same model validates ``PATCH /api/projects/{uuid}`` settings and the body of
``POST /api/projects/{uuid}/render``, so a typo in a key is refused in both places.
"""

from __future__ import annotations

import re
from fractions import Fraction
from typing import Any, Literal
from uuid import UUID

import attrs
from pydantic import Field, ValidationError, field_validator

from ..openapi import StrictModel
from ..render.music import AudioOptions
from ..render.name_screen import NameScreenOptions
from ..render.recipes.slowmo import SlowMotionOptions

WatermarkPosition = Literal["top-left", "top-right", "bottom-left", "bottom-right"]
AudioMode = Literal["mix", "replace"]
Preset = Literal[
    "ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow"
]
#: Output video codecs: the values of the frontend's ``video.default_codec`` choice.
Codec = Literal["h264", "h265", "vp9", "av1"]
CODECS: tuple[str, ...] = ("h264", "h265", "vp9", "av1")
DEFAULT_CODEC = "h264"
#: Transitions between clips. ``clue`` is the frontend's name for a crossfade
#: (kept as an accepted value); ``fade`` goes through black.
TransitionOption = Literal["none", "fade", "crossfade", "clue", "slide", "wipe"]
TransitionDirection = Literal["left", "right", "up", "down"]
#: An edition's name: a file-name-safe slug (``main`` is the job's own output).
EDITION_NAME = r"^[a-z0-9][a-z0-9_-]{0,31}$"
MAX_EDITIONS = 4
#: ``8M``, ``12M``, ``2.5M``, ``800k``, ``8000000`` (bits per second); ``0`` = no cap.
BITRATE_PATTERN = r"^\s*(\d+(?:\.\d+)?)\s*([kKmMgG]?)\s*$"
MAX_BITRATE = 500_000_000


class OutputOptions(StrictModel):
    width: int | None = Field(default=None, ge=16, le=7680, multiple_of=2)
    height: int | None = Field(default=None, ge=16, le=4320, multiple_of=2)
    fps: float | None = Field(default=None, gt=0, le=240)
    crf: int | None = Field(default=None, ge=0, le=51)
    preset: Preset | None = None
    codec: Codec | None = None
    bitrate: str | None = Field(
        default=None,
        pattern=BITRATE_PATTERN,
        max_length=16,
        description="Video bitrate ceiling such as 8M or 800k (capped CRF); 0 = no cap.",
    )

    @field_validator("bitrate")
    @classmethod
    def _bitrate_in_range(cls, value: str | None) -> str | None:
        if value is not None:
            parse_bitrate(value)  # ValueError → 422 naming the field
        return value


class EditionOptions(StrictModel):
    """One more output of the same render (decoded once, split, encoded again).

    An edition of another shape than the main output is cropped around the
    focus (``focus_x``, ``clip_focus``), never letterboxed: 1080x1920 is the
    vertical edition. Unset codec settings follow the main output's.
    """

    name: str = Field(pattern=EDITION_NAME, description="File-safe name, e.g. vertical, preview.")
    width: int | None = Field(default=None, ge=16, le=7680, multiple_of=2)
    height: int | None = Field(default=None, ge=16, le=4320, multiple_of=2)
    crf: int | None = Field(default=None, ge=0, le=51)
    preset: Preset | None = None
    codec: Codec | None = None
    bitrate: str | None = Field(default=None, pattern=BITRATE_PATTERN, max_length=16)

    @field_validator("bitrate")
    @classmethod
    def _bitrate_in_range(cls, value: str | None) -> str | None:
        if value is not None:
            parse_bitrate(value)
        return value

    @field_validator("name")
    @classmethod
    def _not_main(cls, value: str) -> str:
        if value == "main":
            raise ValueError("'main' is the job's own output")
        return value


class RenderOptions(StrictModel):
    intro_asset: UUID | None = None
    outro_asset: UUID | None = None
    watermark_asset: UUID | None = None
    watermark_position: WatermarkPosition | None = None
    watermark_margin: int | None = Field(default=None, ge=0, le=2000)
    watermark_scale: float | None = Field(default=None, gt=0, le=1)
    audio_asset: UUID | None = None
    audio_mode: AudioMode | None = None
    music_volume: float | None = Field(default=None, ge=0, le=4)
    output: OutputOptions | None = None
    transition: TransitionOption | None = Field(
        default=None,
        description="Between clips: none (cut), fade (through black), crossfade (or the "
        "frontend's 'clue'), slide, wipe. Default none.",
    )
    transition_duration: float | None = Field(
        default=None, ge=0.5, le=2.0, description="Seconds, 0.5-2. Default 1."
    )
    transition_direction: TransitionDirection | None = Field(
        default=None, description="For slide and wipe. Default left."
    )
    watermark_on_intro: bool | None = Field(
        default=None,
        description="Also watermark intro, name screen and outro (default: clips only).",
    )
    editions: list[EditionOptions] | None = Field(
        default=None,
        max_length=MAX_EDITIONS,
        description="Extra outputs of the same render, e.g. a 1080x1920 vertical and a "
        "640 px preview; all written by one ffmpeg run.",
    )
    focus_x: float | None = Field(
        default=None, ge=0, le=1,
        description="Horizontal centre of interest for cropped editions (0 left, 1 right).",
    )  # fmt: skip
    clip_focus: dict[UUID, float] | None = Field(
        default=None, description="Per clip (video uuid) focus_x; pans smoothly over transitions."
    )
    # --- audio helper (#14 points 3, 4, 6): render/music.py, render/recipes/slowmo.py ---
    audio: AudioOptions | None = Field(
        default=None,
        description="Music per jump phase (freefall track from exit to deployment), camera "
        "sound lowered in freefall, ducking under speech, programme loudness target.",
    )
    slow_motion: SlowMotionOptions | None = Field(
        default=None, description="Slow-motion windows (e.g. around the exit); none by default."
    )
    # --- name screen (namescreen helper): after the intro, see render/name_screen.py ---
    name_screen: NameScreenOptions | None = Field(
        default=None,
        description="The passenger name screen (pax_template asset filled with the "
        "project's name); merged key by key like output.",
    )

    @field_validator("editions")
    @classmethod
    def _unique_editions(cls, value: list[EditionOptions] | None) -> list[EditionOptions] | None:
        if value is not None and len({e.name for e in value}) != len(value):
            raise ValueError("edition names must be unique")
        return value

    @field_validator("clip_focus")
    @classmethod
    def _focus_range(cls, value: dict[UUID, float] | None) -> dict[UUID, float] | None:
        if value is not None and any(not 0 <= f <= 1 for f in value.values()):
            raise ValueError("focus values are between 0 and 1")
        return value

    def stored(self) -> dict[str, Any]:
        """JSON-ready form for the project's ``settings`` column: only what was set."""
        return self.model_dump(mode="json", exclude_none=True)


# --- resolution: setting-table defaults ← project settings ← request ---------------

#: The service's ``setting`` keys holding render defaults, and the option each fills.
RENDER_SETTING_KEYS: dict[str, str] = {
    "render.output_width": "output.width",
    "render.output_height": "output.height",
    "render.output_fps": "output.fps",
    "render.output_crf": "output.crf",
    "render.output_preset": "output.preset",
    "render.watermark_position": "watermark_position",
    "render.watermark_margin": "watermark_margin",
    "render.watermark_scale": "watermark_scale",
    "render.audio_mode": "audio_mode",
    "render.music_volume": "music_volume",
    "render.transition": "transition",
    "render.transition_duration": "transition_duration",
    "render.watermark_on_intro": "watermark_on_intro",
}
#: The frontend's ``video.*`` keys (one layer below), and what each fills.
FRONTEND_SETTING_KEYS: dict[str, str] = {
    "video.default_resolution": "video.size",
    "video.default_fps": "video.fps",
    "video.default_codec": "video.codec",
    "video.default_bitrate": "video.bitrate",
}
#: Every key the render reads from ``setting`` (:func:`queue.read_render_settings`).
SETTING_KEYS: dict[str, str] = {**RENDER_SETTING_KEYS, **FRONTEND_SETTING_KEYS}
CODEC_KEY = "video.default_codec"
MAX_CONCURRENT_KEY = "render.max_concurrent_jobs"
MUSIC_FADE_KEY = "render.music_fade_seconds"


@attrs.frozen
class ResolvedOptions:
    """Every render knob with a concrete value; ``None`` size/fps = as the first clip."""

    intro_asset: str | None = None
    outro_asset: str | None = None
    watermark_asset: str | None = None
    watermark_position: str = "bottom-right"
    watermark_margin: int = 24
    watermark_scale: float = 0.15
    audio_asset: str | None = None
    audio_mode: str = "mix"
    music_volume: float = 0.8
    music_fade_s: float = 2.0
    width: int | None = None
    height: int | None = None
    fps: Fraction | None = None
    crf: int = 20
    preset: str = "veryfast"
    #: Not checked here: a bad value from the ``video.default_codec`` row reaches
    #: the plan, which fails the job naming it (see ``codec_source``).
    codec: str = DEFAULT_CODEC
    #: Where ``codec`` came from, for that message.
    codec_source: str = "built-in default"
    #: Ceiling in bits per second, ``None`` = uncapped.
    max_bitrate: int | None = None
    transition: str = "none"  # none | fade | crossfade | slide | wipe (``clue`` mapped)
    transition_duration: float = 1.0
    transition_direction: str = "left"
    watermark_on_intro: bool = False
    editions: tuple[EditionOptions, ...] = ()
    focus_x: float = 0.5
    #: Video uuid -> focus_x.
    clip_focus: tuple[tuple[str, float], ...] = ()

    @property
    def asset_uuids(self) -> dict[str, str]:
        """Option name → asset uuid, for the assets this render uses."""
        pairs = {
            "intro_asset": self.intro_asset,
            "outro_asset": self.outro_asset,
            "watermark_asset": self.watermark_asset,
            "audio_asset": self.audio_asset,
        }
        return {name: value for name, value in pairs.items() if value}


def project_options(settings: dict[str, Any]) -> RenderOptions:
    """The render options inside a project's ``settings`` object.

    The frontend may keep keys of its own beside them, so unknown keys are
    ignored here (the REST layer refuses them on write); known keys with bad
    values raise pydantic's ``ValidationError``.
    """
    known = {key: value for key, value in settings.items() if key in RenderOptions.model_fields}
    return RenderOptions.model_validate(known)


def merge(base: RenderOptions, override: RenderOptions | None) -> RenderOptions:
    """``override``'s set fields win, field by field (``output`` merged per key)."""
    if override is None:
        return base
    merged = base.stored()
    extra = override.stored()
    output = {**merged.get("output", {}), **extra.pop("output", {})}
    # name_screen (namescreen helper): per key too, so a project's template and a
    # request's {"enabled": true} combine; only keys the request set (its defaults
    # must not undo the project's choices).
    extra.pop("name_screen", None)
    screen = {**merged.get("name_screen", {}), **(
        override.name_screen.model_dump(mode="json", exclude_unset=True)
        if override.name_screen is not None else {})}
    merged.update(extra)
    if output:
        merged["output"] = output
    if screen:
        merged["name_screen"] = screen
    return RenderOptions.model_validate(merged)


def setting_overrides(values: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Typed ``setting`` values → ``RenderOptions`` fields (flat) and the keys ignored.

    A value that fails validation (written badly through some other tool) is
    skipped with its key reported, so a bad row never stops renders: the built-in
    default applies instead.
    """
    fields: dict[str, Any] = {}
    ignored: list[str] = []
    for key, target in RENDER_SETTING_KEYS.items():
        if key not in values or values[key] is None:
            continue
        value = values[key]
        if target in ("output.width", "output.height") and value in (0, "0"):
            continue  # 0 = as the first clip
        if target == "output.fps":
            if str(value).strip().lower() in ("", "auto", "0"):
                continue
            if isinstance(value, str) and "/" in value:
                try:
                    value = float(Fraction(value.strip()))
                except (ValueError, ZeroDivisionError):
                    ignored.append(key)
                    continue
        outer, _, inner = target.partition(".")
        candidate = {inner: value} if inner else {outer: value}
        try:
            checked = (OutputOptions if inner else RenderOptions).model_validate(candidate)
        except ValidationError:
            ignored.append(key)
            continue
        fields[target] = getattr(checked, inner or outer)
    if values.get(MUSIC_FADE_KEY) is not None:
        fade = fade_seconds(values[MUSIC_FADE_KEY])
        if fade is None:
            ignored.append(MUSIC_FADE_KEY)
        else:
            fields["music_fade_s"] = fade
    _frontend_overrides(values, fields, ignored)
    return fields, ignored


def _frontend_overrides(values: dict[str, Any], fields: dict[str, Any], ignored: list[str]) -> None:
    """The frontend's ``video.*`` rows, as ``video.*`` entries of ``fields``.

    An unusable size, rate or bitrate is skipped (reported in ``ignored``) like a bad
    ``render.*`` row. The codec is passed on as written: a render must not silently
    come out as H.264 when an operator asked for something else, so an unknown
    codec fails the job instead (see :func:`stinercut_svc.jobs.plan.video_encoder`).
    """
    size = values.get("video.default_resolution")
    if size not in (None, ""):
        parsed = parse_resolution(size)
        if parsed is None:
            ignored.append("video.default_resolution")
        else:
            fields["video.size"] = parsed
    fps = values.get("video.default_fps")
    if fps not in (None, "", 0, "0"):
        try:
            checked = OutputOptions.model_validate({"fps": fps}).fps
        except ValidationError:
            ignored.append("video.default_fps")
        else:
            fields["video.fps"] = checked
    codec = values.get(CODEC_KEY)
    if codec not in (None, ""):
        fields["video.codec"] = str(codec).strip().lower()
    bitrate = values.get("video.default_bitrate")
    if bitrate not in (None, ""):
        try:
            fields["video.bitrate"] = parse_bitrate(bitrate)
        except ValueError:
            ignored.append("video.default_bitrate")


def parse_resolution(value: Any) -> tuple[int, int] | None:
    """``"1920x1080"`` → ``(1920, 1080)``; ``None`` unless both sides fit the output limits."""
    match = re.fullmatch(r"\s*(\d{2,5})\s*[xX×]\s*(\d{2,5})\s*", str(value))
    if match is None:
        return None
    try:
        checked = OutputOptions.model_validate(
            {"width": int(match.group(1)), "height": int(match.group(2))}
        )
    except ValidationError:
        return None
    assert checked.width is not None and checked.height is not None
    return checked.width, checked.height


def parse_bitrate(value: Any) -> int | None:
    """``"8M"`` → 8000000 bits/s (decimal units, as ffmpeg reads them); ``0`` → no cap.

    Raises ``ValueError`` for anything else, or a rate above 500 Mbit/s.
    """
    match = re.fullmatch(BITRATE_PATTERN, str(value))
    if match is None:
        raise ValueError(f"not a bitrate: {value!r}")
    scale = {"": 1, "k": 1_000, "m": 1_000_000, "g": 1_000_000_000}[match.group(2).lower()]
    rate = int(float(match.group(1)) * scale)
    if rate > MAX_BITRATE:
        raise ValueError(f"bitrate {value!r} is above {MAX_BITRATE // 1_000_000}M")
    return rate or None


def resolve(options: RenderOptions, defaults: dict[str, Any]) -> ResolvedOptions:
    """Fill every unset option from ``defaults`` (see :func:`setting_overrides`)."""
    base = ResolvedOptions()
    output = options.output or OutputOptions()

    def pick(value: Any, key: str, fallback: Any) -> Any:
        if value is not None:
            return value
        return defaults.get(key, fallback)

    fps = pick(output.fps, "output.fps", defaults.get("video.fps"))
    fade = defaults.get("music_fade_s", base.music_fade_s)
    width, height = _size(output, defaults)
    codec: str
    if output.codec is not None:
        codec, codec_source = output.codec, "option output.codec"
    elif defaults.get("video.codec") is not None:
        codec, codec_source = defaults["video.codec"], f"setting {CODEC_KEY}"
    else:
        codec, codec_source = base.codec, base.codec_source
    if output.bitrate is not None:
        max_bitrate = parse_bitrate(output.bitrate)
    else:
        max_bitrate = defaults.get("video.bitrate")
    return ResolvedOptions(
        intro_asset=_text(options.intro_asset),
        outro_asset=_text(options.outro_asset),
        watermark_asset=_text(options.watermark_asset),
        watermark_position=pick(
            options.watermark_position, "watermark_position", base.watermark_position
        ),
        watermark_margin=pick(options.watermark_margin, "watermark_margin", base.watermark_margin),
        watermark_scale=pick(options.watermark_scale, "watermark_scale", base.watermark_scale),
        audio_asset=_text(options.audio_asset),
        audio_mode=pick(options.audio_mode, "audio_mode", base.audio_mode),
        music_volume=pick(options.music_volume, "music_volume", base.music_volume),
        music_fade_s=fade,
        width=width,
        height=height,
        fps=None if fps is None else fps_fraction(fps),
        crf=pick(output.crf, "output.crf", base.crf),
        preset=pick(output.preset, "output.preset", base.preset),
        codec=codec,
        codec_source=codec_source,
        max_bitrate=max_bitrate,
        transition=transition_kind(pick(options.transition, "transition", base.transition)),
        transition_duration=pick(
            options.transition_duration, "transition_duration", base.transition_duration
        ),
        transition_direction=options.transition_direction or base.transition_direction,
        watermark_on_intro=pick(
            options.watermark_on_intro, "watermark_on_intro", base.watermark_on_intro
        ),
        editions=tuple(options.editions or ()),
        focus_x=base.focus_x if options.focus_x is None else options.focus_x,
        clip_focus=tuple(sorted((str(k), v) for k, v in (options.clip_focus or {}).items())),
    )


def transition_kind(value: str) -> str:
    """The frontend's ``clue`` is a crossfade; every other value is its own kind."""
    return "crossfade" if value == "clue" else value


def _size(output: OutputOptions, defaults: dict[str, Any]) -> tuple[int | None, int | None]:
    """Width and height from the first layer naming either (see the module docstring)."""
    if output.width or output.height:
        return output.width, output.height
    width, height = defaults.get("output.width"), defaults.get("output.height")
    if width or height:
        return width, height
    size = defaults.get("video.size")
    if size is not None:
        return size[0], size[1]
    return None, None


def fps_fraction(value: float | str | Fraction) -> Fraction:
    """A frame rate as an exact fraction; 29.97 and 59.94 mean the NTSC rates."""
    if isinstance(value, Fraction):
        return value
    if isinstance(value, str) and "/" in value:
        return Fraction(value)
    number = float(value)
    for ntsc in (24, 30, 60, 120):
        if abs(number - ntsc * 1000 / 1001) < 0.01:
            return Fraction(ntsc * 1000, 1001)
    return Fraction(number).limit_denominator(1001)


def fade_seconds(value: Any) -> float | None:
    """The ``render.music_fade_seconds`` value, or ``None`` when unusable."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if 0 <= number <= 60 else None


def _text(value: UUID | None) -> str | None:
    return None if value is None else str(value)
