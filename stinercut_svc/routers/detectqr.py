"""``POST /api/detectqr``: is there a QR code in this clip, and at which second?

Same request and answer as the original backend: ``{"video_path": "relative/path.mp4"}``
(relative to the shared storage root) → ``{success, qr_content, frame_timestamp,
attempts, message}``. Frames are sampled at 0, 1, 2 and 5 s and, for clips longer
than 10 s, at 10/25/50/75 % of the duration; the first code found is answered
(:func:`stinercut_svc.media.qr.detect_times`, :func:`~stinercut_svc.media.qr.scan`).
Two keys are added: ``uuid`` (the customer UUID of a ``Stinercut: <uuid>``
payload, or the first UUID in it) and ``sampled_at`` (the seconds actually scanned).

Not found is a normal answer (200, ``success: false``). Unsafe path → 400
``unsafe_path``; no such file → 422 ``file_not_found``; not a video → 422
``invalid_media``; a scan running past its deadline → 504 ``scan_timeout``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import trio
from pydantic import BaseModel, Field
from quart import Blueprint
from quart_schema import document_response, validate_request

from ..context import current
from ..errors import ApiError
from ..media import qr
from ..media.runner import ToolTimeoutError
from ..openapi import StrictModel
from ..services.videos import probe_clip, resolve_client_path
from ..storage import Storage
from .docs import errors

blueprint = Blueprint("detectqr", __name__)


class DetectQrIn(StrictModel):
    video_path: str = Field(
        min_length=1, max_length=500, description="the clip, relative to the shared storage root"
    )


class DetectQrOut(BaseModel):
    success: bool = Field(description="a QR code was found")
    qr_content: str | None = Field(description="the code's text")
    frame_timestamp: float | None = Field(description="second of the frame that held it")
    attempts: int = Field(description="frames decoded (up to and including the hit)")
    message: str | None = Field(description="why nothing was found; null on success")
    uuid: str | None = Field(description="customer UUID from a 'Stinercut: <uuid>' payload")
    sampled_at: list[float] = Field(description="the seconds whose frames were decoded")


@blueprint.post("/api/detectqr")
@validate_request(DetectQrIn)
@document_response(DetectQrOut)
@errors(400, 413, 422, 503, 504)
async def detect_qr(data: DetectQrIn) -> dict[str, Any]:
    """Scan a clip in the shared storage for a QR code (first one found wins)."""
    app = current()
    path = await trio.to_thread.run_sync(_resolve, app.storage, data.video_path)
    info = await probe_clip(app, path)
    assert info.duration is not None  # probe_clip refuses clips without one
    try:
        found = await qr.scan(
            path,
            qr.detect_times(info.duration),
            ffmpeg=app.settings.ffmpeg,
            # The app's worker processes: zxing-cpp holds the GIL while decoding.
            run_sync=app.font_workers.run_sync,
        )
    except qr.QrScanError as exc:
        raise ApiError(422, f"not a video: {exc}", code="invalid_media") from None
    except ToolTimeoutError as exc:
        raise ApiError(504, str(exc), code="scan_timeout") from None
    return {
        "success": found.found,
        "qr_content": found.content,
        "frame_timestamp": found.timestamp,
        "attempts": found.attempts,
        "message": None
        if found.found
        else f"No QR code detected after scanning {found.attempts} frames",
        "uuid": None if found.content is None else qr.parse_payload(found.content),
        "sampled_at": list(found.sampled),
    }


def _resolve(storage: Storage, relative: str) -> Path:
    """The storage helper's checks, with this route's field name in the answer."""
    try:
        return resolve_client_path(storage, relative)
    except ApiError as exc:
        raise ApiError(
            exc.status,
            exc.message.replace("path", "video_path", 1),
            code=exc.code,
            details={"field": "video_path"},
        ) from None
