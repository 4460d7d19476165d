"""Clips on a project's timeline: ingest (upload or registration), trims, order, deletion.

Ingest, either way: ffprobe the file (not a video → 422 naming the problem),
decode a poster frame to ``thumbnails/{video uuid}.jpg`` (no frame → 422), then
insert the row at the end of the timeline. Width and height are stored as
*displayed* (after the stream's rotation); the rotation itself, the exact
rational frame rate and the audio stream are reported in the POST answer
under ``probe``. Any failure removes what was made so far: the thumbnail, and
for uploads the received file.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path, PurePosixPath
from typing import Any

import trio
from quart import Request
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..context import StinercutApp
from ..errors import ApiError
from ..media.probe import MediaInfo, ProbeError, probe
from ..media.thumbnail import ThumbnailError, make_thumbnail
from ..models import Video, new_uuid
from ..storage import Storage, UnsafePathError
from ..uploads import TEMP_PREFIX, receive_upload
from .cleanup import remove_files, thumbnail_path
from .projects import Removal, find_project, touch_project, unshared_sources

#: Trim points may overshoot the probed duration by float noise.
DURATION_TOLERANCE_S = 1e-6
PATH_MAX_CHARS = 500


def find_video(session: Session, uuid: str) -> Video:
    video = session.scalars(select(Video).where(Video.uuid == uuid)).one_or_none()
    if video is None:
        raise ApiError.not_found("video", uuid)
    return video


#: Container formats (ffprobe ``format_name`` parts) accepted for clips. ffmpeg
#: reads far more (it shows a text file as "ANSI art" video); camera footage
#: comes in these.
CLIP_FORMATS = frozenset(
    {"mov", "mp4", "matroska", "webm", "avi", "mpegts", "mpeg", "mxf", "flv", "asf", "ogg", "nut", "dv"}
)


def clip_problem(info: MediaInfo) -> str | None:
    """Why ``info`` is not a usable clip, or None."""
    if info.video is not None and not CLIP_FORMATS & set(info.format_name.split(",")):
        if info.is_still_image:
            return f"the file is a still image ({info.video.codec}), not a video"
        return f"the file is not in a video container (ffprobe read it as {info.format_name!r})"
    if info.video is None:
        if info.audio is not None:
            return "the file contains only audio, no video stream"
        return "the file contains no video stream"
    if info.is_still_image:
        return f"the file is a still image ({info.video.codec}), not a video"
    if info.video.width <= 0 or info.video.height <= 0:
        return "the video stream has no frame size"
    if info.duration is None or info.duration <= 0:
        return "the video has no duration (truncated or still being written?)"
    return None


async def probe_media(app: StinercutApp, path: Path, what: str = "video") -> MediaInfo:
    try:
        return await probe(path, ffprobe=app.settings.ffprobe)
    except ProbeError as exc:
        raise ApiError(422, f"not a {what}: {exc}", code="invalid_media") from None


async def probe_clip(app: StinercutApp, path: Path) -> MediaInfo:
    info = await probe_media(app, path)
    problem = clip_problem(info)
    if problem is not None:
        raise ApiError(422, f"not a video: {problem}", code="invalid_media")
    return info


def probe_summary(info: MediaInfo) -> dict[str, Any]:
    assert info.video is not None
    return {
        "format": info.format_name,
        "rotation": info.video.rotation,
        "coded_width": info.video.width,
        "coded_height": info.video.height,
        "fps_rational": info.video.fps_rational,
        "has_audio": info.audio is not None,
        "audio_codec": info.audio.codec if info.audio else None,
    }


def resolve_client_path(storage: Storage, relative: str) -> Path:
    """A client's ``path``: inside the root (else 400) and an existing file (else 422).

    Files still being uploaded (a component named ``.upload-…``) are refused with
    400 too, whether named directly or reached through a symlink: registering one
    would point a row at a file the upload deletes or renames moments later.
    """
    if len(relative) > PATH_MAX_CHARS:
        raise _unsafe_path("path is too long")
    try:
        resolved = storage.resolve(relative)
    except UnsafePathError as exc:
        raise _unsafe_path(f"path: {exc}") from None
    for parts in (PurePosixPath(relative).parts, PurePosixPath(storage.relative(resolved)).parts):
        if any(part.startswith(TEMP_PREFIX) for part in parts):
            raise _unsafe_path("path: names an upload that is still in progress")
    if not resolved.is_file():
        raise ApiError(
            422,
            f"path: no file at {relative!r} in the shared storage",
            code="file_not_found",
            details={"field": "path"},
        )
    return resolved


def _unsafe_path(message: str) -> ApiError:
    return ApiError(400, message, code="unsafe_path", details={"field": "path"})


def insert_video(
    session: Session,
    *,
    project_uuid: str,
    video_uuid: str,
    filename: str,
    path: str,
    info: MediaInfo,
) -> dict[str, Any]:
    assert info.video is not None
    project = touch_project(session, project_uuid)
    last = session.scalar(select(func.max(Video.order)).where(Video.project_id == project.id))
    width, height = info.video.display_size
    video = Video(
        uuid=video_uuid,
        project_id=project.id,
        filename=filename[:255],
        path=path,
        duration=info.duration,
        width=width,
        height=height,
        codec=info.video.codec[:50],
        fps=info.video.fps,
        order=0 if last is None else last + 1,
        in_point=0.0,
        out_point=info.duration,
    )
    session.add(video)
    session.flush()
    return video.to_api()


async def _ingest(
    app: StinercutApp,
    project_uuid: str,
    source: Path,
    keep: Callable[[], Awaitable[Path]] | None,
) -> dict[str, Any]:
    """Probe, thumbnail, (keep the upload,) insert; undo the thumbnail on failure."""
    info = await probe_clip(app, source)
    video_uuid = new_uuid()
    thumbnail = thumbnail_path(app.storage, video_uuid)
    try:
        try:
            await make_thumbnail(
                source, thumbnail, duration=info.duration, ffmpeg=app.settings.ffmpeg
            )
        except ThumbnailError as exc:
            raise ApiError(422, f"not a video: {exc}", code="invalid_media") from None
        final = await keep() if keep is not None else source
        body = await app.db.run(
            partial(
                insert_video,
                project_uuid=project_uuid,
                video_uuid=video_uuid,
                filename=final.name,
                path=app.storage.relative(final),
                info=info,
            )
        )
    except BaseException:
        await remove_files([thumbnail])
        raise
    body["probe"] = probe_summary(info)
    return body


async def upload_video(app: StinercutApp, project_uuid: str, request: Request) -> dict[str, Any]:
    # The project is checked before the body is read: no upload for a missing project.
    await app.db.run(lambda s: find_project(s, project_uuid).id)
    directory = app.storage.uploads / project_uuid
    async with receive_upload(request, directory) as upload:
        return await _ingest(app, project_uuid, upload.path, upload.keep)


async def register_video(app: StinercutApp, project_uuid: str, relative: str) -> dict[str, Any]:
    await app.db.run(lambda s: find_project(s, project_uuid).id)
    source = await resolve_client_file(app.storage, relative)
    return await _ingest(app, project_uuid, source, None)


async def resolve_client_file(storage: Storage, relative: str) -> Path:
    return await trio.to_thread.run_sync(resolve_client_path, storage, relative)


def get_video(session: Session, uuid: str) -> dict[str, Any]:
    return find_video(session, uuid).to_api()


def trim_video(
    session: Session,
    uuid: str,
    *,
    changes: dict[str, float | None],
) -> dict[str, Any]:
    """Apply ``in_point``/``out_point`` (``None`` resets to the clip's start/end)."""
    video = find_video(session, uuid)
    touch_project(session, video.project.uuid)
    duration = video.duration
    new_in = changes["in_point"] if "in_point" in changes else video.in_point
    new_out = changes["out_point"] if "out_point" in changes else video.out_point
    new_in = 0.0 if new_in is None else new_in
    if new_out is None:
        new_out = duration
    if new_in < 0:
        raise _trim_error("in_point must be 0 or more", "in_point")
    if new_out is not None and not new_in < new_out:
        raise _trim_error(
            f"in_point ({new_in:g}) must be before out_point ({new_out:g})",
            "in_point" if "in_point" in changes else "out_point",
        )
    if duration is not None:
        if new_in >= duration:
            raise _trim_error(
                f"in_point ({new_in:g}) must be before the clip's end ({duration:g} s)", "in_point"
            )
        if new_out is not None and new_out > duration + DURATION_TOLERANCE_S:
            raise _trim_error(
                f"out_point ({new_out:g}) is past the clip's end ({duration:g} s)", "out_point"
            )
        if new_out is not None:
            new_out = min(new_out, duration)
    video.in_point = new_in
    video.out_point = new_out
    session.flush()
    return video.to_api()


def _trim_error(message: str, field: str) -> ApiError:
    return ApiError(422, message, code="invalid_trim", details={"field": field})


def reorder(session: Session, project_uuid: str, uuids: list[str]) -> dict[str, Any]:
    """Set the timeline to exactly ``uuids``, all in one transaction."""
    project = touch_project(session, project_uuid)
    videos = list(session.scalars(select(Video).where(Video.project_id == project.id)))
    by_uuid = {v.uuid: v for v in videos}
    counts = Counter(uuids)
    duplicates = sorted(u for u, n in counts.items() if n > 1)
    unknown = sorted(set(counts) - set(by_uuid))
    missing = sorted(set(by_uuid) - set(counts))
    if duplicates or unknown or missing:
        raise ApiError(
            422,
            "videos must list each of the project's clips exactly once",
            code="invalid_order",
            details={
                "field": "videos",
                "missing": missing,
                "unknown": unknown,
                "duplicates": duplicates,
            },
        )
    for position, uuid in enumerate(uuids):
        by_uuid[uuid].order = position
    session.flush()
    return {"videos": [by_uuid[u].to_api() for u in uuids]}


def delete_video(session: Session, storage: Storage, uuid: str, *, purge: bool) -> Removal:
    video = find_video(session, uuid)
    project = touch_project(session, video.project.uuid)
    files = [thumbnail_path(storage, video.uuid)]
    if purge:
        files += unshared_sources(session, storage, [video], leaving={video.id})
    session.delete(video)
    session.flush()
    # Close the gap so positions stay 0..n-1.
    rest = session.scalars(
        select(Video).where(Video.project_id == project.id).order_by(Video.order, Video.id)
    )
    for position, other in enumerate(rest):
        other.order = position
    return Removal(tuple(files))
