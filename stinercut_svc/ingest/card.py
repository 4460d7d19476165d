"""What is on a camera card: video files, their proxies, and recordings in camera order.

A GoPro card keeps its media in ``DCIM/NNNGOPRO/`` (``100GOPRO``, ``101GOPRO``; the
match is case-insensitive because FAT mounts differ). A card reader or network share
may instead hold a plain folder of clips. Both are scanned the same way: when the root
has a ``DCIM`` folder, only that folder is read and paths are relative to it (the
layout the detector daemon produces, ``input/<uuid>/100GOPRO/GX010001.MP4``); otherwise
the root itself.

Why recordings, not files: a GoPro splits one recording into ~4 GB chapters (FAT32),
and a plain name sort interleaves recordings (``GH010527, GH010528, GH020527``).
The names carry the truth:

* HERO6 and newer: ``G[HX]CCNNNN`` — ``H`` AVC, ``X`` HEVC, ``CC`` chapter 01..99,
  ``NNNN`` the recording number; the proxy is ``GLCCNNNN.LRV``.
* HERO5 and older: ``GOPRNNNN`` is the first chapter, ``GP01NNNN``, ``GP02NNNN`` the
  following ones; the proxy has the video's name with ``.LRV``.

Recording numbers survive a battery pull; the camera clock does not. So GoPro
recordings are ordered by number first and ``creation_time`` second. Files of other
cameras (phones) are one-file recordings, ordered by ``creation_time`` then name, and
merged into the GoPro sequence by time.

The scan only reads (``os.scandir``/``stat``); nothing is ever written to the card.
Symlinks are not followed out of the root (a share must not smuggle in
``/etc/passwd``), directory symlinks are not followed at all (loops), and hidden files
(macOS ``._GX010001.MP4`` resource forks) are ignored. Grouping is pure: the caller
passes each file's ``creation_time`` (from ffprobe) in.
"""

from __future__ import annotations

import enum
import json
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath

import attrs

from ..media.runner import PROTOCOL_WHITELIST, ToolError, ToolMissingError, run_capture

VIDEO_SUFFIXES = frozenset({".mp4", ".mov"})
PROXY_SUFFIX = ".lrv"
THUMBNAIL_SUFFIX = ".thm"
MAX_DEPTH = 8

_GOPRO_DIR = re.compile(r"^\d{3}GOPRO$", re.IGNORECASE)
_HERO6 = re.compile(r"^G([HX])(\d{2})(\d{4})$", re.IGNORECASE)
_HERO6_PROXY = re.compile(r"^GL(\d{2})(\d{4})$", re.IGNORECASE)
_HERO5_FIRST = re.compile(r"^GOPR(\d{4})$", re.IGNORECASE)
_HERO5_NEXT = re.compile(r"^GP(\d{2})(\d{4})$", re.IGNORECASE)


class CardError(ValueError):
    """The path cannot be imported (missing, not a directory); the message says why."""


class SkipReason(enum.StrEnum):
    """Why a file on the card is not part of the import (reported, never silent)."""

    THUMBNAIL = "thumbnail"
    NOT_VIDEO = "not_video"
    SYMLINK_OUTSIDE_ROOT = "symlink_outside_root"
    SYMLINK_DIRECTORY = "symlink_directory"
    ORPHAN_PROXY = "orphan_proxy"
    UNREADABLE = "unreadable"
    TOO_DEEP = "too_deep"


class NameStyle(enum.StrEnum):
    HERO6 = "hero6"
    HERO5 = "hero5"
    OTHER = "other"


@attrs.frozen
class CardFile:
    """One file on the card: where it is and what identifies it.

    ``relative`` is POSIX and relative to the scanned media root (``DCIM`` when
    present); it is also the file's path inside the batch folder after copying.
    """

    relative: str
    path: Path
    size: int
    mtime_ns: int

    @property
    def name(self) -> str:
        return PurePosixPath(self.relative).name

    @property
    def folder(self) -> str:
        return PurePosixPath(self.relative).parent.as_posix()


