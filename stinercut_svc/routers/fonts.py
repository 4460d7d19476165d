"""``POST /api/fonts/convert``: upload a TTF/OTF/WOFF/WOFF2, get SVG path definitions.

The upload goes through the service's one multipart reader
(:func:`stinercut_svc.uploads.receive_upload`) into ``temp/fonts/``, with the
font's limits: a ``Content-Length`` above 10 MB is refused (413) before a byte of
the body is read, a file part that grows past it (chunked bodies, lying headers)
is cut off with 413 while arriving, and the file name is checked as soon as the
part's headers arrive (a wrong extension is refused without reading the font).
The temporary file is read back in a worker thread and always removed.
Conversion is CPU work and runs in a worker process under ``app.font_limiter``
(``FONT_WORKERS`` at once), so the trio thread keeps serving. Each conversion has
a time budget (``FONT_TIMEOUT_SECONDS``, counted from when it got a worker slot,
not while it queued) and an output budget (``FONT_MAX_OUTPUT_BYTES``, counted in
the worker); past either the answer is 422 ``font_too_complex`` naming the limit.
On the time budget the worker process is killed (trio-parallel kills a
``cancellable`` worker on cancellation) and the next conversion starts a fresh one.
"""

from __future__ import annotations

import logging
from functools import partial

import attrs
import trio
from pydantic import BaseModel
from quart import Blueprint, Response, jsonify, request
from quart_schema import DataSource, document_request, document_response
from quart_schema.pydantic import File as FileField

from .. import fonts
from ..context import current
from ..errors import ApiError
from ..uploads import receive_upload
from .docs import errors

log = logging.getLogger(__name__)

blueprint = Blueprint("fonts", __name__, url_prefix="/api/fonts")

FIELD = "file"
#: Under the storage root's ``temp/``; a file lives there only while its request runs.
TEMP_FOLDER = "fonts"


class FontUploadIn(BaseModel):
    file: FileField


class FontConversionOut(BaseModel):
    success: bool
    font_name: str
    svg_paths: str
    glyph_count: int
    missing: list[str]
    empty: list[str]
    advances: dict[str, float]


@attrs.frozen
class FontUpload:
    font_name: str
    data: bytes


@blueprint.post("/convert")
@document_request(FontUploadIn, source=DataSource.FORM_MULTIPART)
@document_response(FontConversionOut)
@errors(400, 408, 413, 415, 422, 507)
async def convert() -> Response:
    app = current()
    upload = await receive_font()
    budget_s = app.settings.font_timeout_seconds
    convert = partial(
        fonts.convert_font,
        upload.data,
        upload.font_name,
        max_output_bytes=app.settings.font_max_output_bytes,
    )
    try:
        # The slot first, then the clock: time spent queueing behind other
        # conversions is not the font's fault.
        async with app.font_limiter:
            with trio.move_on_after(budget_s) as deadline:
                # In a worker process: see fonts.MAX_AUTO_WORKERS for why not a
                # thread. cancellable: on the deadline (or a client that goes away)
                # trio-parallel kills the worker process instead of waiting for it.
                # (Its own limiter is a private one: app.font_limiter is held.)
                result = await app.font_workers.run_sync(
                    convert, limiter=trio.CapacityLimiter(1), cancellable=True
                )
    except fonts.FontError as exc:
        raise ApiError(exc.status, exc.message, code=exc.code, details=exc.details) from None
    if deadline.cancelled_caught:
        log.warning(
            "font %r exceeded the %g s conversion budget; its worker was killed",
            upload.font_name[:80],
            budget_s,
        )
        raise ApiError(
            422,
            f"the font takes longer than the time budget of {budget_s:g} s to convert "
            "(nested composite glyphs?)",
            code="font_too_complex",
            details={"limit": "time", "seconds": budget_s},
        )
    return jsonify(result.to_api())



async def receive_font() -> FontUpload:
    """The current request's font (field ``file``), at most 10 MB, read into memory."""
    directory = current().storage.temp / TEMP_FOLDER
    async with receive_upload(
        request,
        directory,
        file_field=FIELD,
        max_file_bytes=fonts.MAX_FONT_BYTES,
        check_filename=_font_name,
    ) as upload:
        data = await trio.to_thread.run_sync(upload.path.read_bytes)
    # Not kept: leaving the block removed the temporary file.
    return FontUpload(font_name=_font_name(upload.client_filename), data=data)


def _font_name(filename: str) -> str:
    """The display name from the client's file name; 400 for a wrong extension."""
    try:
        return fonts.font_name_from_filename(filename)
    except fonts.FontError as exc:
        raise ApiError(400, exc.message, code=exc.code) from None
