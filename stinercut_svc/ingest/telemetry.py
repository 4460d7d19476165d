"""GoPro telemetry (GPMF) → altitude track → freefall, the second freefall signal.

Why: sound finds freefall by its wind roar, but a camera in a case or with its sound
muted hears none, and wind on the ground roars too. A GoPro (HERO5+) writes a
telemetry track beside the video: GPS at ~18 Hz with altitude (``GPS5`` on HERO5–10,
``GPS9`` on HERO11+). Freefall is the one phase of a jump where altitude falls at
25–60 m/s (the plane climbs, a canopy sinks at ~5 m/s), so the altitude loss rate is
a reliable freefall signal wherever the GPS has a fix.

Reading without decoding, and why not ffmpeg: the track's samples are found with a
small ISO-BMFF reader. Top-level boxes are skipped by their sizes (a few seeks,
whatever the file's size), ``moov`` is read whole (kilobytes to a few MB), the
``gpmd`` track's sample table (``stts``/``stsz``/``stsc``/``stco``/``co64``, ``mdhd``
time scale) gives each payload's offset, size and time, and only those payloads are
read (a few KB per second of video). No process is started, no video or audio byte
is touched, a 4 GB chapter costs milliseconds and memory is bounded by the moov and
the GPS samples. ``ffmpeg -map 0:d -c copy -f data`` would demux the whole file and
drop the per-payload times. Edit lists are ignored (GoPro writes none on this track).

GPMF (GoPro's published format): KLV items — 4-byte FourCC, 1-byte type, 1-byte
structure size, 2-byte big-endian repeat, payload padded to 4 bytes; type 0 nests.
``DEVC`` > ``STRM`` > {``STNM``, ``SCAL``, ``GPSF``, ``GPSU``, ``GPSP``, ``GPS5`` |
``GPS9`` …}. ``SCAL`` divides each element (one value for all, or one per element).
``GPS5`` rows are (lat, lon, alt, speed2d, speed3d) with the payload's fix (``GPSF``:
0 none, 2 2D, 3 3D) and DOP×100 (``GPSP``); ``GPS9`` rows are (lat, lon, alt,
speed2d, speed3d, days, secs, DOP, fix) with fix and DOP per row. Rows without a
2D/3D fix are dropped. Every read is bounds-checked: a truncated or garbled track
raises :class:`TelemetryError`; it never loops or reads past its box.

Times: a payload's start and duration come from the sample table; its GPS rows are
spread evenly inside it. Chapters are one timeline, each offset by the previous
chapters' durations (``mvhd``), as the audio is.

Detection (pure, :func:`detect_from_altitude`): vertical speed is the slope of a
centred linear regression of altitude over ``slope_s`` (1 s); freefall is where the
descent is ≥ ``min_descent`` (25 m/s) for ≥ ``min_freefall_s`` (10 s). Each edge is
the *onset* of the change: a line fitted to the early part of the descent-rate ramp
(10–45 % of the way from the level before it to the level after), extended back to
the level before it (the plane's vertical speed at the exit, the freefall's at
deployment). A body leaves the plane at the plane's vertical speed and accelerates
at ~g, so that line meets the plane's speed at the exit; a canopy starts braking at
deployment. (An instant step of speed, which no body makes, comes out ~0.4 s early:
the 1 s regression spreads it.) Confidence = GPS quality (3D fix, DOP) ×
plausibility (peak descent speed, length). Takeoff and landing for the phases:
the ends of still stretches (|vertical speed| ≤ 1 m/s for 10 s) near the lowest
altitude before and after the freefall; a recording whose samples before the exit
all lie far above the ground after it started in the plane.
"""

from __future__ import annotations

import enum
import math
import struct
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

import attrs
import numpy as np
import trio
from numpy.typing import NDArray

from .freefall import Freefall, FreefallSource

FloatArray = NDArray[np.float64]

GPMD = b"gpmd"
#: A moov larger than this is not a camera file's: refuse rather than read it.
MAX_MOOV_BYTES = 64 << 20
#: A telemetry payload is a few KB per second of video; more is garbage.
MAX_PAYLOAD_BYTES = 4 << 20
MAX_TOP_LEVEL_BOXES = 100_000
MAX_NESTING = 8


class TelemetryError(RuntimeError):
    """A telemetry track exists but cannot be read; the message says why."""


