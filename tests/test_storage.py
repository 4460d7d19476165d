"""Storage paths: everything stays inside the root, whatever a client sends."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from stinercut_svc.storage import Storage, UnsafePathError


@pytest.fixture
def storage(tmp_path: Path) -> Storage:
    s = Storage(tmp_path / "root")
    s.ensure_layout()
    return s


def test_layout_has_the_four_folders(storage: Storage) -> None:
    names = sorted(p.name for p in storage.root.iterdir())
    assert names == ["input", "output", "temp", "thumbnails", "uploads"]


def test_relative_paths_resolve_inside(storage: Storage) -> None:
    path = storage.resolve("uploads/p1/clip.mp4")
    assert path == storage.root.resolve() / "uploads" / "p1" / "clip.mp4"
    assert storage.relative(path) == "uploads/p1/clip.mp4"


@pytest.mark.parametrize(
    "bad",
    ["", "/etc/passwd", "../secret", "uploads/../../x", "uploads/a\x00b", "uploads\\..\\x"],
)
def test_unsafe_paths_are_refused(storage: Storage, bad: str) -> None:
    with pytest.raises(UnsafePathError):
        storage.resolve(bad)


def test_symlink_leaving_the_root_is_refused(storage: Storage, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "f.mp4").write_bytes(b"x")
    os.symlink(outside, storage.uploads / "escape")
    with pytest.raises(UnsafePathError, match="leaves the storage root"):
        storage.resolve("uploads/escape/f.mp4")


def test_symlink_inside_the_root_is_fine(storage: Storage) -> None:
    (storage.uploads / "real").mkdir()
    os.symlink(storage.uploads / "real", storage.uploads / "alias")
    assert storage.resolve("uploads/alias/x.mp4") == storage.uploads.resolve() / "real" / "x.mp4"
