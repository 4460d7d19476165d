"""Request bodies with back-pressure, and multipart uploads streamed to disk.

Two problems with the stock Quart path for multi-gigabyte camera files:

* Quart's ASGI layer appends every body chunk the server hands over to the
  request's buffer without waiting, so a client sending faster than the handler
  consumes grows the process's memory without bound. :class:`StreamingBody`
  makes the receiving side wait (back-pressure down to the TCP window) while
  more than :data:`HIGH_WATER_BYTES` sit unread, unless the handler asked for the
  whole body at once (``await request.body``, as JSON parsing does), and it
  enforces the body size limit on the *total* received, not on what is buffered.
* ``request.files`` spools whole files before the handler sees them.
  :func:`receive_upload` parses the multipart body itself (werkzeug's sans-IO
  decoder) and writes the file part to a temporary name next to its final
  place, in batches, through trio's thread-backed file API.

:func:`receive_upload` is the one multipart reader of the service (clips,
assets, fonts). Its answers for bad bodies are the same on every route:

* not ``multipart/form-data`` → 415;
* no usable boundary, malformed or cut-off body, too many parts, over-long part
  headers or epilogue → 400 ``malformed_multipart``;
* no file part in the expected field (none at all, a file under another field
  name, the field sent as text) → 400 ``no_file``; a second file → 400
  ``too_many_files``; a file of zero bytes → 400 ``empty_file``;
* a text field the route does not take, sent twice, too long or not UTF-8 → 422
  naming the field (like unknown JSON fields);
* past a size limit → 413 (``MAX_UPLOAD_BYTES`` for the body, or the route's
  ``max_file_bytes``); nothing arriving for :data:`IDLE_TIMEOUT_S` → 408.

Cleanup contract of :func:`receive_upload`: the file it wrote survives only if
the block called :meth:`ReceivedUpload.keep` and then finished normally. When the
block raises, is cancelled, the client disconnects (Quart cancels the handler),
or the block simply does not keep the file, it is deleted, under a shielded
scope. So a failed upload leaves nothing behind, and a successful one leaves
exactly the kept file. In-progress files are named :data:`TEMP_PREFIX` ``…``;
registration by path refuses such names. A full disk while the file is written
→ 507 ``insufficient_storage``, and the partial file is removed like any other.

Crashes. A process that dies mid-upload (SIGKILL, OOM, power) runs no cleanup,
so its partial file would stay forever. Every live partial is recorded in the
app's :class:`PartialUploads` registry from before it is created until it is
gone or renamed; :func:`sweep_partials_forever` (start-up, then periodically)
removes ``.upload-*`` files that no live request of *this* process owns and
that have not been written for :data:`PARTIAL_MAX_AGE_S`. The age guard is what
keeps other instances' live uploads safe on shared storage: a receiving upload
writes at least every :data:`TOUCH_INTERVAL_S` (or is cut off with 408 after
:data:`IDLE_TIMEOUT_S`), so its mtime never grows that old.
"""

from __future__ import annotations

import errno
import logging
import os
import re
import secrets
import time
import unicodedata
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import attrs
import trio
from quart import Request, current_app
from quart_trio.asgi import TrioASGIHTTPConnection
from quart_trio.wrappers.request import TrioBody
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.sansio.multipart import (
    Data,
    Epilogue,
    Field,
    File,
    MultipartDecoder,
    NeedData,
    State,
)

from .errors import ApiError, is_disk_full
from .storage import NAME_MAX_BYTES

log = logging.getLogger(__name__)

_KIB = 1024
_MIB = 1024 * _KIB

