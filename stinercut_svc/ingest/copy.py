"""Which files on a card are new, and a copy that a pulled card cannot corrupt.

Identity. A file is the one already imported when its (relative name, size, mtime_ns)
match a known record. FAT stores local time with 2 s resolution, so the same card in
another reader or time zone may show other mtimes: when name and size match but the
mtime does not, a *quick hash* decides (BLAKE2b over the size, the first and the last
256 KiB: 512 KiB read whatever the file size, and it tells apart two recordings that a reset
camera gave the same name). Deciding for a card of 200 known files costs 200 ``stat``
results already in hand, no reads. Identity lives on the server (``imported_file``
rows), never on the card: the original renamed ``DCIM`` after copying, so a re-inserted
card was no longer recognised.

Copy. Each file is written to a hidden temporary name in its destination folder
(``.NAME.partial``), fsynced, renamed to its final name, and the folder fsynced: a
final name always holds a complete file, even after a power cut. The flush and rename
of one file run in a committer thread while the next file is written, so the disk's
flush latency overlaps the copy instead of adding to it per file. Data moves in the
kernel (``copy_file_range``, else ``sendfile``, else ``readinto`` one reused buffer)
in 16 MiB steps from a worker thread, so memory is constant and the event loop free.
Between steps the thread polls ``trio.from_thread.check_cancelled`` (the thread is
never abandoned: a cancelled copy stops within one step and cleans up before
:class:`trio.Cancelled` reaches the caller) and reports progress. A source that ends
early (a pulled card, a truncated file) or fails to read raises
:class:`CopyInterrupted`, naming the file and carrying what was completely copied;
temporary files are removed.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import hashlib
import os
from collections.abc import Awaitable, Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from functools import partial
from pathlib import Path, PurePosixPath

import attrs
import trio

from .card import CardFile

CHUNK = 16 << 20
HASH_SPAN = 256 << 10
FALLBACK_BUFFER = 4 << 20
PARTIAL_SUFFIX = ".partial"


class CopyInterrupted(RuntimeError):
    """The copy stopped before the end; ``copied`` holds every complete file."""

    def __init__(self, message: str, *, failed: str, copied: Sequence[CopiedFile]) -> None:
        super().__init__(message)
        self.failed = failed
        self.copied = tuple(copied)


@attrs.frozen
class KnownFile:
    """A file imported before: the record kept on the server."""

    relative: str
    size: int
    mtime_ns: int
    quick_hash: str | None = None


@attrs.frozen
class CopiedFile:
    """A file now complete under its final name in the destination."""

    relative: str
    size: int
    mtime_ns: int
    quick_hash: str
    destination: Path


@attrs.frozen
class CopyPlan:
    """What to copy, and what the card shares with earlier imports."""

    new: tuple[CardFile, ...]
    known: tuple[CardFile, ...]

    @property
    def new_bytes(self) -> int:
        return sum(f.size for f in self.new)


def quick_hash(path: Path, size: int | None = None) -> str:
    """BLAKE2b-128 of the size and the first and last 256 KiB (blocking)."""
    with path.open("rb") as src:
        return _quick_hash_fd(
            src.fileno(), os.fstat(src.fileno()).st_size if size is None else size
        )


def _quick_hash_fd(fd: int, size: int) -> str:
    digest = hashlib.blake2b(digest_size=16)
    digest.update(size.to_bytes(8, "little"))
    digest.update(os.pread(fd, HASH_SPAN, 0))
    if size > HASH_SPAN:
        digest.update(os.pread(fd, HASH_SPAN, max(HASH_SPAN, size - HASH_SPAN)))
    return digest.hexdigest()


def plan_copy(files: Iterable[CardFile], known: Iterable[KnownFile]) -> CopyPlan:
    """Split ``files`` into new and already imported (blocking only when hashing).

    (name, size, mtime) equal → known without reading. Name and size equal but
    another mtime → known when the quick hash matches one on record. Anything else
    is new, including a file whose name was seen with another size.
    """
    exact: set[tuple[str, int, int]] = set()
    by_name_size: dict[tuple[str, int], set[str]] = {}
    for k in known:
        exact.add((k.relative, k.size, k.mtime_ns))
        if k.quick_hash:
            by_name_size.setdefault((k.relative, k.size), set()).add(k.quick_hash)
    new: list[CardFile] = []
    old: list[CardFile] = []
    for f in files:
        if (f.relative, f.size, f.mtime_ns) in exact:
            old.append(f)
            continue
        hashes = by_name_size.get((f.relative, f.size))
        if hashes:
            try:
                if quick_hash(f.path, f.size) in hashes:
                    old.append(f)
                    continue
            except OSError:
                pass  # unreadable now: let the copy report it
        new.append(f)
    return CopyPlan(new=tuple(new), known=tuple(old))


def destination_for(root: Path, relative: str) -> Path:
    """``root/relative`` for a card-relative POSIX path that stays inside ``root``."""
    pure = PurePosixPath(relative)
    if not pure.parts or pure.is_absolute() or ".." in pure.parts or "\x00" in relative:
        raise ValueError(f"unsafe relative path {relative!r}")
    return root.joinpath(*pure.parts)


class _Mover:
    """Moves bytes between two descriptors with the fastest call the kernel allows."""

    MODES = ("copy_file_range", "sendfile", "readinto")

    def __init__(self, mode: str | None = None) -> None:
        if mode is None:
            mode = "copy_file_range" if hasattr(os, "copy_file_range") else "sendfile"
        if mode not in self.MODES:
            raise ValueError(f"unknown copy mode {mode!r}")
        self.mode = mode
        self._buffer: bytearray | None = None

    def move(self, src: int, dst: int, offset: int, count: int) -> int:
        while True:
            try:
                if self.mode == "copy_file_range":
                    return os.copy_file_range(src, dst, count, offset, offset)
                if self.mode == "sendfile":
                    os.lseek(dst, offset, os.SEEK_SET)
                    return os.sendfile(dst, src, offset, count)
                return self._read_write(src, dst, offset, count)
            except OSError as exc:
                if exc.errno in (errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
                    if self.mode == "copy_file_range":
                        self.mode = "sendfile"
                        continue
                    if self.mode == "sendfile":
                        self.mode = "readinto"
                        continue
                raise

    def _read_write(self, src: int, dst: int, offset: int, count: int) -> int:
        if self._buffer is None:
            self._buffer = bytearray(FALLBACK_BUFFER)
        view = memoryview(self._buffer)[: min(count, FALLBACK_BUFFER)]
        got = os.preadv(src, [view], offset)
        done = 0
        while done < got:
            done += os.pwrite(dst, view[done:got], offset + done)
        return got


def copy_one(
    source: CardFile,
    destination: Path,
    *,
    check_cancelled: Callable[[], None] = lambda: None,
    on_chunk: Callable[[int], None] = lambda moved: None,
    chunk: int = CHUNK,
    mode: str | None = None,
) -> CopiedFile:
    """Copy one file crash-safely (blocking): :func:`write_partial` + :func:`commit`."""
    partial_path = write_partial(
        source,
        destination,
        check_cancelled=check_cancelled,
        on_chunk=on_chunk,
        chunk=chunk,
        mode=mode,
    )
    return commit(source, partial_path, destination)


def partial_path_for(destination: Path) -> Path:
    """The hidden temporary name a file has in its folder until it is complete."""
    return destination.with_name(f".{destination.name}{PARTIAL_SUFFIX}")


def write_partial(
    source: CardFile,
    destination: Path,
    *,
    check_cancelled: Callable[[], None] = lambda: None,
    on_chunk: Callable[[int], None] = lambda moved: None,
    chunk: int = CHUNK,
    mode: str | None = None,
) -> Path:
    """Copy the bytes of ``source`` to the temporary name beside ``destination``.

    Blocking; run it in a worker thread. Raises :class:`OSError` on read/write
    failures, :class:`EOFError` when the source ends before its scanned size, and
    whatever ``check_cancelled`` raises (``trio.from_thread.check_cancelled``:
    :class:`trio.Cancelled` once the trio scope is cancelled), polled before every
    chunk. The temporary file is gone in every one of those cases.
    """
    destination.parent.mkdir(parents=True, exist_ok=True)
    partial_path = partial_path_for(destination)
    mover = _Mover(mode)
    src = os.open(source.path, os.O_RDONLY)
    try:
        dst = os.open(partial_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            _advise(src, 0, 0, "POSIX_FADV_SEQUENTIAL")
            _advise(src, 0, chunk, "POSIX_FADV_WILLNEED")
            offset = 0
            while offset < source.size:
                check_cancelled()
                # Ask for the next chunk now: the card reads it while this one is written.
                _advise(src, offset + chunk, chunk, "POSIX_FADV_WILLNEED")
                moved = mover.move(src, dst, offset, min(chunk, source.size - offset))
                if moved == 0:
                    raise EOFError(f"{source.relative} ended at {offset} of {source.size} bytes")
                _start_writeback(dst, offset, moved)
                offset += moved
                on_chunk(moved)
            if os.fstat(src).st_size != source.size:
                raise EOFError(f"{source.relative} changed size while being copied")
        finally:
            os.close(dst)
    except BaseException:
        partial_path.unlink(missing_ok=True)
        raise
    finally:
        os.close(src)
    return partial_path


def commit(source: CardFile, partial_path: Path, destination: Path) -> CopiedFile:
    """fsync the temporary file, keep the source's mtime, rename it, fsync the folder.

    Blocking. Only after this returns does ``destination`` exist, complete and
    durable. On failure the temporary file is removed and the error raised.
    """
    try:
        fd = os.open(partial_path, os.O_RDWR)
        try:
            os.fsync(fd)
            digest = _quick_hash_fd(fd, source.size)
        finally:
            os.close(fd)
        os.utime(partial_path, ns=(source.mtime_ns, source.mtime_ns))
        os.replace(partial_path, destination)
        _fsync_dir(destination.parent)
    except BaseException:
        partial_path.unlink(missing_ok=True)
        raise
    return CopiedFile(
        relative=source.relative,
        size=source.size,
        mtime_ns=source.mtime_ns,
        quick_hash=digest,
        destination=destination,
    )


def _advise(fd: int, offset: int, length: int, advice: str) -> None:
    """``posix_fadvise`` where the platform has it (a hint: failures are ignored)."""
    flag = getattr(os, advice, None)
    if flag is None or not hasattr(os, "posix_fadvise"):
        return
    try:
        os.posix_fadvise(fd, offset, length, flag)
    except OSError:
        pass


def _load_sync_file_range() -> Callable[[int, int, int], None]:
    """``sync_file_range(fd, off, n, SYNC_FILE_RANGE_WRITE)``, or a no-op where missing.

    Starting write-back of each chunk as soon as it is written lets the disk work
    while the next chunk is read, so the final ``fsync`` waits for the last chunk
    only instead of the whole file (Python's ``os`` has no binding for it).
    """
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        func = libc.sync_file_range
    except (OSError, AttributeError):
        return lambda fd, offset, count: None
    func.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    func.restype = ctypes.c_int

    def start_writeback(fd: int, offset: int, count: int) -> None:
        func(fd, offset, count, SYNC_FILE_RANGE_WRITE)  # advisory: errors ignored

    return start_writeback


SYNC_FILE_RANGE_WRITE = 2
_start_writeback = _load_sync_file_range()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


async def copy_files(
    files: Sequence[CardFile],
    destination_root: Path,
    *,
    on_progress: Callable[[int, int], Awaitable[None]] | None = None,
    on_file: Callable[[CopiedFile], Awaitable[None]] | None = None,
    chunk: int = CHUNK,
) -> list[CopiedFile]:
    """Copy ``files`` under ``destination_root`` keeping their relative paths.

    ``await on_progress(bytes_done, bytes_total)`` runs on the trio thread after each
    chunk (the copy thread waits for it: a slow consumer slows the copy, never piles up);
    ``on_file`` once a file is complete under its final name (record it, so a restart
    does not copy it again; it runs while the next file is being written). Cancelling
    the caller's scope stops the copy after the current chunk and removes its
    temporary file; a file already being committed is finished (whole, unreported). A read failure or a source that ends early raises
    :class:`CopyInterrupted` carrying the files that were completed.
    """
    total = sum(f.size for f in files)
    done_bytes = 0
    copied: list[CopiedFile] = []

    def report(moved: int) -> None:
        nonlocal done_bytes
        done_bytes += moved
        if on_progress is not None:
            trio.from_thread.run(on_progress, done_bytes, total)

    def interrupted(source: CardFile, exc: BaseException) -> CopyInterrupted:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        return CopyInterrupted(
            f"copy of {source.relative} failed after {len(copied)} complete files: {reason}",
            failed=source.relative,
            copied=copied,
        )

    # File N is fsynced and renamed by the committer thread while file N+1 is being
    # written: the disk flush of one file overlaps the copy of the next.
    committer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ingest-commit")
    pending: tuple[CardFile, Future[CopiedFile]] | None = None

    async def settle() -> None:
        """Wait for the file being committed; record it, or raise what went wrong."""
        nonlocal pending
        if pending is None:
            return
        source, future = pending
        pending = None
        with trio.CancelScope(shield=True):  # it is finishing anyway: do not lose it
            try:
                result = await trio.to_thread.run_sync(future.result)
            except (OSError, EOFError) as exc:
                raise interrupted(source, exc) from exc
        copied.append(result)
        if on_file is not None:
            await on_file(result)

    try:
        for source in files:
            target = destination_for(destination_root, source.relative)
            try:
                written = await trio.to_thread.run_sync(
                    partial(
                        write_partial,
                        source,
                        target,
                        check_cancelled=trio.from_thread.check_cancelled,
                        on_chunk=report,
                        chunk=chunk,
                    ),
                    abandon_on_cancel=False,
                )
            except (OSError, EOFError) as exc:
                await settle()
                raise interrupted(source, exc) from exc
            try:
                await settle()
            except BaseException:
                written.unlink(missing_ok=True)
                raise
            pending = (source, committer.submit(commit, source, written, target))
        await settle()
    finally:
        with trio.CancelScope(shield=True):
            await settle_quietly(pending)
            await trio.to_thread.run_sync(committer.shutdown)
    return copied


async def settle_quietly(pending: tuple[CardFile, Future[CopiedFile]] | None) -> None:
    """On the way out after an error: let a running commit finish, ignore its result.

    A file committed here is complete under its final name but not reported: a
    restart copies it again (``os.replace`` makes that harmless).
    """
    if pending is not None:
        await trio.to_thread.run_sync(lambda: pending[1].exception())
