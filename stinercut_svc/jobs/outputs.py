"""Recording a render's editions (``job_output`` rows) with its completion.

The main output stays in ``job.output_path`` (the frontend's column); every
further edition of the same run gets a ``job_output`` row, written in the same
transaction that marks the job completed, so a listing never shows a completed
job with half its editions, nor editions of a job that did not complete.

Recovery is the other writer: an instance that died after moving its files into
``output/`` (editions first, the main output last) but before the database took
the completion leaves finished files and a ``processing`` row. The next start
records the job completed from the main file and, with :func:`found_editions`,
the editions beside it, read from the files themselves (the plan that sized them
is gone with the process).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path

import attrs
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from ..models import Job, JobOutput, JobStatus, utcnow
from . import queue


@attrs.frozen
class EditionFile:
    """An edition moved to its final place (path relative to the storage root)."""

    name: str
    path: str
    width: int
    height: int
    codec: str
    size_bytes: int | None


def finish_with_editions(
    session: Session,
    *,
    job_id: int,
    owner: str,
    output_path: str,
    editions: tuple[EditionFile, ...],
) -> Job | None:
    """:func:`queue.finish` as completed, plus one row per edition (idempotent on retry)."""
    job = queue.finish(session, job_id=job_id, owner=owner, status=JobStatus.COMPLETED,
                       output_path=output_path)  # fmt: skip
    if job is None:
        return None
    replace_editions(session, job_id=job_id, editions=editions)
    return job


def replace_editions(session: Session, *, job_id: int, editions: Sequence[EditionFile]) -> None:
    """The job's ``job_output`` rows become ``editions``: a retry after a lost answer, a
    re-render of the same job or a recovery replaces them, never duplicates them."""
    session.execute(delete(JobOutput).where(JobOutput.job_id == job_id))
    now = utcnow()
    for edition in editions:
        session.add(JobOutput(job_id=job_id, name=edition.name, path=edition.path,
                              width=edition.width, height=edition.height, codec=edition.codec,
                              size_bytes=edition.size_bytes, created_at=now))  # fmt: skip


#: ffprobe's codec names → the options' codec values.
_CODECS = {"h264": "h264", "hevc": "h265", "vp9": "vp9", "av1": "av1"}


def found_editions(
    folder: Path, job_uuid: str, names: Sequence[str], *, relative: Callable[[Path], str],
    ffprobe: str = "ffprobe", timeout_s: float = 20.0,
) -> tuple[EditionFile, ...]:  # fmt: skip
    """Editions ``names`` of a job already in ``folder`` (``<job>-<name>.mp4``), in order.

    Blocking (ffprobe per file): called from a worker thread during recovery. A file
    ffprobe cannot read is skipped — only complete files are ever moved into
    ``output/``, so that means damage, and listing it would offer a broken download.
    """
    found: list[EditionFile] = []
    for name in names:
        path = folder / f"{job_uuid}-{name}.mp4"
        if not path.is_file():
            continue
        try:
            result = subprocess.run(
                [ffprobe, "-v", "error", "-select_streams", "v:0", "-show_entries",
                 "stream=width,height,codec_name", "-of", "json", str(path)],
                capture_output=True, timeout=timeout_s, check=True,
            )  # fmt: skip
            stream = json.loads(result.stdout)["streams"][0]
            width, height = int(stream["width"]), int(stream["height"])
        except (OSError, subprocess.SubprocessError, ValueError, KeyError, IndexError):
            continue
        codec = _CODECS.get(str(stream.get("codec_name")), str(stream.get("codec_name")))
        found.append(EditionFile(name, relative(path), width, height,
                                 codec, path.stat().st_size))  # fmt: skip
    return tuple(found)


def edition_names(options_json: str | None) -> list[str]:
    """The edition names a job asked for, from its stored options (empty if unreadable)."""
    try:
        options = json.loads(options_json or "{}")
        editions = options.get("editions") or []
        return [str(e["name"]) for e in editions if isinstance(e, dict) and "name" in e]
    except (ValueError, AttributeError, TypeError):
        return []


def edition_paths(session: Session, *, job_uuid: str | None = None,
                  project_id: int | None = None) -> list[str]:  # fmt: skip
    """Stored paths of the editions of one job, or of every job of a project (for deletion)."""
    query = select(JobOutput.path).join(Job, Job.id == JobOutput.job_id)
    if job_uuid is not None:
        query = query.where(Job.uuid == job_uuid)
    if project_id is not None:
        query = query.where(Job.project_id == project_id)
    return list(session.scalars(query))
