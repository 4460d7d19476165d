"""Removing the files that belonged to deleted rows.

Rows go first (in their transaction); files are removed afterwards, on a
worker thread, so a failed transaction never leaves rows pointing at deleted
files. A file already gone is not an error; paths that do not resolve safely
inside the storage root are skipped, never followed.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

import trio

from ..storage import Storage, UnsafePathError

log = logging.getLogger(__name__)


def thumbnail_path(storage: Storage, video_uuid: str) -> Path:
    return storage.thumbnails / f"{video_uuid}.jpg"


def resolve_stored(storage: Storage, relative: str | None) -> Path | None:
    """A stored path as a file under the root, or None when it is unusable."""
    if not relative:
        return None
    try:
        return storage.resolve(relative)
    except UnsafePathError:
        log.warning("ignoring stored path outside the storage root: %r", relative)
        return None


async def remove_files(paths: Iterable[Path | None]) -> None:
    """Delete each path (files only); shielded so a cancelled request still cleans up."""
    targets = [p for p in paths if p is not None]
    if not targets:
        return
    with trio.CancelScope(shield=True):
        await trio.to_thread.run_sync(_remove_all, targets)


def _remove_all(paths: list[Path]) -> None:
    for path in paths:
        try:
            if path.is_file() or path.is_symlink():
                path.unlink()
        except FileNotFoundError:
            pass
        except OSError as exc:
            log.warning("could not remove %s: %s", path, exc)


def remove_empty_dir(path: Path) -> None:
    try:
        path.rmdir()
    except OSError:
        pass  # not empty, or already gone: both fine
