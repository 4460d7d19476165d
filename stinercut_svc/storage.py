"""The shared storage root, and the only way code turns stored paths into files.

Every path kept in the database is relative to the root (the frontend, the
detector and this service may see the same files under different host paths).
Paths that come from clients are untrusted: :meth:`Storage.resolve` refuses
anything that would land outside the root, including through symlinks.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path, PurePosixPath

import attrs

SUBFOLDERS = ("uploads", "temp", "output", "thumbnails", "input")
#: Longest file or folder name (bytes) on Linux filesystems (ext4, xfs, tmpfs: NAME_MAX).
NAME_MAX_BYTES = 255
#: Longest relative path accepted (PATH_MAX is 4096 including the root's own length).
PATH_MAX_BYTES = 3072


class UnsafePathError(ValueError):
    """A client-supplied path that does not stay inside the storage root."""


@attrs.frozen
class Storage:
    root: Path

    @property
    def uploads(self) -> Path:
        return self.root / "uploads"

    @property
    def temp(self) -> Path:
        return self.root / "temp"

    @property
    def output(self) -> Path:
        return self.root / "output"

    @property
    def thumbnails(self) -> Path:
        return self.root / "thumbnails"

    @property
    def input(self) -> Path:
        """Imported camera files, one folder per import batch (``input/<batch uuid>/``),
        the layout the detector's copies use too."""
        return self.root / "input"

    def ensure_layout(self) -> None:
        for name in SUBFOLDERS:
            (self.root / name).mkdir(parents=True, exist_ok=True)

    def resolve(self, relative: str) -> Path:
        """Turn a stored or client-supplied relative path into an absolute one.

        Raises :class:`UnsafePathError` for empty, absolute, NUL-containing or
        ``..`` paths, and for paths whose real location (symlinks followed) is
        outside the root. The file need not exist.
        """
        if not relative or "\x00" in relative:
            raise UnsafePathError("path is empty or contains a NUL byte")
        if "\\" in relative:
            raise UnsafePathError("path must use forward slashes")
        pure = PurePosixPath(relative)
        if pure.is_absolute():
            raise UnsafePathError("path must be relative to the storage root")
        if any(part == ".." for part in pure.parts):
            raise UnsafePathError("path must not contain '..'")
        # The kernel refuses longer names with ENAMETOOLONG wherever they are used
        # (stat, open): refuse them here, as the client's mistake they are.
        if any(len(part.encode("utf-8", "surrogatepass")) > NAME_MAX_BYTES for part in pure.parts):
            raise UnsafePathError(f"a path component is longer than {NAME_MAX_BYTES} bytes")
        if len(relative.encode("utf-8", "surrogatepass")) > PATH_MAX_BYTES:
            raise UnsafePathError(f"path is longer than {PATH_MAX_BYTES} bytes")
        candidate = self.root.joinpath(*pure.parts)
        real_root = self.root.resolve()
        real = candidate.resolve()
        if real != real_root and real_root not in real.parents:
            raise UnsafePathError("path leaves the storage root")
        return real

    def relative(self, path: Path) -> str:
        """The stored (POSIX, root-relative) form of a path under the root."""
        return path.resolve().relative_to(self.root.resolve()).as_posix()

    def free_bytes(self) -> int:
        return shutil.disk_usage(self.root).free

    def is_writable(self) -> bool:
        return self.root.is_dir() and os.access(self.root, os.W_OK | os.X_OK)
