"""TTF/OTF/WOFF/WOFF2 → SVG path definitions for the frontend's name overlays.

:func:`convert_font` is a pure function (bytes in, :class:`FontConversion` out, no
I/O) so the router can run it in a worker thread and tests can call it directly.
The output keeps the format the frontend already stores: one
``<path id="_X" d="…" transform="…" />`` line per character, lines sorted, glyphs
scaled to a 60 px em with the y axis flipped and the baseline moved down by the
scaled ascender.

Every way a font can be unusable raises :class:`FontError` with a message naming
the problem; nothing else escapes for bad input (fontTools raises many exception
types on corrupt data, so the parsing step catches them all and re-labels them).

Budgets. A font is a program of sorts: composite glyphs reference other glyphs,
so 14 KB of nested composites can expand to gigabytes of path data or minutes of
work. Two budgets bound one conversion: the *output* budget is counted here while
the pens write (:class:`FontError` ``font_too_complex`` as soon as it is crossed,
before memory grows); the *time* budget is enforced by the caller, which runs the
conversion in a worker process it kills on the deadline (see ``routers/fonts.py``).
Composite cycles are found before drawing and named (``composite_cycle``).
"""

from __future__ import annotations

import io
import os
import struct
import zlib
from collections.abc import Mapping
from typing import Any

import attrs
import brotli
from fontTools.pens.svgPathPen import SVGPathPen
from fontTools.ttLib import TTFont, TTLibError
from fontTools.ttLib.woff2 import WOFF2DirectoryEntry, woff2DirectorySize

#: Target em size in px: every glyph is scaled by ``TARGET_PX / unitsPerEm``.
TARGET_PX = 60
#: Largest accepted upload (the router enforces it while reading the body).
MAX_FONT_BYTES = 10 * 1024 * 1024
#: Largest decompressed WOFF/WOFF2 payload: a 10 MB upload could otherwise inflate
#: to gigabytes (a compression bomb) before fontTools notices the sizes disagree.
MAX_SFNT_BYTES = 64 * 1024 * 1024
#: Conversions running at once, each in a worker *process*. fontTools is pure
#: Python: in a thread it holds the GIL and every socket operation of the trio
#: thread waits for it (bench/fonts.py measured GET / p99 at ~170 ms with a worker
#: thread). ``FONT_WORKERS=0`` (the default) means one per CPU, at most this many.
MAX_AUTO_WORKERS = 4
#: Default time budget of one conversion (``FONT_TIMEOUT_SECONDS``).
TIMEOUT_S = 10.0
#: Default output budget of one conversion, bytes of SVG path lines (``FONT_MAX_OUTPUT_BYTES``).
MAX_OUTPUT_BYTES = 5 * 1024 * 1024
#: Composite glyphs nested deeper than this are refused (real fonts use 1-3 levels).
MAX_COMPONENT_DEPTH = 16
#: The file name endings accepted (compared case-insensitively).
EXTENSIONS = (".ttf", ".otf", ".woff", ".woff2")

#: Characters converted, in the order ``missing`` and ``advances`` list them.
CHARACTERS = (
    "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    "abcdefghijklmnopqrstuvwxyz"
    "0123456789"
    "ÖÄÜöäüß"
)
#: Ids for characters that are not valid (or not readable) in an XML id as-is.
SPECIAL_IDS: Mapping[str, str] = {
    "Ö": "Ouml",
    "Ä": "Auml",
    "Ü": "Uuml",
    "ö": "ouml",
    "ä": "auml",
    "ü": "uuml",
    "ß": "szlig",
}

_SFNT_SIGNATURES = (b"\x00\x01\x00\x00", b"true", b"OTTO")
_WOFF_HEADER = struct.Struct(">4s4sIHHI")  # signature, flavor, length, numTables, reserved, totalSfntSize
_WOFF_ENTRY = struct.Struct(">4sIIII")  # tag, offset, compLength, origLength, origChecksum
_WOFF_HEADER_SIZE = 44
_WOFF2_HEADER = struct.Struct(">4s4sIHHII")  # … totalSfntSize, totalCompressedSize
_INFLATE_CHUNK = 1024 * 1024