#: Bodies that are not multipart uploads (JSON) are small; anything larger is refused.
JSON_BODY_LIMIT_BYTES = _MIB
#: The receiving side pauses while this much is buffered and unread by the handler.
HIGH_WATER_BYTES = _MIB
#: File data is collected to this size before one write call (one thread hop).
WRITE_BATCH_BYTES = _MIB
#: A client that sends nothing for this long gets 408 instead of holding a handler forever.
IDLE_TIMEOUT_S = 60.0
#: Preamble plus part headers may not grow past this before their end is seen.
MAX_HEADER_BYTES = 16 * _KIB
#: Text fields (asset ``name``, ``type``) are short.
MAX_FIELD_BYTES = 16 * _KIB
MAX_PARTS = 16
MAX_FILENAME_BYTES = 180
#: With ``max_file_bytes``, the body may exceed the file by this much (boundaries,
#: part headers, short text fields) before it is refused unread or cut off.
MULTIPART_SLACK_BYTES = 64 * _KIB
#: Name prefix of files still being received (hidden, never a sanitised name).
TEMP_PREFIX = ".upload-"
#: A receiving upload writes what it has at least this often, even below a full
#: batch, so its file's mtime shows it is alive (the sweep's age guard).
TOUCH_INTERVAL_S = 10.0
#: Partial files not written for this long belong to no live upload anywhere:
#: every live one writes at least every TOUCH_INTERVAL_S, or is cut off with 408
#: after IDLE_TIMEOUT_S; what follows the body (ffprobe, thumbnail, database)
#: has deadlines well inside this too.
PARTIAL_MAX_AGE_S = 10 * IDLE_TIMEOUT_S
#: How often the sweep runs after the one at start-up.
SWEEP_INTERVAL_S = 300.0
_BOUNDARY_RE = re.compile(r"^[0-9A-Za-z'()+_,\-./:=? ]{1,70}$")
_UNSAFE_CHARS_RE = re.compile(r"[^\w.\-]+")
_REPEATS_RE = re.compile(r"_{2,}")


def too_large(kind: str, limit: int) -> ApiError:
    return ApiError(
        413,
        f"{kind} is larger than the limit of {_human_size(limit)}",
        details={"limit": limit},
    )


def _human_size(limit: int) -> str:
    for unit, size in (("GiB", 1024 * _MIB), ("MiB", _MIB), ("KiB", _KIB)):
        if limit >= size and limit % size == 0:
            return f"{limit // size} {unit} ({limit} bytes)"
    return f"{limit} bytes"


def _malformed(message: str) -> ApiError:
    return ApiError(400, message, code="malformed_multipart")


class StreamingBody(TrioBody):
    """A request body that applies back-pressure and counts the total size.

    Consumed either by iteration (streaming: the producer waits while the buffer
    is above :data:`HIGH_WATER_BYTES`) or by ``await`` (whole body: no waiting,
    bounded by ``limit``).
    """

    def __init__(self, expected_length: int | None, limit: int, kind: str) -> None:
        super().__init__(None, None)
        self._limit = limit
        self._kind = kind
        self._received = 0
        self._want_all = False
        self._space = trio.Event()
        #: The client has sent its last byte (unlike ``_complete``, not set by a refusal).
        self.ended = False
        if expected_length is not None and expected_length > limit:
            self._must_raise = too_large(kind, limit)

    def append(self, data: bytes) -> None:
        if not data or self._must_raise is not None:
            return
        self._received += len(data)
        if self._received > self._limit:
            self._must_raise = too_large(self._kind, self._limit)
            self._data.clear()
            self.set_complete()
            return
        self._data.extend(data)
        self._has_data.set()

    async def put(self, data: bytes) -> None:
        """Append ``data``; wait while the handler has not caught up."""
        self.append(data)
        while (
            not self._want_all
            and self._must_raise is None
            and len(self._data) >= HIGH_WATER_BYTES
        ):
            self._space = trio.Event()
            await self._space.wait()

    async def __anext__(self) -> bytes:
        try:
            return await super().__anext__()
        except StopAsyncIteration:
            # Quart's Body does not look at the refusal again after waking up
            # for "complete", so an over-limit body would read as a short one.
            if self._must_raise is not None:
                raise self._must_raise from None
            raise
        finally:
            self._space.set()

    def __await__(self) -> Any:
        # The caller wants everything at once: waiting for it to drain would deadlock.
        self._want_all = True
        self._space.set()
        return super().__await__()


