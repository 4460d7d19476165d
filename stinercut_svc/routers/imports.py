"""Imports over HTTP: start one from a folder, list them, show one, cancel one.

* ``POST /api/imports {"path": "/media/card"}`` — a folder under ``IMPORT_ROOTS``
  (a card reader, a network share): ``202`` with the ``pending`` batch; the
  supervisor copies and analyses it. No roots configured → 409
  ``imports_disabled`` naming the setting; outside the roots (also through a
  symlink) → 403 ``path_not_allowed``; not an existing folder → 422 ``invalid_path``.
* ``GET /api/imports`` (newest first, ``limit``/``offset``), ``GET /api/imports/{uuid}``
  (the batch with its counts, copied files, analysed files and jumps).
  When the card already belongs to a batch, that batch answers instead of a new
  one (``reused``): ``"running"`` — a live batch reads this card already;
  ``"retried"`` — a batch that ended ``error``/``cancelled`` holds its files and is
  retried (re-inserting a pulled card finishes its batch).
* ``POST /api/imports/{uuid}/cancel`` — a pending batch is cancelled at once (200);
  a running one is flagged and stopped by whichever instance runs it (202).
* ``POST /api/imports/{uuid}/retry`` (body optional: ``{"skip_copy": bool}``) — an
  ``error``/``cancelled`` batch back to ``pending`` (202): it copies what its card
  still holds (card mounted, no ``skip_copy``) and analyses its folder. Any other
  status → 409 ``import_not_retryable``.

The jumps' own routes (assign, split, merge, confirm) are in :mod:`.jumps`.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from pydantic import BaseModel, Field, ValidationError
from quart import Blueprint, request
from quart_schema import (
    RequestSchemaValidationError,
    document_request,
    document_response,
    validate_querystring,
    validate_request,
)

from ..context import current
from ..openapi import StrictModel
from ..services import imports
from .docs import errors
from .params import parse_uuid

blueprint = Blueprint("imports", __name__)

MAX_PAGE = 200


class ImportIn(StrictModel):
    path: str = Field(
        min_length=1,
        max_length=imports.MOUNT_PATH_MAX,
        description="absolute path of a folder under IMPORT_ROOTS (a mounted card, a share)",
    )


class ImportQuery(StrictModel):
    limit: int = Field(default=50, ge=1, le=MAX_PAGE)
    offset: int = Field(default=0, ge=0, le=1_000_000_000)


class BatchOut(BaseModel):
    uuid: str
    status: str = Field(
        description="pending, copying, analyzing, resolved, needs_manual, error, cancelled"
    )
    resolution_type: str | None
    total_files: int
    analyzed_files: int
    copied_files: int | None
    skipped_files: int | None
    detected_qr_count: int
    detected_freefall_count: int
    error_message: str | None
    mount_path: str | None
    source_kind: str | None = Field(description="card (copied by the service) or input")


class StartedOut(BatchOut):
    reused: str | None = Field(
        default=None,
        description="null: a new batch; running: the live batch already reading this card; "
        "retried: the error/cancelled batch holding this card's files, retried",
    )


class RetryIn(StrictModel):
    skip_copy: bool = Field(
        default=False,
        description="analyse what was copied without reading the card for the rest",
    )


class BatchPage(BaseModel):
    imports: list[BatchOut]
    total: int
    limit: int
    offset: int


class BatchDetailOut(BatchOut):
    files: list[dict[str, Any]]
    jumps: list[dict[str, Any]]
    copied: list[dict[str, Any]]
    counts: dict[str, int]


@blueprint.post("/api/imports")
@validate_request(ImportIn)
@document_response(StartedOut, 202)
@errors(400, 403, 409, 422)
async def start_import(data: ImportIn) -> tuple[dict[str, Any], int]:
    """Import a folder under IMPORT_ROOTS: 202 with the pending (or reused) batch."""
    return await imports.start_folder_import(current(), data.path), 202


@blueprint.get("/api/imports")
@validate_querystring(ImportQuery)
@document_response(BatchPage)
@errors(400)
async def list_imports(query_args: ImportQuery) -> dict[str, Any]:
    """Import batches, newest first."""
    return await current().db.run(
        partial(imports.list_batches, limit=query_args.limit, offset=query_args.offset)
    )


@blueprint.get("/api/imports/<uuid>")
@document_response(BatchDetailOut)
@errors(400, 404)
async def show_import(uuid: str) -> dict[str, Any]:
    """One batch: counts, the files copied, the files analysed, the jumps."""
    return await current().db.run(partial(imports.batch_detail, uuid=parse_uuid(uuid)))


@blueprint.post("/api/imports/<uuid>/cancel")
@document_response(BatchOut, 200)
@document_response(BatchOut, 202)
@errors(400, 404, 409)
async def cancel_import(uuid: str) -> tuple[dict[str, Any], int]:
    """Cancel: 200 when it was pending (cancelled now), 202 when its owner stops it."""
    app = current()
    outcome = await app.db.run(partial(imports.request_cancel, uuid=parse_uuid(uuid)))
    if not outcome.running:
        await app.supervisor.publish("videofile:batch_status", outcome.batch)
        return outcome.batch, 200
    app.supervisor.cancel_local(outcome.batch["uuid"])
    return outcome.batch, 202


@blueprint.post("/api/imports/<uuid>/retry")
@document_request(RetryIn)
@document_response(BatchOut, 202)
@errors(400, 404, 409, 422)
async def retry_import(uuid: str) -> tuple[dict[str, Any], int]:
    """Retry a batch that ended in error or was cancelled: 202 with it, pending again.

    The body is optional; ``skip_copy`` analyses what was copied without the card."""
    body = await _retry_body()
    row = await imports.retry_import(current(), parse_uuid(uuid), skip_copy=body.skip_copy)
    return row, 202


async def _retry_body() -> RetryIn:
    raw = await request.get_data(as_text=False)
    if not raw.strip():
        return RetryIn()
    try:
        return RetryIn.model_validate(await request.get_json(force=True))
    except ValidationError as exc:
        raise RequestSchemaValidationError(exc) from None