class FontError(ValueError):
    """The bytes are not a usable font; ``code`` is the stable error word.

    ``status`` is the HTTP status the router answers with: 400 for a broken or
    unusable font, 422 for a well-formed font that exceeds a budget.
    """

    def __init__(
        self, message: str, *, code: str, status: int = 400, details: Any = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status
        self.details = details

    def __reduce__(self) -> Any:
        # Raised in a worker process: pickled back with its keyword arguments.
        return (_font_error, (self.message, self.code, self.status, self.details))


def _font_error(message: str, code: str, status: int, details: Any) -> FontError:
    return FontError(message, code=code, status=status, details=details)


def too_complex(limit: str, message: str, **details: Any) -> FontError:
    """422 ``font_too_complex``: a budget was exceeded; ``limit`` says which one."""
    return FontError(
        message, code="font_too_complex", status=422, details={"limit": limit, **details}
    )


def worker_count(configured: int) -> int:
    """Conversion workers: ``configured``, or with 0 one per CPU (at most :data:`MAX_AUTO_WORKERS`)."""
    if configured > 0:
        return configured
    return max(1, min(os.cpu_count() or 1, MAX_AUTO_WORKERS))


@attrs.frozen
class FontConversion:
    """The result of one conversion, in the frontend's wire format via :meth:`to_api`."""

    font_name: str
    #: ``<path …/>`` lines joined by newlines, sorted.
    svg_paths: str
    glyph_count: int
    #: Requested characters the font does not map, in :data:`CHARACTERS` order.
    missing: tuple[str, ...]
    #: Requested characters the font maps to a glyph without an outline.
    empty: tuple[str, ...]
    #: Advance width in px (same scale as the paths) of every converted character.
    advances: Mapping[str, float]

    def to_api(self) -> dict[str, object]:
        return {
            "success": True,
            "font_name": self.font_name,
            "svg_paths": self.svg_paths,
            "glyph_count": self.glyph_count,
            "missing": list(self.missing),
            "empty": list(self.empty),
            "advances": dict(self.advances),
        }


def font_name_from_filename(filename: str | None) -> str:
    """The display name (file name without folder and extension); checks the extension."""
    base = (filename or "").replace("\\", "/").rsplit("/", 1)[-1].strip()
    if not base:
        raise FontError("the uploaded file has no file name", code="invalid_filename")
    stem, dot, ext = base.rpartition(".")
    if not dot or f".{ext.lower()}" not in EXTENSIONS or not stem:
        raise FontError(
            f"{base!r} is not a font file name: expected one of {', '.join(EXTENSIONS)}",
            code="unsupported_extension",
        )
    return stem


def glyph_id(char: str) -> str:
    """The path id for ``char`` without the leading underscore (``A``, ``Ouml``, …)."""
    return SPECIAL_IDS.get(char, char)


def convert_font(
    data: bytes,
    font_name: str,
    *,
    max_sfnt_bytes: int = MAX_SFNT_BYTES,
    max_output_bytes: int = MAX_OUTPUT_BYTES,
) -> FontConversion:
    """Convert the font in ``data`` to SVG path definitions; raise :class:`FontError`.

    ``max_output_bytes`` bounds the path data written (the output budget); the
    time budget is the caller's (a worker process killed on its deadline).
    """
    if not data:
        raise FontError("the uploaded file is empty", code="empty_file")
    _check_container(data, max_sfnt_bytes)
    try:
        return _convert(data, font_name, _Budget(max_output_bytes))
    except FontError:
        raise
    except Exception as exc:  # fontTools signals corrupt data with many types
        raise FontError(
            f"the font is truncated or corrupt: {_describe(exc)}", code="corrupt_font"
        ) from exc


def _convert(data: bytes, font_name: str, budget: _Budget) -> FontConversion:
    font = TTFont(io.BytesIO(data))
    _check_table_bounds(font, len(data))
    if "cmap" not in font:
        raise FontError("the font has no character map (cmap table)", code="no_cmap")
    cmap = font.getBestCmap()
    if not cmap:
        raise FontError("the font's character map has no Unicode subtable", code="no_cmap")
    if "glyf" not in font and "CFF " not in font and "CFF2" not in font:
        raise FontError("the font has no outlines (no glyf, CFF or CFF2 table)", code="no_outlines")

    scale = TARGET_PX / font["head"].unitsPerEm
    transform = f"translate(0, {_ascender(font) * scale:.2f}) scale({scale:.4f}, -{scale:.4f})"
    glyph_set = font.getGlyphSet()
    if "glyf" in font:
        _check_composites(font, [name for name in map(cmap.get, map(ord, CHARACTERS)) if name])

    lines: list[str] = []
    missing: list[str] = []
    empty: list[str] = []
    advances: dict[str, float] = {}
    for char in CHARACTERS:
        name = cmap.get(ord(char))
        if name is None or name not in glyph_set:
            missing.append(char)
            continue
        glyph = glyph_set[name]
        pen = _BudgetPen(glyph_set, budget)
        glyph.draw(pen)
        commands = pen.getCommands()
        if not commands:
            empty.append(char)
            continue
        line = f'<path id="_{glyph_id(char)}" d="{commands}" transform="{transform}" />'
        budget.spend(len(line) - pen.counted + 1)  # the exact line, plus its newline
        lines.append(line)
        advances[char] = round(glyph.width * scale, 2)

    if not lines:
        what = "with an outline " if empty else ""
        raise FontError(
            f"the font has none of the characters {what}A-Z, a-z, 0-9, ÄÖÜäöüß",
            code="no_glyphs",
        )
    lines.sort()
    return FontConversion(
        font_name=font_name,
        svg_paths="\n".join(lines),
        glyph_count=len(lines),
        missing=tuple(missing),
        empty=tuple(empty),
        advances=advances,
    )


class _Budget:
    """The output budget of one conversion: bytes of path data still allowed."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.spent = 0

    def spend(self, size: int) -> None:
        self.spent += size
        if self.spent > self.limit:
            raise too_complex(
                "output",
                f"the font's outlines expand past the output budget of {self.limit} bytes "
                "of SVG path data (nested composite glyphs?)",
                max_bytes=self.limit,
            )


class _BudgetPen(SVGPathPen):  # type: ignore[misc]
    """An SVG path pen that charges every command it writes to the budget.

    Charging while drawing (not after the glyph) matters: one composite glyph of
    nested composites can expand to gigabytes before its ``draw`` returns.
    """

    def __init__(self, glyph_set: Any, budget: _Budget) -> None:
        super().__init__(glyph_set)
        self._budget = budget
        self._seen = 0
        #: Bytes charged so far for this glyph's commands.
        self.counted = 0

    def _charge(self) -> None:
        commands = self._commands
        size = sum(len(command) + 1 for command in commands[self._seen :])
        self._seen = len(commands)
        self.counted += size
        self._budget.spend(size)

    def _moveTo(self, pt: Any) -> None:  # noqa: N802 (fontTools' names)
        super()._moveTo(pt)
        self._charge()

    def _lineTo(self, pt: Any) -> None:  # noqa: N802
        super()._lineTo(pt)
        self._charge()

    def _curveToOne(self, pt1: Any, pt2: Any, pt3: Any) -> None:  # noqa: N802
        super()._curveToOne(pt1, pt2, pt3)
        self._charge()

    def _qCurveToOne(self, pt1: Any, pt2: Any) -> None:  # noqa: N802
        super()._qCurveToOne(pt1, pt2)
        self._charge()

    def _closePath(self) -> None:  # noqa: N802
        super()._closePath()
        self._charge()

    def _endPath(self) -> None:  # noqa: N802
        super()._endPath()
        self._charge()


def _check_composites(font: TTFont, names: list[str]) -> None:
    """Refuse composite glyphs that reference themselves, or nest absurdly deep.

    fontTools would recurse until Python's recursion limit (a cycle) or draw
    for minutes (deep nesting); both are named here instead, before drawing.
    Each glyph is visited once (memoised), so the check is linear in the font.
    """
    glyf = font["glyf"]
    heights: dict[str, int] = {}

    def height(name: str, path: list[str]) -> int:
        if name in heights:
            return heights[name]
        if name in path:
            cycle = [*path[path.index(name) :], name]
            shown = " -> ".join(repr(part[:64]) for part in cycle[:8])
            raise FontError(
                f"the font's composite glyphs form a cycle ({shown}); refusing it",
                code="composite_cycle",
                details={"glyphs": [part[:64] for part in cycle[:8]]},
            )
        if name not in glyf:
            raise FontError(
                f"the font is corrupt: a composite glyph uses glyph {name[:64]!r}, which it lacks",
                code="corrupt_font",
            )
        glyph = glyf[name]
        result = 0
        if glyph.isComposite():
            if len(path) >= MAX_COMPONENT_DEPTH:
                raise too_complex(
                    "component_depth",
                    f"the font's composite glyphs nest deeper than {MAX_COMPONENT_DEPTH} levels",
                    max_depth=MAX_COMPONENT_DEPTH,
                )
            path.append(name)
            for component in glyph.components:
                result = max(result, height(component.glyphName, path) + 1)
            path.pop()
        heights[name] = result
        return result

    for name in names:
        height(name, [])


def _ascender(font: TTFont) -> int:
    if "OS/2" in font:
        return int(font["OS/2"].sTypoAscender)
    if "hhea" in font:
        return int(font["hhea"].ascent)
    raise FontError("the font has neither an OS/2 nor an hhea table (no ascender)", code="corrupt_font")


def _check_container(data: bytes, max_sfnt_bytes: int) -> None:
    """Name the format problem early; bound what a WOFF/WOFF2 may inflate to."""
    signature = data[:4]
    if signature == b"ttcf":
        raise FontError("font collections (.ttc) are not supported", code="unsupported_font")
    if signature == b"wOFF":
        _check_woff(data, max_sfnt_bytes)
    elif signature == b"wOF2":
        _check_woff2(data, max_sfnt_bytes)
    elif signature not in _SFNT_SIGNATURES:
        raise FontError(
            "the file is not a TrueType, OpenType, WOFF or WOFF2 font "
            f"(it starts with {signature!r})",
            code="not_a_font",
        )


def _check_woff(data: bytes, limit: int) -> None:
    try:
        _sig, _flavor, _length, num_tables, _res, total = _WOFF_HEADER.unpack_from(data)
        entries = [
            _WOFF_ENTRY.unpack_from(data, _WOFF_HEADER_SIZE + i * _WOFF_ENTRY.size)
            for i in range(num_tables)
        ]
    except struct.error:
        raise FontError("the WOFF font is truncated (header)", code="corrupt_font") from None
    declared = max(total, sum(entry[3] for entry in entries))
    if declared > limit:
        raise _too_large(declared, limit)
    for tag, offset, comp_length, orig_length, _checksum in entries:
        if comp_length >= orig_length:
            continue  # stored uncompressed
        # Inflate at most one byte past the declared size: enough to detect a lie.
        inflater = zlib.decompressobj()
        try:
            produced = len(inflater.decompress(data[offset : offset + comp_length], orig_length + 1))
        except zlib.error as exc:
            raise FontError(
                f"the WOFF table {tag.decode('latin-1')!r} does not decompress: {exc}",
                code="corrupt_font",
            ) from None
        if produced > orig_length:
            raise _too_large(produced, orig_length)


def _check_woff2(data: bytes, limit: int) -> None:
    stream = io.BytesIO(data)
    try:
        header = _WOFF2_HEADER.unpack_from(data)
        _sig, flavor, _length, num_tables, _res, total, compressed_size = header
        stream.seek(woff2DirectorySize)
        for _ in range(num_tables):
            WOFF2DirectoryEntry().fromFile(stream)
    except Exception as exc:  # struct errors and fontTools' own on a bad directory
        raise FontError(f"the WOFF2 font is truncated or corrupt: {_describe(exc)}", code="corrupt_font") from None
    if flavor == b"ttcf":
        raise FontError("font collections (.ttc) are not supported", code="unsupported_font")
    if total > limit:
        raise _too_large(total, limit)
    start = stream.tell()
    compressed = data[start : start + compressed_size]
    # Stream through brotli in bounded pieces; only the running count is kept.
    decompressor = brotli.Decompressor()
    produced = 0
    try:
        chunk = decompressor.process(compressed, output_buffer_limit=_INFLATE_CHUNK)
        while True:
            produced += len(chunk)
            if produced > limit:
                raise _too_large(produced, limit)
            if decompressor.is_finished() or decompressor.can_accept_more_data():
                break
            chunk = decompressor.process(b"", output_buffer_limit=_INFLATE_CHUNK)
    except brotli.error as exc:
        raise FontError(f"the WOFF2 data does not decompress: {exc}", code="corrupt_font") from None
    if not decompressor.is_finished():
        raise FontError("the WOFF2 font is truncated (compressed data ends early)", code="corrupt_font")


def _check_table_bounds(font: TTFont, size: int) -> None:
    # fontTools reads tables lazily, so a cut-off file would only fail when (and
    # if) a late table is touched. Check every directory entry up front instead.
    if font.flavor == "woff2":
        return  # its tables live in the decompressed stream, checked on load
    for tag, entry in font.reader.tables.items():
        if entry.offset + entry.length > size:
            raise FontError(
                f"the font is truncated: table {str(tag)!r} ends at byte "
                f"{entry.offset + entry.length} but the file has {size}",
                code="corrupt_font",
            )


def _too_large(size: int, limit: int) -> FontError:
    return FontError(
        f"the font decompresses to more than {limit} bytes ({size}); refusing it",
        code="font_too_large",
    )


#: Exceptions whose text describes the font's data (not this code): shown to clients.
_DATA_ERRORS = (struct.error, TTLibError, EOFError, zlib.error, brotli.error, ValueError)


def _describe(exc: BaseException) -> str:
    """A short reason for a client; never a Python class name or an internal message."""
    if isinstance(exc, RecursionError):
        return "its structures nest too deeply"
    if isinstance(exc, KeyError):
        return f"it lacks an entry it refers to ({str(exc)[:80]})"
    text = str(exc).strip().splitlines() if isinstance(exc, _DATA_ERRORS) else []
    return (text[0] if text else "its tables are inconsistent")[:200]