class StreamingHTTPConnection(TrioASGIHTTPConnection):
    """The app's ASGI HTTP handler, with :class:`StreamingBody` request bodies.

    Multipart bodies may be as large as ``MAX_UPLOAD_BYTES``; every other body
    is capped at :data:`JSON_BODY_LIMIT_BYTES`.
    """

    def _create_request_from_scope(self, send: Any) -> Request:
        request = super()._create_request_from_scope(send)
        if request.mimetype == "multipart/form-data":
            limit, kind = self.app.settings.max_upload_bytes, "upload"  # type: ignore[attr-defined]
        else:
            limit, kind = JSON_BODY_LIMIT_BYTES, "request body"
        request.body = StreamingBody(request.content_length, limit, kind)
        # HTTP/1.1: no Content-Length and no chunked encoding means no body at all.
        chunked = "chunked" in request.headers.get("Transfer-Encoding", "").lower()
        if request.content_length == 0 or (request.content_length is None and not chunked):
            request.body.ended = True
        self._body = request.body
        return request

    async def _send_response(self, send: Any, response: Any) -> None:
        # Answering before the client finished sending (413, a refused upload):
        # the rest of its body would be read as the next request, so close the
        # connection after this response instead of keeping it alive.
        if not self._body.ended:
            response.headers["Connection"] = "close"
        await super()._send_response(send, response)

    async def handle_messages(  # type: ignore[override]
        self, nursery: trio.Nursery, request: Request, receive: Any
    ) -> None:
        body = request.body
        assert isinstance(body, StreamingBody)
        while True:
            message = await receive()
            if message["type"] == "http.request":
                await body.put(message.get("body", b""))
                if not message.get("more_body", False):
                    body.ended = True
                    body.set_complete()
            elif message["type"] == "http.disconnect":
                break
        # As quart-trio does: a gone client cancels the handler (and its upload).
        nursery.cancel_scope.cancel()


class PartialUploads:
    """The partial files this process's live requests own (one per app).

    Touched on the trio thread only. The sweep takes a snapshot before it walks
    the folders in a worker thread; an upload that starts after the snapshot has
    a fresh mtime, so the age guard protects it.
    """

    def __init__(self) -> None:
        self._live: set[Path] = set()

    def add(self, path: Path) -> None:
        self._live.add(path)

    def discard(self, path: Path) -> None:
        self._live.discard(path)

    def snapshot(self) -> frozenset[Path]:
        return frozenset(self._live)

    def __contains__(self, path: object) -> bool:
        return path in self._live

    def __len__(self) -> int:
        return len(self._live)


def sweep_partials(
    folders: list[Path], live: frozenset[Path], max_age_s: float, now: float
) -> list[Path]:
    """Remove ``.upload-*`` files under ``folders`` that are not ``live`` and older
    than ``max_age_s`` (by mtime, against wall-clock ``now``); return them.

    Blocking (a directory walk): run it in a worker thread.
    """
    removed: list[Path] = []
    for folder in folders:
        for directory, _dirs, files in os.walk(folder):
            for name in files:
                if not name.startswith(TEMP_PREFIX):
                    continue
                path = Path(directory) / name
                if path in live:
                    continue
                try:
                    if now - path.lstat().st_mtime < max_age_s:
                        continue
                    path.unlink()
                except FileNotFoundError:
                    continue  # finished or removed meanwhile
                removed.append(path)
    return removed


