"""Serving stored files for download: byte ranges, validators and file names.

One function, :func:`serve_file`, answers every download of this service (the job
output, and shared outputs), so range and name handling is written once:

* ``Range`` (RFC 9110 §14): one range per request. ``bytes=0-99``, ``bytes=100-``
  and the suffix form ``bytes=-500`` (the *last* 500 bytes; players use it to
  read an MP4's trailing ``moov`` atom) answer ``206`` with ``Content-Range``. A
  range that starts past the end (or ``bytes=-0``, or any range of an empty file)
  is unsatisfiable: ``416`` with ``Content-Range: bytes */<size>`` in the one error
  format. A request for several ranges gets ``200`` with the whole file: RFC 9110
  lets a server ignore ``Range``, and one full answer is cheaper for everybody
  than a ``multipart/byteranges`` body no client of this service asks for. A
  header that does not parse, or another unit, is ignored the same way.
* ``If-Range`` with a validator that no longer matches (the file was rewritten)
  ignores the range, so a resumed download never splices two versions.
* ``ETag``/``Last-Modified`` with ``If-None-Match``/``If-Modified-Since`` → ``304``.
* ``Content-Disposition`` carries the name twice (RFC 6266): ``filename*`` in
  UTF-8 (RFC 8187/5987) with the real name, and a plain ``filename`` ASCII fallback
  for old clients.

The body is read in chunks through trio's thread-backed file, never on the trio
thread, and never whole into memory.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import AsyncIterator
from email.utils import formatdate, parsedate_to_datetime
from pathlib import Path
from typing import NamedTuple
from urllib.parse import quote

import trio
from quart import Request, Response

from .errors import ApiError

CHUNK_BYTES = 256 * 1024
#: Characters no file system or browser takes in a name (plus controls, below).
_UNSAFE_NAME = re.compile(r'[\\/:*?"<>|\x00-\x1f\x7f]+')
_RANGE_SPEC = re.compile(r"^\s*(\d*)\s*-\s*(\d*)\s*$")


class FileState(NamedTuple):
    size: int
    mtime: float
    etag: str


class ByteRange(NamedTuple):
    """``start`` .. ``end`` inclusive, as in ``Content-Range``."""

    start: int
    end: int


def _file_state(path: Path) -> FileState:
    st = path.stat()
    return FileState(st.st_size, st.st_mtime, f'"{st.st_size:x}-{st.st_mtime_ns:x}"')


async def serve_file(
    path: Path, request: Request, *, download_name: str | None, mimetype: str
) -> Response:
    """Answer ``request`` with the file at ``path`` (200, 206, 304 or 416).

    ``download_name`` set: ``Content-Disposition: attachment`` with that name.
    A missing file is a 404 ``file_missing`` (the caller checked the row; the
    file can still vanish in between).
    """
    try:
        state = await trio.to_thread.run_sync(_file_state, path)
    except FileNotFoundError:
        raise ApiError(404, "the file is no longer available", code="file_missing") from None
    headers = {
        "Accept-Ranges": "bytes",
        "ETag": state.etag,
        "Last-Modified": formatdate(state.mtime, usegmt=True),
    }
    if download_name is not None:
        headers["Content-Disposition"] = content_disposition(download_name)
    if _not_modified(request, state):
        return Response(b"", status=304, headers=headers)

    byte_range = None
    raw = request.headers.get("Range")
    if raw is not None and request.method in ("GET", "HEAD") and _if_range_holds(request, state):
        byte_range = parse_range(raw, state.size)
    if byte_range is None:
        start, end, status = 0, state.size - 1, 200
    else:
        start, end, status = byte_range.start, byte_range.end, 206
        headers["Content-Range"] = f"bytes {start}-{end}/{state.size}"
    length = max(0, end - start + 1)
    headers["Content-Length"] = str(length)
    response = Response(_read(path, start, length), status=status, headers=headers)
    response.mimetype = mimetype
    # Quart would otherwise drop the length we set for a streamed body.
    response.content_length = length
    return response


def parse_range(header: str, size: int) -> ByteRange | None:
    """The one range ``header`` asks for, ``None`` to serve the whole file.

    Raises the 416 :class:`ApiError` when the range cannot be satisfied.
    """
    unit, sep, specs = header.partition("=")
    if not sep or unit.strip().lower() != "bytes":
        return None  # another unit, or no unit: ignored (RFC 9110 §14.2)
    parts = specs.split(",")
    if len(parts) != 1:
        return None  # several ranges: the whole file, see the module docstring
    match = _RANGE_SPEC.match(parts[0])
    if match is None or not (match.group(1) or match.group(2)):
        return None
    first, last = match.group(1), match.group(2)
    if not first:  # suffix range: the last N bytes
        suffix = int(last)
        if suffix == 0 or size == 0:
            raise unsatisfiable(header, size)
        return ByteRange(max(0, size - suffix), size - 1)
    start = int(first)
    end = int(last) if last else size - 1
    if last and end < start:
        return None  # not a valid range-spec: ignored
    if start >= size:
        raise unsatisfiable(header, size)
    return ByteRange(start, min(end, size - 1))


def unsatisfiable(header: str, size: int) -> ApiError:
    return ApiError(
        416,
        f"the range {header.strip()[:80]!r} is outside the file ({size} bytes)",
        code="range_not_satisfiable",
        details={"size": size},
        headers={"Content-Range": f"bytes */{size}", "Accept-Ranges": "bytes"},
    )


def _if_range_holds(request: Request, state: FileState) -> bool:
    """``If-Range`` absent or still matching: the range may be served."""
    validator = request.headers.get("If-Range")
    if validator is None:
        return True
    validator = validator.strip()
    if validator.startswith('"'):
        return validator == state.etag  # strong comparison only (RFC 9110 §13.1.5)
    try:
        return int(parsedate_to_datetime(validator).timestamp()) == int(state.mtime)
    except (TypeError, ValueError):
        return False


def _not_modified(request: Request, state: FileState) -> bool:
    if request.method not in ("GET", "HEAD"):
        return False
    tags = request.headers.get("If-None-Match")
    if tags is not None:
        wanted = {tag.strip().removeprefix("W/") for tag in tags.split(",")}
        return "*" in wanted or state.etag in wanted
    since = request.headers.get("If-Modified-Since")
    if since is None:
        return False
    try:
        return int(state.mtime) <= parsedate_to_datetime(since).timestamp()
    except (TypeError, ValueError):
        return False


async def _read(path: Path, start: int, length: int) -> AsyncIterator[bytes]:
    if length <= 0:
        return
    async with await trio.open_file(path, "rb") as handle:
        await handle.seek(start)
        remaining = length
        while remaining > 0:
            chunk = await handle.read(min(CHUNK_BYTES, remaining))
            if not chunk:
                return  # truncated underneath us: the client sees a short body
            remaining -= len(chunk)
            yield chunk


# --- names --------------------------------------------------------------------------


def safe_file_name(name: str, *, fallback: str = "download") -> str:
    """``name`` without path separators, controls or characters file systems refuse;
    runs of spaces and dashes become one dash (the names the service always gave)."""
    cleaned = _UNSAFE_NAME.sub("-", unicodedata.normalize("NFC", name))
    cleaned = re.sub(r"[\s-]+", "-", cleaned).strip("-. ")
    return cleaned[:120] or fallback


def ascii_file_name(name: str, *, fallback: str = "download") -> str:
    """The ASCII fallback: accents dropped (``Müller`` → ``Muller``), the rest → ``-``."""
    stem, dot, ext = name.rpartition(".")
    if not dot:
        stem, ext = name, ""
    decomposed = unicodedata.normalize("NFKD", stem).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", decomposed).strip("-._") or fallback
    ext = re.sub(r"[^A-Za-z0-9]", "", ext)
    return f"{slug}.{ext}" if ext else slug


def content_disposition(name: str) -> str:
    """``attachment; filename="<ascii>"; filename*=UTF-8''<percent-encoded>`` (RFC 6266)."""
    fallback = ascii_file_name(name)
    if fallback == name:
        return f'attachment; filename="{fallback}"'
    encoded = quote(name, safe="!#$&+-.^_`|~")
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{encoded}"
