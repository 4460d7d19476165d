"""Response shapes for /openapi.json, and field types shared by request bodies.

The responses themselves are built by the models' ``to_api()``; these pydantic
classes only *describe* them (``document_response``), so serving a request costs
no second validation pass. Routes that take a multipart upload beside JSON
(:func:`upload_form`) or answer with a file (:func:`file_response`) say so with
the decorators below; :mod:`stinercut_svc.openapi` merges them into the document.
The models allow extra keys, so a later issue may add keys
to ``to_api()`` without breaking the contract; ``tests/test_openapi.py`` checks
that real answers match.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, Field
from quart_schema import document_response
from quart_schema.pydantic import File

from ..models.asset import AssetType

T = TypeVar("T", bound=Callable[..., Any])

Timestamp = Annotated[str, Field(description="ISO-8601 UTC, e.g. 2026-01-31T12:00:00Z")]


class ErrorBody(BaseModel):
    code: str
    message: str
    details: Any = None


class ErrorOut(BaseModel):
    """Every error answer: the ``error`` object plus ``detail``, the same message at
    the top level (the original backend's shape, which existing clients display)."""

    error: ErrorBody
    detail: str = Field(description="the human-readable message (= error.message)")


class ProjectOut(BaseModel):
    id: int
    uuid: str
    name: str
    status: Literal["draft", "processing", "completed", "error"]
    settings: dict[str, Any]
    created_at: Timestamp
    updated_at: Timestamp


class VideoOut(BaseModel):
    id: int
    uuid: str
    project_id: int
    filename: str
    path: str
    duration: float | None
    width: int | None
    height: int | None
    codec: str | None
    fps: float | None
    order: int
    in_point: float | None
    out_point: float | None
    created_at: Timestamp
    updated_at: Timestamp


class ProbeOut(BaseModel):
    """What ffprobe found beyond the stored columns (not stored; only in POST answers)."""

    format: str
    rotation: int
    coded_width: int
    coded_height: int
    fps_rational: str | None
    has_audio: bool
    audio_codec: str | None


class VideoCreatedOut(VideoOut):
    probe: ProbeOut


class JobOut(BaseModel):
    """Describes ``Job.to_view()``."""

    id: int
    uuid: str
    project_id: int
    project_uuid: str
    status: Literal["pending", "processing", "completed", "failed", "cancelled"]
    progress: int
    started_at: Timestamp | None
    completed_at: Timestamp | None
    output_path: str | None
    error_message: str | None
    created_at: Timestamp
    updated_at: Timestamp
    render_path: Literal["fastpath", "reencode"] | None
    interruptions: int
    options: dict[str, Any]


class ProjectDetailOut(ProjectOut):
    videos: list[VideoOut]
    jobs: list[JobOut]


class ProjectListOut(BaseModel):
    items: list[ProjectOut]
    total: int
    limit: int
    offset: int


class TimelineOut(BaseModel):
    videos: list[VideoOut]


class AssetOut(BaseModel):
    id: int
    uuid: str
    type: Literal["intro", "outro", "watermark", "audio", "audio_freefall", "pax_template"]
    name: str
    path: str
    created_at: Timestamp


class AssetListOut(BaseModel):
    items: list[AssetOut]


class SettingOut(BaseModel):
    id: int
    key: str
    value: Any
    type: Literal["string", "integer", "boolean", "json"]
    category: str | None
    label: str | None
    description: str | None
    options: Any
    created_at: Timestamp
    updated_at: Timestamp


class SettingListOut(BaseModel):
    items: list[SettingOut]


class DeletedOut(BaseModel):
    deleted: str
    removed_files: int


def errors(*statuses: int) -> Callable[[T], T]:
    """Document the error answers a route can give (all in the one error format)."""

    def decorator(func: T) -> T:
        for status in statuses:
            func = document_response(ErrorOut, status)(func)
        return func

    return decorator


#: Function attributes read by :class:`stinercut_svc.openapi.DocumentProvider`.
UPLOAD_FORM_ATTRIBUTE = "_stinercut_upload_form"
FILE_RESPONSE_ATTRIBUTE = "_stinercut_file_response"


class VideoUploadForm(BaseModel):
    """A clip as a multipart upload (the JSON alternative registers a stored file)."""

    file: File = Field(description="the video file (MP4, MOV, …), streamed to storage")


class AssetUploadForm(BaseModel):
    """An asset as a multipart upload (the JSON alternative registers a stored file)."""

    type: AssetType
    name: str | None = Field(default=None, min_length=1, max_length=255)
    file: File = Field(description="the asset file (video, image, audio or SVG template)")


def upload_form(model: type[BaseModel]) -> Callable[[T], T]:
    """Document a ``multipart/form-data`` body beside the route's JSON body."""

    def decorator(func: T) -> T:
        setattr(func, UPLOAD_FORM_ATTRIBUTE, model)
        return func

    return decorator


def file_response(*mimetypes: str, ranges: bool = False) -> Callable[[T], T]:
    """Document a file answer: ``200`` (and ``206`` for ``Range`` requests) of ``mimetypes``."""

    def decorator(func: T) -> T:
        setattr(func, FILE_RESPONSE_ATTRIBUTE, (mimetypes, ranges))
        return func

    return decorator