async def sweep_partials_forever(
    folders: list[Path],
    registry: PartialUploads,
    *,
    interval_s: float = SWEEP_INTERVAL_S,
    max_age_s: float = PARTIAL_MAX_AGE_S,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Sweep at start-up, then every ``interval_s``; runs in the app nursery."""
    task_status.started()
    while True:
        try:
            removed = await trio.to_thread.run_sync(
                sweep_partials, folders, registry.snapshot(), max_age_s, time_now()
            )
        except OSError as exc:  # an unreadable folder must not end the sweeping
            log.warning("partial upload sweep failed: %s", exc.strerror or exc)
        else:
            if removed:
                log.info(
                    "removed %d partial upload(s) left by crashed requests: %s",
                    len(removed),
                    ", ".join(path.name for path in removed[:10]),
                )
        await trio.sleep(interval_s)


def time_now() -> float:
    """Wall-clock seconds, comparable with file mtimes."""
    return time.time()


def _registry() -> PartialUploads | None:
    registry = getattr(current_app, "partial_uploads", None)
    return registry if isinstance(registry, PartialUploads) else None


def sanitise_filename(raw: str, default: str = "upload") -> str:
    """A safe single path component from a client-supplied file name.

    Directory parts are dropped, anything but letters, digits, ``.``, ``-`` and
    ``_`` becomes ``_``, leading dots go (no hidden files, no ``..``), and the
    name is cut to :data:`MAX_FILENAME_BYTES` keeping its extension.
    """
    name = raw.replace("\\", "/").rsplit("/", 1)[-1]
    name = unicodedata.normalize("NFC", name)
    name = _UNSAFE_CHARS_RE.sub("_", name)
    name = _REPEATS_RE.sub("_", name).strip("._-")
    if not name:
        return default
    stem, dot, suffix = name.rpartition(".")
    if not dot or len(suffix) > 16:
        stem, suffix = name, ""
    suffix = f".{suffix}" if suffix else ""
    while len((stem + suffix).encode()) > MAX_FILENAME_BYTES:
        stem = stem[:-1]
    return (stem.rstrip("._-") or default) + suffix


def _candidates(filename: str) -> Any:
    stem, dot, suffix = filename.rpartition(".")
    if not dot:
        stem, suffix = filename, ""
    suffix = f".{suffix}" if suffix else ""
    yield filename
    for n in range(1, 10_000):
        yield f"{stem}-{n}{suffix}"
    raise ApiError.conflict(f"too many files named {filename!r} in this folder")


def place_without_clobbering(source: Path, directory: Path, filename: str) -> Path:
    """Move ``source`` to ``directory/filename``, adding ``-1``, ``-2``… on a clash.

    A hard link claims the name atomically (it fails if the name exists), so two
    uploads of the same name never overwrite each other; filesystems without
    hard links fall back to check-then-rename.
    """
    for name in _candidates(filename):
        target = directory / name
        try:
            os.link(source, target)
        except FileExistsError:
            continue
        except OSError as exc:
            if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV):
                raise
            if target.exists():
                continue
            os.rename(source, target)
            return target
        os.unlink(source)
        return target
    raise AssertionError("unreachable")


async def remove_file(path: Path | None) -> None:
    """Delete ``path`` if it exists; safe to call while being cancelled."""
    if path is None:
        return
    with trio.CancelScope(shield=True):
        await trio.to_thread.run_sync(_unlink_quietly, path)


def _unlink_quietly(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass


@attrs.define
class ReceivedUpload:
    """A completely received file part plus the form's text fields.

    ``filename`` is sanitised (safe as a path component); ``client_filename`` is
    the name exactly as the client sent it, for display only (never a path).
    """

    path: Path
    filename: str
    client_filename: str
    size: int
    fields: dict[str, str]
    kept: bool = False

    async def keep(self) -> Path:
        """Give the file its final (sanitised, clash-free) name in the same folder."""
        final = await trio.to_thread.run_sync(
            place_without_clobbering, self.path, self.path.parent, self.filename
        )
        self.path = final
        self.kept = True
        return final


@attrs.define
class _Part:
    name: str
    text: bytearray | None = None
    file: Any = None
    batch: bytearray = attrs.Factory(bytearray)
    #: trio.current_time() of the last write (see TOUCH_INTERVAL_S).
    written_at: float = 0.0


@asynccontextmanager
async def receive_upload(
    request: Request,
    directory: Path,
    *,
    file_field: str = "file",
    fields: frozenset[str] = frozenset(),
    max_file_bytes: int | None = None,
    check_filename: Callable[[str], object] | None = None,
) -> AsyncIterator[ReceivedUpload]:
    """Stream a ``multipart/form-data`` body's one file part into ``directory``.

    Yields once the whole body has arrived. The block decides whether to keep
    the file (:meth:`ReceivedUpload.keep`); otherwise, or if the block raises,
    is cancelled or the receiving fails, the file is removed. Text fields must
    be named in ``fields``; anything else is refused with 422 naming the field.

    ``max_file_bytes`` caps the file part: 413 as soon as it grows past the cap,
    and 413 before reading anything when the declared ``Content-Length`` (or,
    for chunked bodies, the bytes counted so far) exceeds it by more than
    :data:`MULTIPART_SLACK_BYTES`. ``check_filename`` is called with the
    client's raw file name as soon as the file part's headers arrive; it raises
    :class:`ApiError` to refuse the upload before its data is read (its return
    value is ignored).
    """
    boundary = _boundary(request, file_field)
    body_limit = None if max_file_bytes is None else max_file_bytes + MULTIPART_SLACK_BYTES
    if body_limit is not None and (request.content_length or 0) > body_limit:
        raise too_large("the file", max_file_bytes)  # type: ignore[arg-type]
    try:
        await trio.to_thread.run_sync(lambda: directory.mkdir(parents=True, exist_ok=True))
    except OSError as exc:
        if is_disk_full(exc):
            raise ApiError.disk_full("the upload") from None
        raise
    registry = _registry()
    if registry is None:  # not under a StinercutApp (an empty registry is falsy: no `or`)
        registry = PartialUploads()
    receiver = _Receiver(
        directory,
        file_field,
        fields,
        max_file_bytes=max_file_bytes,
        body_limit=body_limit,
        check_filename=check_filename,
        registry=registry,
    )
    upload: ReceivedUpload | None = None
    try:
        try:
            await receiver.run(request, boundary)
            upload = receiver.result()
            yield upload
        except BaseException:
            await remove_file(upload.path if upload is not None else receiver.temp)
            raise
        if not upload.kept:
            # A file the block did not keep (a font read into memory) is not left behind.
            await remove_file(upload.path)
    finally:
        # Gone or renamed by now: no longer a live partial of this process.
        if receiver.temp is not None:
            registry.discard(receiver.temp)


def _boundary(request: Request, file_field: str) -> bytes:
    if request.mimetype != "multipart/form-data":
        raise ApiError(
            415,
            f"send the file as multipart/form-data (field {file_field!r})",
            details={"content_type": request.mimetype or None},
        )
    boundary = request.mimetype_params.get("boundary", "")
    if not _BOUNDARY_RE.match(boundary):
        raise _malformed("multipart/form-data needs a valid boundary parameter")
    return boundary.encode("ascii")


class _Receiver:
    """Feeds body chunks through the multipart decoder into files and fields."""

    def __init__(
        self,
        directory: Path,
        file_field: str,
        fields: frozenset[str],
        *,
        max_file_bytes: int | None,
        body_limit: int | None,
        check_filename: Callable[[str], object] | None,
        registry: PartialUploads,
    ) -> None:
        self.registry = registry
        self.directory = directory
        self.file_field = file_field
        self.allowed = fields
        self.max_file_bytes = max_file_bytes
        self.body_limit = body_limit
        self.check_filename = check_filename
        self.temp: Path | None = None
        self.filename: str | None = None
        self.client_filename = ""
        self.size = 0
        self.received = 0
        self.values: dict[str, str] = {}
        self.part: _Part | None = None
        self.finished = False

    async def run(self, request: Request, boundary: bytes) -> None:
        decoder = MultipartDecoder(boundary, max_parts=MAX_PARTS)
        try:
            await self._receive(request, decoder)
        except OSError as exc:
            if is_disk_full(exc):
                log.error("storage full while receiving an upload into %s", self.directory.name)
                raise ApiError.disk_full("the upload") from None
            raise
        finally:
            if self.part is not None and self.part.file is not None:
                with trio.CancelScope(shield=True):
                    try:
                        await self.part.file.aclose()
                    except OSError:
                        pass  # ENOSPC again on the final flush; the file is removed anyway

    async def _receive(self, request: Request, decoder: MultipartDecoder) -> None:
        chunks = request.body.__aiter__()
        try:
            while True:
                try:
                    with trio.fail_after(IDLE_TIMEOUT_S):
                        chunk = await chunks.__anext__()
                except StopAsyncIteration:
                    break
                except trio.TooSlowError:
                    raise ApiError(
                        408, f"no upload data received for {IDLE_TIMEOUT_S:g} s"
                    ) from None
                self.received += len(chunk)
                if self.body_limit is not None and self.received > self.body_limit:
                    # Chunked bodies (no Content-Length) and junk around the file part.
                    raise too_large("the file", self.max_file_bytes)  # type: ignore[arg-type]
                decoder.receive_data(chunk)
                await self._drain(decoder)
            decoder.receive_data(None)
            try:
                await self._drain(decoder)
            except ValueError:
                pass  # "cannot parse beyond …": reported below in plainer words
            if not self.finished:
                raise _malformed("the upload ended before the multipart body was complete")
        except (ValueError, RequestEntityTooLarge) as exc:
            # werkzeug's decoder says ValueError for malformed bodies and
            # RequestEntityTooLarge for too many parts.
            detail = "too many parts" if isinstance(exc, RequestEntityTooLarge) else str(exc)
            raise _malformed(f"malformed multipart body: {detail}") from None

    async def _drain(self, decoder: MultipartDecoder) -> None:
        while True:
            event = decoder.next_event()
            if isinstance(event, NeedData):
                # The decoder buffers preamble, part headers and epilogue whole
                # until it sees their end: bound them, or junk would pile up in memory.
                if decoder.state in (State.PREAMBLE, State.PART, State.EPILOGUE) and len(
                    decoder.buffer
                ) > MAX_HEADER_BYTES:
                    where = "epilogue" if decoder.state is State.EPILOGUE else "part headers"
                    raise _malformed(f"malformed multipart body: {where} too long")
                return
            if isinstance(event, Epilogue):
                self.finished = True
                return
            if isinstance(event, File):
                await self._start_file(event)
            elif isinstance(event, Field):
                self._start_field(event)
            elif isinstance(event, Data):
                await self._data(event)

    async def _start_file(self, event: File) -> None:
        if event.name != self.file_field:
            raise _no_file(
                f"unexpected file field {event.name!r} (the file goes in {self.file_field!r})",
                field=event.name,
            )
        if self.temp is not None:
            raise ApiError(
                400,
                f"only one file may be sent in {self.file_field!r}",
                code="too_many_files",
                details={"field": event.name},
            )
        raw = event.filename or ""
        base = raw.replace("\\", "/").rsplit("/", 1)[-1]
        if len(base.encode("utf-8", "surrogatepass")) > NAME_MAX_BYTES:
            # No filesystem here stores such a name; shortening it silently would
            # store the clip under a name the client never chose.
            raise ApiError(
                400,
                f"the file name is longer than {NAME_MAX_BYTES} bytes",
                code="filename_too_long",
                details={"field": event.name},
            )
        if self.check_filename is not None:
            self.check_filename(raw)
        self.client_filename = raw
        self.filename = sanitise_filename(raw)
        suffix = Path(self.filename).suffix
        self.temp = self.directory / f"{TEMP_PREFIX}{secrets.token_hex(8)}{suffix}"
        # Registered before it exists: the sweep never sees it unowned.
        self.registry.add(self.temp)
        handle = await trio.open_file(self.temp, "xb")
        self.part = _Part(name=event.name, file=handle, written_at=trio.current_time())

    def _start_field(self, event: Field) -> None:
        if event.name == self.file_field:
            raise _no_file(
                f"field {event.name!r} must be a file part (with a filename), not text",
                field=event.name,
            )
        if event.name not in self.allowed:
            raise ApiError.unprocessable(f"unknown form field {event.name!r}", field=event.name)
        if event.name in self.values:
            raise ApiError.unprocessable(f"form field {event.name!r} sent twice", field=event.name)
        self.part = _Part(name=event.name, text=bytearray())

    async def _data(self, event: Data) -> None:
        part = self.part
        assert part is not None
        if part.file is not None:
            part.batch += event.data
            self.size += len(event.data)
            if self.max_file_bytes is not None and self.size > self.max_file_bytes:
                raise too_large("the file", self.max_file_bytes)
            if (
                len(part.batch) >= WRITE_BATCH_BYTES
                or not event.more_data
                or trio.current_time() - part.written_at >= TOUCH_INTERVAL_S
            ):
                full = len(part.batch) >= WRITE_BATCH_BYTES
                await part.file.write(part.batch)
                if not full:
                    # Past Python's buffer: a slow trickle still moves the mtime
                    # (the sweep's age guard), and a full disk shows up now.
                    await part.file.flush()
                part.batch = bytearray()
                part.written_at = trio.current_time()
            if not event.more_data:
                await part.file.aclose()
                part.file = None
                self.part = None
            return
        assert part.text is not None
        part.text += event.data
        if len(part.text) > MAX_FIELD_BYTES:
            raise ApiError.unprocessable(f"form field {part.name!r} is too long", field=part.name)
        if not event.more_data:
            try:
                self.values[part.name] = part.text.decode("utf-8")
            except UnicodeDecodeError:
                raise ApiError.unprocessable(
                    f"form field {part.name!r} is not UTF-8 text", field=part.name
                ) from None
            self.part = None

    def result(self) -> ReceivedUpload:
        if self.temp is None or self.filename is None:
            raise _no_file(
                f"no file uploaded: multipart field {self.file_field!r} is missing",
                field=self.file_field,
            )
        if self.size == 0:
            raise ApiError(
                400, "the uploaded file is empty", code="empty_file", details={"field": self.file_field}
            )
        return ReceivedUpload(
            self.temp, self.filename, self.client_filename, self.size, self.values
        )


def _no_file(message: str, *, field: str) -> ApiError:
    return ApiError(400, message, code="no_file", details={"field": field})
