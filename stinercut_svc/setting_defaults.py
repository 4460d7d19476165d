"""Setting rows the service needs, inserted at start-up only where a key is missing.

Staff change settings through the frontend (same ``setting`` table), so start-up
never overwrites a value: it only fills in keys that do not exist yet. Every
feature lists its defaults in :data:`DEFAULTS`, here, so one place shows them all.

:data:`FRONTEND_DEFAULTS` are the frontend's own seed rows (``video.*``,
``storage.*``). They are *not* inserted at start-up: the frontend inserts them
once, when it creates ``setting``, and so does the service (migration ``0003``,
which carries its own frozen copy) when it is the one that created the table.
An operator who deletes one therefore does not see it come back.
"""

from __future__ import annotations

import json
from typing import Any

import attrs
from sqlalchemy import select
from sqlalchemy.orm import Session

from .models import Setting, SettingType


@attrs.frozen
class SettingDefault:
    key: str
    value: Any
    type: SettingType
    category: str
    label: str
    description: str = ""
    options: tuple[Any, ...] | None = None

    def stored_options(self) -> str | None:
        """The options as the frontend writes them: a JSON list, ``", "`` separated."""
        return None if self.options is None else json.dumps(list(self.options))

    def stored_value(self) -> str:
        if self.type is SettingType.JSON:
            return json.dumps(self.value)
        if self.type is SettingType.BOOLEAN:
            return "true" if self.value else "false"
        return str(self.value)


_PRESETS = (
    "ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow",
)  # fmt: skip
_CORNERS = ("top-left", "top-right", "bottom-left", "bottom-right")

#: Render defaults (stinercut_svc.jobs): a project's settings and a render request
#: override them. Width/height 0 and fps "auto" mean "as the first clip".
RENDER_DEFAULTS: tuple[SettingDefault, ...] = (
    SettingDefault("render.max_concurrent_jobs", 1, SettingType.INTEGER, "render",
                   "Renders at the same time", "Per service instance."),
    SettingDefault("render.output_width", 0, SettingType.INTEGER, "render", "Output width",
                   "Pixels, even; 0 = the first clip's width."),
    SettingDefault("render.output_height", 0, SettingType.INTEGER, "render", "Output height",
                   "Pixels, even; 0 = the first clip's height."),
    SettingDefault("render.output_fps", "auto", SettingType.STRING, "render", "Output frame rate",
                   "A number such as 25 or 29.97, or 'auto' for the first clip's rate."),
    SettingDefault("render.output_crf", 20, SettingType.INTEGER, "render", "Quality (CRF)",
                   "x264 constant rate factor, 0-51; lower is better and larger."),
    SettingDefault("render.output_preset", "veryfast", SettingType.STRING, "render",
                   "Encoder preset", "x264 speed/size trade-off.", options=_PRESETS),
    SettingDefault("render.watermark_position", "bottom-right", SettingType.STRING, "render",
                   "Watermark corner", options=_CORNERS),
    SettingDefault("render.watermark_margin", 24, SettingType.INTEGER, "render",
                   "Watermark margin", "Pixels from the corner."),
    SettingDefault("render.watermark_scale", "0.15", SettingType.STRING, "render",
                   "Watermark width", "Fraction of the output width (0-1]."),
    SettingDefault("render.audio_mode", "mix", SettingType.STRING, "render", "Music mode",
                   "mix: music under the clips' sound; replace: music only.",
                   options=("mix", "replace")),
    SettingDefault("render.music_volume", "0.8", SettingType.STRING, "render", "Music volume",
                   "Gain for the music, 0-4 (1 = unchanged)."),
    SettingDefault("render.music_fade_seconds", "2", SettingType.STRING, "render",
                   "Music fade-out", "Seconds of fade-out at the end of the video."),
)  # fmt: skip

#: Every default the service inserts.
DEFAULTS: tuple[SettingDefault, ...] = (*RENDER_DEFAULTS,)

_S, _I = SettingType.STRING, SettingType.INTEGER
#: The frontend's seed rows (``FRONTEND_CONTRACT.md``), as migration 0003 inserts them.
#: ``video.*`` are render defaults below the ``render.*`` rows (stinercut_svc.jobs.options).
FRONTEND_DEFAULTS: tuple[SettingDefault, ...] = (
    SettingDefault("video.default_codec", "h264", _S, "video", "Default Codec",
                   "Default video codec for output files", ("h264", "h265", "vp9", "av1")),
    SettingDefault("video.default_resolution", "1920x1080", _S, "video", "Default Resolution",
                   "Default output resolution (width x height)",
                   ("1280x720", "1920x1080", "2560x1440", "3840x2160")),
    SettingDefault("video.default_fps", 30, _I, "video", "Default Frame Rate",
                   "Default frames per second for output"),
    SettingDefault("video.default_bitrate", "8M", _S, "video", "Default Bitrate",
                   "Default video bitrate (e.g., 8M, 12M)"),
    SettingDefault("storage.upload_path", "/shared-videos/uploads", _S, "storage", "Upload Path",
                   "Directory for uploaded video files"),
    SettingDefault("storage.output_path", "/shared-videos/output", _S, "storage", "Output Path",
                   "Directory for processed video files"),
    SettingDefault("storage.temp_path", "/shared-videos/temp", _S, "storage", "Temp Path",
                   "Directory for temporary processing files"),
    SettingDefault("storage.max_upload_size", 5368709120, _I, "storage", "Max Upload Size",
                   "Maximum upload file size in bytes (default: 5GB)"),
)  # fmt: skip


def insert_missing(
    session: Session, defaults: tuple[SettingDefault, ...] | None = None
) -> list[str]:
    """Insert the defaults whose key is absent; return the keys inserted."""
    if defaults is None:
        defaults = DEFAULTS
    existing = set(session.scalars(select(Setting.key)))
    added = []
    for item in defaults:
        if item.key in existing:
            continue
        session.add(
            Setting(
                key=item.key,
                value=item.stored_value(),
                type=item.type,
                category=item.category,
                label=item.label,
                description=item.description or None,
                options=item.stored_options(),
            )
        )
        added.append(item.key)
    return added
