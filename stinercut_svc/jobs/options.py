"""Render options: what a project's ``settings`` may hold, and a render request may override.

Every field is optional. ``None`` (or absent) means "use the default": the
``render.*`` rows of the ``setting`` table, else values taken from the first clip.
The same model validates ``PATCH /api/projects/{uuid}`` settings and the body of
``POST /api/projects/{uuid}/render``, so a typo in a key is refused in both places.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any, Literal
from uuid import UUID

import attrs
from pydantic import Field, ValidationError

from ..openapi import StrictModel

WatermarkPosition = Literal["top-left", "top-right", "bottom-left", "bottom-right"]
AudioMode = Literal["mix", "replace"]
Preset = Literal[
    "ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow"
]


class OutputOptions(StrictModel):
    width: int | None = Field(default=None, ge=16, le=7680, multiple_of=2)
    height: int | None = Field(default=None, ge=16, le=4320, multiple_of=2)
    fps: float | None = Field(default=None, gt=0, le=240)
    crf: int | None = Field(default=None, ge=0, le=51)
    preset: Preset | None = None


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

    def stored(self) -> dict[str, Any]:
        """JSON-ready form for the project's ``settings`` column: only what was set."""
        return self.model_dump(mode="json", exclude_none=True)


# --- resolution: setting-table defaults ← project settings ← request ---------------

#: ``setting`` keys holding render defaults, and the option each one fills.
SETTING_KEYS: dict[str, str] = {
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
}
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
    merged.update(extra)
    if output:
        merged["output"] = output
    return RenderOptions.model_validate(merged)


def setting_overrides(values: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Typed ``setting`` values → ``RenderOptions`` fields (flat) and the keys ignored.

    A value that fails validation (written badly through some other tool) is
    skipped with its key reported, so a bad row never stops renders: the built-in
    default applies instead.
    """
    fields: dict[str, Any] = {}
    ignored: list[str] = []
    for key, target in SETTING_KEYS.items():
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
    return fields, ignored


def resolve(options: RenderOptions, defaults: dict[str, Any]) -> ResolvedOptions:
    """Fill every unset option from ``defaults`` (see :func:`setting_overrides`)."""
    base = ResolvedOptions()
    output = options.output or OutputOptions()

    def pick(value: Any, key: str, fallback: Any) -> Any:
        if value is not None:
            return value
        return defaults.get(key, fallback)

    fps = pick(output.fps, "output.fps", None)
    fade = defaults.get("music_fade_s", base.music_fade_s)
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
        width=pick(output.width, "output.width", None),
        height=pick(output.height, "output.height", None),
        fps=None if fps is None else fps_fraction(fps),
        crf=pick(output.crf, "output.crf", base.crf),
        preset=pick(output.preset, "output.preset", base.preset),
    )


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
