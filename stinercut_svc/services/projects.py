"""Projects: listing, creation, the detail view (timeline + recent jobs), edits, deletion.

``settings`` is a JSON object validated by :class:`~stinercut_svc.jobs.options.RenderOptions`
and stored as JSON text (only the keys that were set). Assets it names must exist
and be of the matching type, so a render never starts from a dangling reference.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any, cast

import attrs
from sqlalchemy import func, inspect, select, update
from sqlalchemy.orm import Session

from ..errors import ApiError
from ..jobs.options import RenderOptions
from ..jobs.outputs import edition_paths
from ..models import Asset, AssetType, Job, JobStatus, Project, ProjectStatus, Video, utcnow
from ..storage import Storage
from .cleanup import resolve_stored, thumbnail_path

RECENT_JOBS = 10
ACTIVE_JOB_STATES = (JobStatus.PENDING, JobStatus.PROCESSING)

#: Which asset types each asset reference in the settings accepts.
ASSET_FIELDS: dict[str, tuple[AssetType, ...]] = {
    "intro_asset": (AssetType.INTRO,),
    "outro_asset": (AssetType.OUTRO,),
    "watermark_asset": (AssetType.WATERMARK,),
    "audio_asset": (AssetType.AUDIO, AssetType.AUDIO_FREEFALL),
}


def find_project(session: Session, uuid: str, *, lock: bool = False) -> Project:
    query = select(Project).where(Project.uuid == uuid)
    if lock:
        query = query.with_for_update()
    project = session.scalars(query).one_or_none()
    if project is None:
        raise ApiError.not_found("project", uuid)
    return project


def touch_project(session: Session, uuid: str) -> Project:
    """Lock the project for a timeline change, on both backends.

    An UPDATE takes MariaDB's row lock and SQLite's write lock before the
    timeline is read, so concurrent appends/reorders of one project serialise.
    """
    session.execute(update(Project).where(Project.uuid == uuid).values(updated_at=utcnow()))
    return find_project(session, uuid)


def list_projects(
    session: Session, *, status: ProjectStatus | None, q: str | None, limit: int, offset: int
) -> dict[str, Any]:
    query = select(Project)
    if status is not None:
        query = query.where(Project.status == status)
    if q:
        query = query.where(Project.name.icontains(q, autoescape=True))
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(
        query.order_by(Project.created_at.desc(), Project.id.desc()).limit(limit).offset(offset)
    )
    return {
        "items": [p.to_api() for p in rows],
        "total": total,
        "limit": limit,
        "offset": offset,
    }


def check_asset_refs(session: Session, options: RenderOptions) -> None:
    """Every asset named in the settings exists and has an acceptable type."""
    for field, types in ASSET_FIELDS.items():
        ref = getattr(options, field)
        if ref is None:
            continue
        asset = session.scalars(select(Asset).where(Asset.uuid == str(ref))).one_or_none()
        if asset is None:
            raise ApiError.unprocessable(
                f"settings.{field}: asset {ref} does not exist", field=f"settings.{field}"
            )
        if asset.type not in types:
            wanted = " or ".join(t.value for t in types)
            raise ApiError.unprocessable(
                f"settings.{field}: asset {ref} is a {asset.type.value}, not {wanted}",
                field=f"settings.{field}",
            )


def create_project(
    session: Session, name: str, settings: RenderOptions | None, callback_url: str | None = None
) -> dict[str, Any]:
    options = settings or RenderOptions()
    check_asset_refs(session, options)
    project = Project(
        name=name, settings=json.dumps(options.stored()), callback_url=callback_url
    )
    session.add(project)
    session.flush()
    return project.to_api()


@functools.cache
def _video_columns() -> tuple[Any, ...]:
    """Every mapped column of ``Video``, so Core rows carry the ORM attribute names."""
    return tuple(getattr(Video, attr.key) for attr in inspect(Video).column_attrs)


def project_detail(session: Session, uuid: str) -> dict[str, Any]:
    """The detail answer. The clips (the bulk of it) are read as Core rows, not ORM
    objects: building 20 tracked instances cost more than the query itself, and
    ``Video.to_api`` only reads attributes, which a row has under the same names."""
    project = find_project(session, uuid)
    videos = session.execute(
        select(*_video_columns())
        .where(Video.project_id == project.id)
        .order_by(Video.order, Video.id)
    )
    jobs = session.scalars(
        select(Job)
        .where(Job.project_id == project.id)
        .order_by(Job.created_at.desc(), Job.id.desc())
        .limit(RECENT_JOBS)
    )
    body = project.to_api()
    body["videos"] = [Video.to_api(cast(Video, row)) for row in videos]
    body["jobs"] = [j.to_view(project.uuid) for j in jobs]
    return body


def update_project(
    session: Session,
    uuid: str,
    *,
    name: str | None,
    settings: RenderOptions | None,
    settings_given: bool,
    callback_url: str | None = None,
    callback_given: bool = False,
) -> dict[str, Any]:
    project = find_project(session, uuid, lock=True)
    if callback_given:
        project.callback_url = callback_url
    if name is not None:
        project.name = name
    if settings_given:
        # PATCH replaces the settings object as a whole; null clears it.
        options = settings or RenderOptions()
        check_asset_refs(session, options)
        project.settings = json.dumps(options.stored())
    project.updated_at = utcnow()
    session.flush()
    return project.to_api()


@attrs.frozen
class Removal:
    """Files to remove once the rows are gone."""

    files: tuple[Path, ...]
    folders: tuple[Path, ...] = ()


def unshared_sources(
    session: Session, storage: Storage, videos: list[Video], *, leaving: set[int]
) -> list[Path]:
    """Source files of ``videos`` under ``uploads/`` that no remaining row uses.

    Registered camera files may be shared by several clips and projects; a
    purge removes a file only when nothing else (other clips, assets) points to it.
    """
    paths = {v.path for v in videos if v.path.startswith("uploads/")}
    if not paths:
        return []
    still_used = set(
        session.scalars(
            select(Video.path).where(Video.path.in_(paths), Video.id.not_in(leaving))
        )
    )
    still_used |= set(session.scalars(select(Asset.path).where(Asset.path.in_(paths))))
    found = (resolve_stored(storage, p) for p in sorted(paths - still_used))
    return [p for p in found if p is not None]


def delete_project(session: Session, storage: Storage, uuid: str, *, purge: bool) -> Removal:
    project = find_project(session, uuid, lock=True)
    active = session.scalars(
        select(Job.uuid).where(Job.project_id == project.id, Job.status.in_(ACTIVE_JOB_STATES))
    ).all()
    if active:
        raise ApiError.conflict(
            f"project {uuid} has a render job pending or running; cancel it first",
            jobs=list(active),
        )
    videos = list(session.scalars(select(Video).where(Video.project_id == project.id)))
    outputs = session.scalars(
        select(Job.output_path).where(Job.project_id == project.id, Job.output_path.is_not(None))
    )
    files = [thumbnail_path(storage, v.uuid) for v in videos]
    files += [p for p in (resolve_stored(storage, o) for o in outputs) if p is not None]
    editions = edition_paths(session, project_id=project.id)  # job_output rows (editions)
    files += [p for p in (resolve_stored(storage, o) for o in editions) if p is not None]
    folders: tuple[Path, ...] = ()
    if purge:
        files += unshared_sources(session, storage, videos, leaving={v.id for v in videos})
        folders = (storage.uploads / project.uuid,)
    # Children first: SQLite may run without ON DELETE CASCADE on seed-made tables.
    session.query(Video).filter(Video.project_id == project.id).delete()
    session.query(Job).filter(Job.project_id == project.id).delete()
    session.delete(project)
    return Removal(tuple(files), folders)