@attrs.frozen
class Skipped:
    relative: str
    reason: SkipReason


@attrs.frozen
class CardScan:
    """Everything the scan found: videos, proxies, and what it left out and why."""

    root: Path
    media_root: Path
    videos: tuple[CardFile, ...]
    proxies: tuple[CardFile, ...]
    skipped: tuple[Skipped, ...]


@attrs.frozen
class GoProName:
    """A parsed GoPro file name. ``family`` separates cameras/codecs sharing numbers."""

    style: NameStyle
    family: str
    chapter: int
    number: int


def parse_gopro_name(filename: str) -> GoProName | None:
    """Parse a GoPro video name (any case, any video suffix); ``None`` if it is not one.

    HERO5's first chapter ``GOPRNNNN`` is chapter 0 so that it sorts before
    ``GP01NNNN``; HERO6+ chapters start at 1.
    """
    stem = PurePosixPath(filename).stem
    if m := _HERO6.match(stem):
        return GoProName(NameStyle.HERO6, "G" + m[1].upper(), int(m[2]), int(m[3]))
    if m := _HERO5_FIRST.match(stem):
        return GoProName(NameStyle.HERO5, "GP", 0, int(m[1]))
    if m := _HERO5_NEXT.match(stem):
        return GoProName(NameStyle.HERO5, "GP", int(m[1]), int(m[2]))
    return None


def proxy_key(filename: str) -> tuple[str, int, int] | None:
    """``(family, chapter, number)`` an ``.LRV`` belongs to, ``family`` ``"GL"`` for HERO6+.

    HERO6+ proxies (``GLCCNNNN``) do not say whether the video is ``GH`` or ``GX``;
    :func:`group_recordings` matches them on chapter and number in the same folder.
    """
    stem = PurePosixPath(filename).stem
    if m := _HERO6_PROXY.match(stem):
        return ("GL", int(m[1]), int(m[2]))
    parsed = parse_gopro_name(filename)
    if parsed is not None and parsed.style is NameStyle.HERO5:
        return (parsed.family, parsed.chapter, parsed.number)
    return None


def scan_card(root: Path) -> CardScan:
    """List the videos and proxies under ``root``; raise :class:`CardError` if unusable.

    Blocking (directory walk and ``stat``): call it from a worker thread.
    """
    try:
        real_root = root.resolve(strict=True)
    except (OSError, RuntimeError) as exc:
        raise CardError(f"{root} does not exist or is not reachable ({exc})") from None
    if not real_root.is_dir():
        raise CardError(f"{root} is not a directory")
    media_root = _media_root(real_root)
    videos: list[CardFile] = []
    proxies: list[CardFile] = []
    skipped: list[Skipped] = []
    _walk(media_root, media_root, real_root, 0, videos, proxies, skipped)
    videos.sort(key=lambda f: f.relative)
    proxies.sort(key=lambda f: f.relative)
    return CardScan(
        root=real_root,
        media_root=media_root,
        videos=tuple(videos),
        proxies=tuple(proxies),
        skipped=tuple(sorted(skipped, key=lambda s: s.relative)),
    )


def _media_root(root: Path) -> Path:
    try:
        entries = list(os.scandir(root))
    except OSError as exc:
        raise CardError(f"{root} cannot be listed ({exc.strerror})") from None
    for entry in entries:
        if entry.name.lower() == "dcim" and entry.is_dir(follow_symlinks=False):
            return Path(entry.path)
    return root