class GpsFix(enum.IntEnum):
    NONE = 0
    FIX_2D = 2
    FIX_3D = 3


@attrs.frozen
class TelemetryConfig:
    """Tunables of the altitude detector (tandem: ~50 m/s with drogue, canopy ~5 m/s)."""

    slope_s: float = 1.0
    min_descent: float = 25.0
    min_freefall_s: float = 10.0
    max_gap_s: float = 2.0
    #: How far the exit/deployment ramp is looked for around the threshold crossing.
    ramp_reach_s: float = 15.0
    #: Fraction of the ramp where its tangent is taken (a quarter: still near the onset).
    tangent_at: float = 0.25
    #: The part of the ramp (fractions of the way) that the tangent line is fitted to.
    ramp_band: tuple[float, float] = (0.1, 0.45)
    good_dop: float = 5.0
    max_dop: float = 20.0
    expected_speed: tuple[float, float] = (30.0, 90.0)
    expected_s: tuple[float, float] = (15.0, 120.0)
    #: Telemetry edges win over the sound's when the telemetry freefall is this sure.
    good_confidence: float = 0.6
    #: Share of a stretch that good-fix samples must cover for telemetry to rule on it.
    min_coverage: float = 0.8
    ground_slope_s: float = 3.0
    ground_speed: float = 1.0
    ground_run_s: float = 10.0
    ground_margin_m: float = 30.0
    #: A recording whose samples before the exit all lie this far above everything
    #: after the freefall started in the plane (flight from its first second).
    airborne_m: float = 300.0


@attrs.frozen(eq=False)
class AltitudeTrack:
    """Fixed GPS samples on the recording's timeline (seconds from its start)."""

    times: FloatArray
    altitudes: FloatArray
    dop: FloatArray
    fix: NDArray[np.int64]
    duration: float
    streams: tuple[str, ...]

    @property
    def size(self) -> int:
        return int(self.times.size)


@attrs.frozen
class TelemetryAnalysis:
    """What the altitude says: freefalls, where it can be trusted, takeoff and landing."""

    freefalls: tuple[Freefall, ...]
    #: Stretches covered by good-fix samples (3D fix, DOP ≤ ``max_dop``), gaps ≤ ``max_gap_s``.
    covered: tuple[tuple[float, float], ...]
    #: Per freefall: end of the ground before it (takeoff; 0 when the recording starts
    #: in the plane) and start of the ground after it (landing; ``inf`` when the
    #: recording ends under canopy), None where the altitude does not show them.
    takeoffs: tuple[float | None, ...]
    landings: tuple[float | None, ...]
    good_confidence: float
    min_coverage: float

    def covers(self, start: float, end: float) -> bool:
        """Whether good-fix samples cover ``[start, end]`` well enough to rule on it."""
        if end <= start:
            return False
        inside = sum(max(0.0, min(b, end) - max(a, start)) for a, b in self.covered)
        return inside / (end - start) >= self.min_coverage


# --- ISO-BMFF: find the gpmd track and its samples -----------------------------------


def _unpack(fmt: str, data: bytes, offset: int, end: int, what: str) -> tuple[int, ...]:
    if offset < 0 or offset + struct.calcsize(fmt) > end:
        raise TelemetryError(f"{what}: truncated")
    return struct.unpack_from(fmt, data, offset)


def _boxes(data: bytes, start: int, end: int) -> Iterator[tuple[bytes, int, int]]:
    """``(type, payload start, payload end)`` of the boxes in ``data[start:end]``."""
    pos = start
    while pos + 8 <= end:
        size, kind = struct.unpack_from(">I4s", data, pos)
        header = 8
        if size == 1:
            (size,) = _unpack(">Q", data, pos + 8, end, "box size")
            header = 16
        elif size == 0:
            size = end - pos
        if size < header or pos + size > end:
            raise TelemetryError(f"box {kind!r} overruns its parent")
        yield kind, pos + header, pos + size
        pos += size


def _child(data: bytes, start: int, end: int, kind: bytes) -> tuple[int, int] | None:
    for k, a, b in _boxes(data, start, end):
        if k == kind:
            return a, b
    return None


def _path(data: bytes, start: int, end: int, *kinds: bytes) -> tuple[int, int] | None:
    span: tuple[int, int] | None = (start, end)
    for kind in kinds:
        if span is None:
            return None
        span = _child(data, span[0], span[1], kind)
    return span


