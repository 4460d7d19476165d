"""Render options: what a project's ``settings`` may hold, and a render request may override.

Every field is optional. ``None`` (or absent) means "use the default": the
``render.*`` rows of the ``setting`` table, else values taken from the first clip.
The same model validates ``PATCH /api/projects/{uuid}`` settings and the body of
``POST /api/projects/{uuid}/render``, so a typo in a key is refused in both places.
"""

from __future__ import annotations

from typing import Any, Literal
from uuid import UUID

from pydantic import Field

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