def _walk(
    directory: Path,
    media_root: Path,
    real_root: Path,
    depth: int,
    videos: list[CardFile],
    proxies: list[CardFile],
    skipped: list[Skipped],
) -> None:
    try:
        entries = sorted(os.scandir(directory), key=lambda e: e.name)
    except OSError:
        skipped.append(Skipped(_rel(directory, media_root), SkipReason.UNREADABLE))
        return
    for entry in entries:
        if entry.name.startswith("."):
            continue
        path = Path(entry.path)
        relative = _rel(path, media_root)
        try:
            if entry.is_symlink():
                if entry.is_dir(follow_symlinks=True):
                    skipped.append(Skipped(relative, SkipReason.SYMLINK_DIRECTORY))
                    continue
                target = path.resolve(strict=True)
                if real_root not in target.parents:
                    skipped.append(Skipped(relative, SkipReason.SYMLINK_OUTSIDE_ROOT))
                    continue
            if entry.is_dir(follow_symlinks=False):
                if depth + 1 > MAX_DEPTH:
                    skipped.append(Skipped(relative, SkipReason.TOO_DEEP))
                else:
                    _walk(path, media_root, real_root, depth + 1, videos, proxies, skipped)
                continue
            suffix = path.suffix.lower()
            if suffix == THUMBNAIL_SUFFIX:
                skipped.append(Skipped(relative, SkipReason.THUMBNAIL))
                continue
            if suffix not in VIDEO_SUFFIXES and suffix != PROXY_SUFFIX:
                skipped.append(Skipped(relative, SkipReason.NOT_VIDEO))
                continue
            st = entry.stat(follow_symlinks=True)
        except OSError:
            skipped.append(Skipped(relative, SkipReason.UNREADABLE))
            continue
        found = CardFile(relative=relative, path=path, size=st.st_size, mtime_ns=st.st_mtime_ns)
        (proxies if suffix == PROXY_SUFFIX else videos).append(found)


def _rel(path: Path, media_root: Path) -> str:
    return path.relative_to(media_root).as_posix()


def is_gopro_folder(name: str) -> bool:
    return bool(_GOPRO_DIR.match(name))


@attrs.frozen
class Chapter:
    """One file of a recording, with its proxy when the card had one."""

    file: CardFile
    index: int
    proxy: CardFile | None = None


@attrs.frozen
class Recording:
    """One press of the record button: chapters in order, one continuous timeline.

    ``key`` is stable for a card (``100GOPRO/GH:0527`` or the file's relative path)
    so results can be matched to recordings across re-runs.
    """

    key: str
    style: NameStyle
    number: int | None
    chapters: tuple[Chapter, ...]
    creation_time: datetime | None

    @property
    def files(self) -> tuple[CardFile, ...]:
        """Every file to copy: chapters, then proxies."""
        return tuple(c.file for c in self.chapters) + tuple(
            c.proxy for c in self.chapters if c.proxy is not None
        )

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files)


@attrs.frozen
class Grouping:
    recordings: tuple[Recording, ...]
    orphan_proxies: tuple[CardFile, ...]