def _read_moov(f: BinaryIO, file_size: int) -> bytes | None:
    """The moov payload, or None when the file has no readable top-level moov."""
    pos = 0
    for _ in range(MAX_TOP_LEVEL_BOXES):
        if pos + 8 > file_size:
            return None
        f.seek(pos)
        head = f.read(16)
        if len(head) < 8:
            return None
        size, kind = struct.unpack_from(">I4s", head, 0)
        header = 8
        if size == 1:
            if len(head) < 16:
                return None
            (size,) = struct.unpack_from(">Q", head, 8)
            header = 16
        elif size == 0:
            size = file_size - pos
        if size < header or pos + size > file_size:
            if kind == b"moov":
                raise TelemetryError("moov is truncated")
            return None  # not ISO-BMFF, or cut after its last whole box
        if kind == b"moov":
            if size > MAX_MOOV_BYTES:
                raise TelemetryError(f"moov of {size} bytes is too large")
            f.seek(pos + header)
            body = f.read(size - header)
            if len(body) != size - header:
                raise TelemetryError("moov is truncated")
            return body
        pos += size
    return None


@attrs.frozen(eq=False)
class SampleTable:
    """The gpmd track of one file: each payload's offset, size, start and duration (s)."""

    offsets: NDArray[np.int64]
    sizes: NDArray[np.int64]
    starts: FloatArray
    durations: FloatArray
    movie_duration: float


def _timescale_duration(data: bytes, start: int, end: int, what: str) -> tuple[int, int]:
    (version,) = _unpack(">B", data, start, end, what)
    if version == 1:
        timescale, duration = _unpack(">IQ", data, start + 20, end, what)
    else:
        timescale, duration = _unpack(">II", data, start + 12, end, what)
    return timescale, duration


def _gpmd_table(data: bytes, movie_duration: float) -> SampleTable | None:
    for kind, a, b in _boxes(data, 0, len(data)):
        if kind != b"trak":
            continue
        stbl = _path(data, a, b, b"mdia", b"minf", b"stbl")
        stsd = None if stbl is None else _child(data, stbl[0], stbl[1], b"stsd")
        if stbl is None or stsd is None:
            continue
        (count,) = _unpack(">I", data, stsd[0] + 4, stsd[1], "stsd")
        if count < 1:
            continue
        (_, fmt) = _unpack(">I4s", data, stsd[0] + 8, stsd[1], "stsd entry")
        if fmt != GPMD:
            continue
        mdhd = _path(data, a, b, b"mdia", b"mdhd")
        if mdhd is None:
            raise TelemetryError("gpmd track without mdhd")
        timescale, _ = _timescale_duration(data, mdhd[0], mdhd[1], "mdhd")
        if timescale <= 0:
            raise TelemetryError("gpmd track with time scale 0")
        return _sample_table(data, stbl, timescale, movie_duration)
    return None


def _table(data: bytes, span: tuple[int, int] | None, name: str, fmt: str) -> list[tuple[int, ...]]:
    if span is None:
        raise TelemetryError(f"gpmd track without {name}")
    (count,) = _unpack(">I", data, span[0] + 4, span[1], name)
    width = struct.calcsize(fmt)
    if span[0] + 8 + count * width > span[1]:
        raise TelemetryError(f"{name}: {count} entries do not fit its box")
    return list(struct.iter_unpack(fmt, data[span[0] + 8 : span[0] + 8 + count * width]))


def _sample_table(
    data: bytes, stbl: tuple[int, int], timescale: int, movie_duration: float
) -> SampleTable:
    def box(kind: bytes) -> tuple[int, int] | None:
        return _child(data, stbl[0], stbl[1], kind)

    stsz = box(b"stsz")
    if stsz is None:
        raise TelemetryError("gpmd track without stsz")
    fixed, count = _unpack(">II", data, stsz[0] + 4, stsz[1], "stsz")
    if fixed:
        sizes = np.full(count, fixed, dtype=np.int64)
    else:
        if stsz[0] + 12 + 4 * count > stsz[1]:
            raise TelemetryError(f"stsz: {count} sizes do not fit its box")
        sizes = np.frombuffer(data, ">u4", count, stsz[0] + 12).astype(np.int64)
    stts = _table(data, box(b"stts"), "stts", ">II")
    counts = np.array([c for c, _ in stts], dtype=np.int64)
    deltas = np.array([d for _, d in stts], dtype=np.int64)
    if int(counts.sum()) < count:
        raise TelemetryError("stts covers fewer samples than stsz")
    per_sample = np.repeat(deltas, counts)[:count].astype(np.float64) / timescale
    starts = np.concatenate(([0.0], np.cumsum(per_sample)[:-1])) if count else per_sample
    co64 = box(b"co64")
    chunk_offsets = [
        o
        for (o,) in (
            _table(data, co64, "co64", ">Q") if co64 else _table(data, box(b"stco"), "stco", ">I")
        )
    ]
    stsc = _table(data, box(b"stsc"), "stsc", ">III")
    offsets = np.zeros(count, dtype=np.int64)
    sample = 0
    for i, (first, per_chunk, _) in enumerate(stsc):
        last = stsc[i + 1][0] if i + 1 < len(stsc) else len(chunk_offsets) + 1
        if first < 1 or last < first or last > len(chunk_offsets) + 1:
            raise TelemetryError("stsc names chunks that stco does not have")
        for chunk in range(first, last):
            at = chunk_offsets[chunk - 1]
            for _ in range(per_chunk):
                if sample >= count:
                    break
                offsets[sample] = at
                at += int(sizes[sample])
                sample += 1
    if sample < count:
        raise TelemetryError("stsc/stco place fewer samples than stsz has")
    return SampleTable(offsets, sizes, starts, per_sample, movie_duration)


def read_sample_table(f: BinaryIO, file_size: int) -> SampleTable | None:
    """The gpmd track's sample table, None when the file has no such track."""
    moov = _read_moov(f, file_size)
    if moov is None:
        return None
    mvhd = _child(moov, 0, len(moov), b"mvhd")
    if mvhd is None:
        raise TelemetryError("moov without mvhd")
    timescale, duration = _timescale_duration(moov, mvhd[0], mvhd[1], "mvhd")
    movie_duration = duration / timescale if timescale else 0.0
    return _gpmd_table(moov, movie_duration)


def read_payloads(path: Path) -> tuple[SampleTable, list[bytes]] | None:
    """The gpmd payloads of one file with their table; None without a gpmd track."""
    with path.open("rb") as f:
        f.seek(0, 2)
        file_size = f.tell()
        table = read_sample_table(f, file_size)
        if table is None:
            return None
        payloads: list[bytes] = []
        for offset, size in zip(table.offsets.tolist(), table.sizes.tolist(), strict=True):
            if size > MAX_PAYLOAD_BYTES or offset + size > file_size:
                raise TelemetryError(f"gpmd sample at {offset} ({size} bytes) is past the file")
            f.seek(offset)
            payloads.append(f.read(size))
    return table, payloads


# --- GPMF KLV ----------------------------------------------------------------------

_SCALARS: dict[str, str] = {
    "b": ">i1", "B": ">u1", "c": "S1", "s": ">i2", "S": ">u2", "l": ">i4", "L": ">u4",
    "j": ">i8", "J": ">u8", "f": ">f4", "d": ">f8", "q": ">i4", "Q": ">i8", "F": "S4",
}  # fmt: skip
_FIXED_POINT = {"q": 65536.0, "Q": 4294967296.0}


@attrs.frozen
class Klv:
    key: bytes
    type: int
    struct_size: int
    repeat: int
    start: int
    end: int


def iter_klv(data: bytes, start: int = 0, end: int | None = None) -> Iterator[Klv]:
    """The KLV items in ``data[start:end]``; :class:`TelemetryError` on garbage."""
    end = len(data) if end is None else end
    pos = start
    while pos + 8 <= end:
        key = data[pos : pos + 4]
        if key == b"\0\0\0\0":
            return  # padding at the end of a payload
        if not all(32 <= c <= 126 for c in key):
            raise TelemetryError(f"GPMF: {key!r} is not a FourCC (garbage payload)")
        kind, size, repeat = struct.unpack_from(">BBH", data, pos + 4)
        length = size * repeat
        if pos + 8 + length > end:
            raise TelemetryError(f"GPMF: {key.decode()} overruns its payload")
        yield Klv(key, kind, size, repeat, pos + 8, pos + 8 + length)
        pos += 8 + ((length + 3) & ~3)
    if pos < end and any(data[pos:end]):
        raise TelemetryError("GPMF: payload ends inside an item header")