def group_recordings(
    videos: Iterable[CardFile],
    proxies: Iterable[CardFile] = (),
    creation_times: Mapping[str, datetime | None] | None = None,
) -> Grouping:
    """Group files into recordings and put them in camera order (pure).

    ``creation_times`` maps a video's ``relative`` path to its ``creation_time``
    (missing = unknown). A recording's time is its first chapter's.

    Ordering: GoPro recordings by (number, time, folder); other files by (time,
    name), unknown times last; the two sequences are merged by time, keeping the
    GoPro order intact (a phone clip goes before the first GoPro recording that
    started after it).
    """
    times = creation_times or {}
    gopro: dict[tuple[str, str, int], list[tuple[int, CardFile]]] = {}
    others: list[CardFile] = []
    for video in videos:
        parsed = parse_gopro_name(video.name)
        if parsed is None:
            others.append(video)
        else:
            gopro.setdefault((video.folder, parsed.family, parsed.number), []).append(
                (parsed.chapter, video)
            )
    proxy_index: dict[tuple[str, str, int, int], CardFile] = {}
    for proxy in proxies:
        key = proxy_key(proxy.name)
        if key is not None:
            proxy_index[(proxy.folder, *key)] = proxy
    used: set[str] = set()

    def proxy_for(folder: str, family: str, chapter: int, number: int) -> CardFile | None:
        fam = "GL" if family in ("GH", "GX") else family
        found = proxy_index.get((folder, fam, chapter, number))
        if found is not None:
            used.add(found.relative)
        return found

    gopro_recs: list[Recording] = []
    for (folder, family, number), members in gopro.items():
        members.sort(key=lambda m: m[0])
        chapters = tuple(
            Chapter(file=f, index=i, proxy=proxy_for(folder, family, ch, number))
            for i, (ch, f) in enumerate(members)
        )
        first = chapters[0].file
        style = NameStyle.HERO5 if family == "GP" else NameStyle.HERO6
        gopro_recs.append(
            Recording(
                key=f"{folder}/{family}:{number:04d}"
                if folder != "."
                else f"{family}:{number:04d}",
                style=style,
                number=number,
                chapters=chapters,
                creation_time=times.get(first.relative),
            )
        )
    other_recs = [
        Recording(
            key=f.relative,
            style=NameStyle.OTHER,
            number=None,
            chapters=(Chapter(file=f, index=0),),
            creation_time=times.get(f.relative),
        )
        for f in others
    ]
    gopro_recs.sort(key=lambda r: (r.number, _time_key(r.creation_time), r.key))
    other_recs.sort(key=lambda r: (_time_key(r.creation_time), r.chapters[0].file.name, r.key))
    orphans = tuple(p for p in proxies if p.relative not in used)
    return Grouping(
        recordings=tuple(_merge_by_time(gopro_recs, other_recs)), orphan_proxies=orphans
    )


def naive_utc(value: datetime) -> datetime:
    """Aware times become naive UTC, so tagged and untagged times compare."""
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value


def _time_key(value: datetime | None) -> tuple[int, datetime]:
    return (1, datetime.max) if value is None else (0, naive_utc(value))


def _merge_by_time(gopro: Sequence[Recording], others: Sequence[Recording]) -> list[Recording]:
    """Insert time-ordered one-file recordings into the GoPro order by time.

    A GoPro recording without a time never blocks: the other clip waits for the next
    GoPro recording with a time later than its own.
    """
    merged: list[Recording] = []
    pending = list(others)
    for rec in gopro:
        while (
            pending
            and pending[0].creation_time is not None
            and rec.creation_time is not None
            and naive_utc(pending[0].creation_time) < naive_utc(rec.creation_time)
        ):
            merged.append(pending.pop(0))
        merged.append(rec)
    merged.extend(pending)
    return merged


def parse_creation_time(text: str | None) -> datetime | None:
    """An MP4 ``creation_time`` tag (``2026-12-01T10:00:00.000000Z``) as naive UTC.

    Cameras without a clock write ``1970-01-01`` or ``1904-01-01`` (the MP4 epoch):
    those mean "unknown", not "oldest".
    """
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    value = naive_utc(value)
    return None if value.year < 1980 else value


async def read_creation_time(path: Path, *, ffprobe: str = "ffprobe") -> datetime | None:
    """The file's ``creation_time`` (container tag, else first stream's), or ``None``.

    A file ffprobe cannot read has no time; a missing ffprobe is the service's
    fault and propagates as :class:`ToolMissingError`.
    """
    argv = [
        ffprobe,
        "-v",
        "error",
        "-print_format",
        "json",
        "-show_entries",
        "format_tags=creation_time:stream_tags=creation_time",
        # Local files only, like every other probe of user media (see media/runner.py).
        "-protocol_whitelist",
        PROTOCOL_WHITELIST,
        "--",
        str(path),
    ]
    try:
        done = await run_capture(argv, timeout=30.0)
    except ToolMissingError:
        raise
    except ToolError:
        return None
    if done.returncode != 0:
        return None
    try:
        data = json.loads(done.stdout)
    except ValueError:
        return None
    candidates = [(data.get("format") or {}).get("tags") or {}]
    candidates += [s.get("tags") or {} for s in data.get("streams") or []]
    for tags in candidates:
        found = parse_creation_time(tags.get("creation_time"))
        if found is not None:
            return found
    return None