def _values(data: bytes, item: Klv, types: str | None = None) -> FloatArray:
    """An item's values as floats, shape (repeat, elements)."""
    code = chr(item.type)
    if code == "?":
        if not types:
            raise TelemetryError(f"GPMF: {item.key.decode()} is complex without TYPE")
        layout = types
    elif code in _SCALARS and code not in "cF":
        width = np.dtype(_SCALARS[code]).itemsize
        if item.struct_size % width:
            raise TelemetryError(f"GPMF: {item.key.decode()} size does not fit its type")
        layout = code * (item.struct_size // width)
    else:
        raise TelemetryError(f"GPMF: {item.key.decode()} has no numbers (type {code!r})")
    if any(c not in _SCALARS or c in "cF" for c in layout):
        raise TelemetryError(f"GPMF: unsupported TYPE {layout!r}")
    dtype = np.dtype([(f"f{i}", _SCALARS[c]) for i, c in enumerate(layout)])
    if dtype.itemsize != item.struct_size:
        raise TelemetryError(f"GPMF: {item.key.decode()} structure size does not match its type")
    rows = np.frombuffer(data, dtype, item.repeat, item.start)
    out = np.empty((item.repeat, len(layout)), dtype=np.float64)
    for i, c in enumerate(layout):
        out[:, i] = rows[f"f{i}"].astype(np.float64) / _FIXED_POINT.get(c, 1.0)
    return out


def _scaled(values: FloatArray, scal: FloatArray | None) -> FloatArray:
    if scal is None:
        return values
    flat = scal.reshape(-1)
    if flat.size not in (1, values.shape[1]) or not np.all(flat != 0):
        raise TelemetryError("GPMF: SCAL does not fit the samples it scales")
    return values / flat


@attrs.frozen(eq=False)
class GpsRows:
    """GPS rows of one payload (no times yet): altitude, DOP and fix per row."""

    altitudes: FloatArray
    dop: FloatArray
    fix: NDArray[np.int64]
    stream: str


def parse_gps(payload: bytes) -> list[GpsRows]:
    """GPS rows in one GPMF payload (``DEVC`` > ``STRM`` > ``GPS5``/``GPS9``)."""
    found: list[GpsRows] = []
    _walk(payload, 0, len(payload), found, 0)
    return found


def _walk(data: bytes, start: int, end: int, found: list[GpsRows], depth: int) -> None:
    if depth > MAX_NESTING:
        raise TelemetryError("GPMF: nested too deep")
    scal: FloatArray | None = None
    types: str | None = None
    fix: int | None = None
    dop: float | None = None
    for item in iter_klv(data, start, end):
        if item.type == 0:
            _walk(data, item.start, item.end, found, depth + 1)
        elif item.key == b"SCAL":
            scal = _values(data, item)
        elif item.key == b"TYPE":
            types = data[item.start : item.end].rstrip(b"\0").decode("ascii", "replace")
        elif item.key == b"GPSF":
            fix = int(_values(data, item).reshape(-1)[0])
        elif item.key == b"GPSP":
            dop = float(_values(data, item).reshape(-1)[0]) / 100.0
        elif item.key == b"GPS5":
            rows = _scaled(_values(data, item), scal)
            if rows.shape[1] != 5:
                raise TelemetryError("GPMF: GPS5 rows are not 5 values")
            found.append(
                GpsRows(
                    altitudes=rows[:, 2],
                    dop=np.full(rows.shape[0], 99.99 if dop is None else dop),
                    fix=np.full(rows.shape[0], 0 if fix is None else fix, dtype=np.int64),
                    stream="GPS5",
                )
            )
        elif item.key == b"GPS9":
            rows = _scaled(_values(data, item, types), scal)
            if rows.shape[1] != 9:
                raise TelemetryError("GPMF: GPS9 rows are not 9 values")
            found.append(
                GpsRows(
                    altitudes=rows[:, 2],
                    dop=rows[:, 7],
                    fix=np.rint(rows[:, 8]).astype(np.int64),
                    stream="GPS9",
                )
            )


# --- the altitude track of a recording -----------------------------------------------


def read_altitude_track(chapters: Sequence[Path]) -> AltitudeTrack | None:
    """Fixed GPS samples of the chapters on one timeline; None when no chapter has gpmd.

    Blocking file reads: call it in a worker thread (:func:`load_altitude_track`).
    """
    times: list[FloatArray] = []
    alts: list[FloatArray] = []
    dops: list[FloatArray] = []
    fixes: list[NDArray[np.int64]] = []
    streams: set[str] = set()
    offset = 0.0
    any_track = False
    if not chapters:
        return None
    for chapter in chapters:
        try:
            read = read_payloads(chapter)
        except OSError as exc:
            raise TelemetryError(f"{chapter.name}: {exc.strerror or exc}") from exc
        except TelemetryError as exc:
            raise TelemetryError(f"{chapter.name}: {exc}") from exc
        if read is None:
            if any_track:
                raise TelemetryError(f"{chapter.name} has no gpmd track, its first chapter has")
            return None  # a camera without telemetry: the first chapter tells
        any_track = True
        table, payloads = read
        for start, length, payload in zip(
            table.starts.tolist(), table.durations.tolist(), payloads, strict=True
        ):
            try:
                groups = parse_gps(payload)
            except TelemetryError as exc:
                raise TelemetryError(f"{chapter.name} at {start:.1f} s: {exc}") from exc
            if any(g.stream == "GPS9" for g in groups):
                # HERO11+ may write GPS5 beside GPS9: the same fixes, fewer facts.
                groups = [g for g in groups if g.stream == "GPS9"]
            for rows in groups:
                n = rows.altitudes.size
                keep = (rows.fix >= GpsFix.FIX_2D) & np.isfinite(rows.altitudes)
                t = offset + start + length * np.arange(n) / max(n, 1)
                times.append(t[keep])
                alts.append(rows.altitudes[keep])
                dops.append(rows.dop[keep])
                fixes.append(rows.fix[keep])
                streams.add(rows.stream)
        chapter_length = max(
            table.movie_duration, float((table.starts + table.durations)[-1:].sum())
        )
        offset += chapter_length
    if times:
        t_all = np.concatenate(times)
        order = np.argsort(t_all, kind="stable")
        return AltitudeTrack(
            times=t_all[order],
            altitudes=np.concatenate(alts)[order],
            dop=np.concatenate(dops)[order],
            fix=np.concatenate(fixes)[order],
            duration=offset,
            streams=tuple(sorted(streams)),
        )
    empty = np.zeros(0, dtype=np.float64)
    return AltitudeTrack(empty, empty, empty, np.zeros(0, dtype=np.int64), offset, ())


async def load_altitude_track(chapters: Sequence[Path]) -> AltitudeTrack | None:
    """:func:`read_altitude_track` in a worker thread.

    Cancellation: the thread is not abandoned (it reads a moov and a few KB per second
    of video, milliseconds even for a 4 GB chapter); a cancel takes effect when it
    returns.
    """
    return await trio.to_thread.run_sync(read_altitude_track, list(chapters))


# --- detection (pure) ----------------------------------------------------------------


def vertical_speed(times: FloatArray, altitudes: FloatArray, width_s: float) -> FloatArray:
    """Slope (m/s, up positive) of the least-squares line through the samples within
    ``±width_s/2`` of each sample; 0 where a window holds fewer than 3 samples.

    Sums are taken relative to each window's own sample, offset by offset (a window
    holds tens of samples), not as differences of running totals: those would cancel
    catastrophically over an hour of samples.
    """
    t = np.asarray(times, dtype=np.float64)
    a = np.asarray(altitudes, dtype=np.float64)
    if t.size == 0:
        return np.zeros(0)
    lo = np.searchsorted(t, t - width_s / 2, side="left")
    hi = np.searchsorted(t, t + width_s / 2, side="right")
    n = (hi - lo).astype(np.float64)
    st = np.zeros(t.size)
    sa = np.zeros(t.size)
    stt = np.zeros(t.size)
    sta = np.zeros(t.size)
    for k in range(int((hi - lo).max())):
        idx = lo + k
        inside = idx < hi
        j = np.where(inside, idx, 0)
        dt = np.where(inside, t[j] - t, 0.0)
        da = np.where(inside, a[j] - a, 0.0)
        st += dt
        sa += da
        stt += dt * dt
        sta += dt * da
    denominator = n * stt - st * st
    numerator = n * sta - st * sa
    ok = (n >= 3) & (denominator > 1e-12)
    return np.where(ok, numerator / np.where(ok, denominator, 1.0), 0.0)


def _runs(mask: NDArray[np.bool_], times: FloatArray, max_gap: float) -> list[tuple[int, int]]:
    """Index ranges ``[start, end)`` where ``mask`` holds without a time gap > ``max_gap``."""
    runs: list[tuple[int, int]] = []
    start: int | None = None
    for i in range(mask.size):
        if mask[i] and start is not None and times[i] - times[i - 1] > max_gap:
            runs.append((start, i))
            start = i
        elif mask[i] and start is None:
            start = i
        elif not mask[i] and start is not None:
            runs.append((start, i))
            start = None
    if start is not None:
        runs.append((start, int(mask.size)))
    return runs


def _level(times: FloatArray, values: FloatArray, lo: float, hi: float) -> float | None:
    sel = (times >= lo) & (times <= hi)
    return float(np.median(values[sel])) if sel.any() else None


def _onset(
    times: FloatArray, descent: FloatArray, upto: int, origin: float, target: float,
    cfg: TelemetryConfig,
) -> float | None:  # fmt: skip
    """Where the ramp of the descent rate from ``origin`` to ``target`` begins.

    The ramp is the last crossing of its quarter-way level before sample ``upto``
    (within ``ramp_reach_s``); its tangent there (a regression over ``slope_s``) is
    extended back to ``origin``. None when no such crossing is found.
    """
    level = origin + cfg.tangent_at * (target - origin)
    rising = target > origin
    limit = times[upto] - cfg.ramp_reach_s
    crossing: float | None = None
    i = upto
    while i > 0 and times[i - 1] >= limit:
        a, b = float(descent[i - 1]), float(descent[i])
        if (a < level <= b) if rising else (a > level >= b):
            crossing = float(times[i - 1] + (level - a) / (b - a) * (times[i] - times[i - 1]))
            break
        i -= 1
    if crossing is None:
        return None
    # The ramp's early part (a band around the quarter level, contiguous with the
    # crossing): a line through it, not a two-point slope, so GPS noise averages out.
    lo_level = origin + cfg.ramp_band[0] * (target - origin)
    hi_level = origin + cfg.ramp_band[1] * (target - origin)
    low, high = min(lo_level, hi_level), max(lo_level, hi_level)
    first = last = i - 1 if abs(descent[i - 1] - level) < abs(descent[i] - level) else i
    while first > 0 and low <= descent[first - 1] <= high and crossing - times[first - 1] < 3.0:
        first -= 1
    while (
        last + 1 < times.size
        and low <= descent[last + 1] <= high
        and times[last + 1] - crossing < 3.0
    ):
        last += 1
    if last - first >= 2:
        slope, intercept = np.polyfit(
            times[first : last + 1] - crossing, descent[first : last + 1], 1
        )
        slope, at_crossing = float(slope), float(intercept)
    else:
        slope = (b - a) / max(float(times[i] - times[i - 1]), 1e-9)
        at_crossing = level
    if slope * (target - origin) <= 0:
        return crossing
    return crossing - (at_crossing - origin) / slope


def detect_from_altitude(
    times: FloatArray,
    altitudes: FloatArray,
    cfg: TelemetryConfig | None = None,
    *,
    dop: FloatArray | None = None,
    fix: NDArray[np.int64] | None = None,
) -> tuple[Freefall, ...]:
    """Freefalls from fixed GPS samples (times in s, altitudes in m). Pure."""
    cfg = cfg or TelemetryConfig()
    t = np.asarray(times, dtype=np.float64)
    a = np.asarray(altitudes, dtype=np.float64)
    if t.size < 3:
        return ()
    descent = -vertical_speed(t, a, cfg.slope_s)
    found: list[Freefall] = []
    for s, e in _runs(descent >= cfg.min_descent, t, cfg.max_gap_s):
        if t[e - 1] - t[s] < cfg.min_freefall_s:
            continue
        plateau = float(np.median(descent[s:e]))
        before = _level(t, descent, t[s] - 10.0, t[s] - 4.0)
        after = _level(t, descent, t[e - 1] + 4.0, t[e - 1] + 10.0)
        start = float(t[s])
        if before is not None:
            onset = _onset(t, descent, s, before, plateau, cfg)
            start = start if onset is None else onset
        end = float(t[e - 1])
        if after is not None and e < t.size:
            onset = _onset(t, descent, e, plateau, after, cfg)
            end = end if onset is None else onset
        confidence = _confidence(t, a, descent, start, end, plateau, cfg, dop, fix)
        found.append(Freefall(round(start, 2), round(end, 2), confidence, FreefallSource.TELEMETRY))
    return tuple(found)


def _confidence(
    t: FloatArray, a: FloatArray, descent: FloatArray, start: float, end: float, plateau: float,
    cfg: TelemetryConfig, dop: FloatArray | None, fix: NDArray[np.int64] | None,
) -> float:  # fmt: skip
    sel = (t >= start) & (t <= end)
    quality = 1.0
    if fix is not None and sel.any():
        quality *= float(np.mean(np.where(fix[sel] >= GpsFix.FIX_3D, 1.0, 0.3)))
    if dop is not None and sel.any():
        median_dop = float(np.median(dop[sel]))
        quality *= 1.0 if median_dop <= cfg.good_dop else cfg.good_dop / median_dop
    low, high = cfg.expected_speed
    c_speed = (
        1.0 if low <= plateau <= high else (plateau / low if plateau < low else high / plateau)
    )
    length = end - start
    lo_s, hi_s = cfg.expected_s
    c_length = (
        1.0 if lo_s <= length <= hi_s else (length / lo_s if length < lo_s else hi_s / length)
    )
    return round(float(np.clip(quality * c_speed * c_length, 0.0, 1.0)), 3)


def _ground_edges(
    t: FloatArray, a: FloatArray, ff: Freefall, cfg: TelemetryConfig
) -> tuple[float | None, float | None]:
    """(takeoff, landing) around one freefall: ends of still stretches near the ground."""
    v = vertical_speed(t, a, cfg.ground_slope_s)
    still = np.abs(v) <= cfg.ground_speed
    landing: float | None = None
    after = t > ff.end
    lowest_after: float | None = None
    if after.any():
        lowest_after = float(np.min(a[after]))
        for s, e in _runs(
            still & after & (a <= lowest_after + cfg.ground_margin_m), t, cfg.max_gap_s
        ):
            if t[e - 1] - t[s] >= cfg.ground_run_s:
                landing = float(t[s])
                break
        else:
            # Still under canopy when the samples end: no landing in this recording.
            landing = math.inf
    takeoff: float | None = None
    before = t < ff.start
    if before.any():
        ground = float(np.min(a[before])) + cfg.ground_margin_m
        for s, e in _runs(still & before & (a <= ground), t, cfg.max_gap_s):
            if t[e - 1] - t[s] >= cfg.ground_run_s:
                takeoff = float(t[e - 1])
        if takeoff is None and lowest_after is not None and t[0] <= cfg.max_gap_s:
            # Recording started in the plane: far above anything after the freefall.
            if float(np.min(a[before])) > lowest_after + cfg.airborne_m:
                takeoff = 0.0
    return takeoff, landing


def analyse_altitude(track: AltitudeTrack, cfg: TelemetryConfig | None = None) -> TelemetryAnalysis:
    """Freefalls, good-fix coverage, takeoff and landing of one recording's track. Pure."""
    cfg = cfg or TelemetryConfig()
    freefalls = detect_from_altitude(
        track.times, track.altitudes, cfg, dop=track.dop, fix=track.fix
    )
    good = (track.fix >= GpsFix.FIX_3D) & (track.dop <= cfg.max_dop)
    covered = tuple(
        (float(track.times[s]), float(track.times[e - 1]))
        for s, e in _runs(good, track.times, cfg.max_gap_s)
        if e - s >= 2
    )
    edges = [_ground_edges(track.times, track.altitudes, ff, cfg) for ff in freefalls]
    return TelemetryAnalysis(
        freefalls=freefalls,
        covered=covered,
        takeoffs=tuple(round(e[0], 2) if e[0] is not None else None for e in edges),
        landings=tuple(round(e[1], 2) if e[1] is not None else None for e in edges),
        good_confidence=cfg.good_confidence,
        min_coverage=cfg.min_coverage,
    )
