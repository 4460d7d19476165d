"""A test-only GoPro telemetry WRITER: GPMF payloads and a ``gpmd`` track in an MP4.

Why: the telemetry reader must be tested on files shaped like a GoPro's, and no
camera file can ship with the suite. This builds them from an altitude profile:

* :func:`gps_payload` — one GPMF payload (``DEVC`` > ``STRM`` > ``STNM``, ``GPSF``,
  ``GPSU``, ``GPSP``, ``SCAL``, ``GPS5``; or ``TYPE``, ``SCAL``, ``GPS9``), following
  GoPro's published KLV layout (big-endian, items padded to 4 bytes).
* :func:`inject_gpmd` — adds a ``gpmd`` track to an MP4 that ffmpeg wrote with its
  moov at the end: the bytes before the moov stay as they were, a new ``mdat`` with
  the payloads and a rewritten moov (the old one's boxes plus a ``trak`` with ``hdlr``
  ``meta`` "GoPro MET", ``stsd`` ``gpmd``, one sample per second, and ``mvhd``'s next
  track id moved on) are appended.
* :func:`jump_profile` — altitude over time of a jump: plane climb, level jump run,
  exit, freefall with drag (terminal speed reached in ~10 s as a body does), canopy
  opening, canopy descent, landing; the true times come with it.

Nothing here is imported by the service.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from tests.support.cards import make_jump_clip

G = 9.81
GPS5_SCAL = (10_000_000, 10_000_000, 1000, 1000, 100)
GPS9_SCAL = (10_000_000, 10_000_000, 1000, 1000, 100, 1, 1000, 100, 1)
GPS9_TYPE = b"lllllllSS"
LAT, LON = 46.68, 7.86


def klv(key: bytes, type_: str | int, size: int, repeat: int, payload: bytes) -> bytes:
    """One KLV item, padded to 4 bytes; ``type_`` 0 for nested items."""
    assert len(key) == 4 and len(payload) == size * repeat
    code = type_ if isinstance(type_, int) else ord(type_)
    body = struct.pack(">4sBBH", key, code, size, repeat) + payload
    return body + b"\0" * (-len(body) % 4)


def _string(key: bytes, text: bytes) -> bytes:
    return klv(key, "c", 1, len(text), text)


def _nested(key: bytes, items: Sequence[bytes]) -> bytes:
    body = b"".join(items)
    # Nested payloads are a whole number of 4-byte words: size 4, repeat = words.
    return klv(key, 0, 4, len(body) // 4, body)


@attrs.frozen
class GpsSample:
    altitude: float
    fix: int = 3
    dop: float = 1.5
    speed3d: float = 0.0


def gps_payload(
    samples: Sequence[GpsSample], *, stream: str = "GPS5", utc: str = "261201100000.000"
) -> bytes:
    """A GPMF payload holding ``samples`` (one second of GPS) as GPS5 or GPS9.

    GPS5 carries one fix and one DOP per payload (``GPSF``/``GPSP``): the first
    sample's. GPS9 carries them per sample.
    """
    if stream == "GPS5":
        scal: tuple[int, ...] = GPS5_SCAL
        rows = b"".join(
            struct.pack(
                ">5l",
                *(
                    int(round(v * s))
                    for v, s in zip((LAT, LON, x.altitude, 0.0, x.speed3d), scal, strict=True)
                ),
            )
            for x in samples
        )
        first = samples[0]
        items = [
            _string(b"STNM", b"GPS (Lat., Long., Alt., 2D speed, 3D speed)"),
            klv(b"GPSF", "L", 4, 1, struct.pack(">L", first.fix)),
            klv(b"GPSU", "U", 16, 1, utc.encode()),
            klv(b"GPSP", "S", 2, 1, struct.pack(">H", int(round(first.dop * 100)))),
            klv(b"SCAL", "l", 4, 5, struct.pack(">5l", *scal)),
            klv(b"GPS5", "l", 20, len(samples), rows),
        ]
    elif stream == "GPS9":
        scal = GPS9_SCAL
        rows = b"".join(
            struct.pack(
                ">7l2H",
                *(
                    int(round(v * s))
                    for v, s in zip(
                        (LAT, LON, x.altitude, 0.0, x.speed3d, 9466.0, 36000.0 + i / 18),
                        scal[:7],
                        strict=True,
                    )
                ),
                int(round(x.dop * 100)),
                x.fix,
            )
            for i, x in enumerate(samples)
        )
        items = [
            _string(b"STNM", b"GPS (Lat., Long., Alt., 2D, 3D, days, secs, DOP, fix)"),
            _string(b"TYPE", GPS9_TYPE),
            klv(b"SCAL", "l", 4, 9, struct.pack(">9l", *scal)),
            klv(b"GPS9", "?", 32, len(samples), rows),
        ]
    else:
        raise ValueError(stream)
    strm = _nested(b"STRM", items)
    return _nested(
        b"DEVC", [klv(b"DVID", "L", 4, 1, struct.pack(">L", 1)), _string(b"DVNM", b"HERO"), strm]
    )


def payloads_from_profile(
    altitude: Callable[[np.ndarray], np.ndarray],
    *,
    start: float,
    seconds: int,
    rate: int = 18,
    stream: str = "GPS5",
    fix: Callable[[float], int] | None = None,
    dop: float = 1.5,
    noise_m: float = 0.0,
    seed: int = 0,
) -> list[bytes]:
    """One payload per second from ``start``: ``rate`` rows at ``t + i/rate``.

    ``fix(t)`` gives the fix of the row at recording time ``t`` (3 when omitted);
    ``noise_m`` adds reproducible Gaussian noise to the altitude.
    """
    rng = np.random.default_rng(seed)
    out = []
    for second in range(seconds):
        t = start + second + np.arange(rate) / rate
        alt = altitude(t) + (rng.standard_normal(rate) * noise_m if noise_m else 0.0)
        samples = [
            GpsSample(float(a), fix=3 if fix is None else fix(float(ti)), dop=dop)
            for ti, a in zip(t, alt, strict=True)
        ]
        out.append(gps_payload(samples, stream=stream))
    return out


# --- MP4 boxes ---------------------------------------------------------------------


def box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I4s", 8 + len(payload), kind) + payload


def full_box(kind: bytes, version: int, flags: int, payload: bytes) -> bytes:
    return box(kind, struct.pack(">I", (version << 24) | flags) + payload)


def top_level_boxes(data: bytes) -> list[tuple[bytes, int, int]]:
    """(type, start, end) of the top-level boxes, headers included."""
    out = []
    pos = 0
    while pos + 8 <= len(data):
        size, kind = struct.unpack_from(">I4s", data, pos)
        header = 8
        if size == 1:
            size = struct.unpack_from(">Q", data, pos + 8)[0]
            header = 16
        elif size == 0:
            size = len(data) - pos
        assert size >= header
        out.append((kind, pos, pos + size))
        pos += size
    return out


def _children(data: bytes) -> list[tuple[bytes, bytes]]:
    """(type, whole box) of the boxes in ``data``."""
    return [(kind, data[a:b]) for kind, a, b in top_level_boxes(data)]


def _gpmd_trak(
    track_id: int, sizes: Sequence[int], offsets: Sequence[int], movie_timescale: int
) -> bytes:
    timescale = 1000
    n = len(sizes)
    duration = n * timescale
    movie_duration = n * movie_timescale
    matrix = struct.pack(">9I", 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)
    tkhd = full_box(
        b"tkhd", 0, 0,
        struct.pack(">IIIII", 0, 0, track_id, 0, movie_duration) + b"\0" * 8
        + struct.pack(">hhhH", 0, 0, 0, 0) + matrix + struct.pack(">II", 0, 0),
    )  # fmt: skip
    mdhd = full_box(b"mdhd", 0, 0, struct.pack(">IIIIHH", 0, 0, timescale, duration, 0x55C4, 0))
    hdlr = full_box(b"hdlr", 0, 0, struct.pack(">I4s", 0, b"meta") + b"\0" * 12 + b"GoPro MET\0")
    dref = full_box(b"dref", 0, 0, struct.pack(">I", 1) + full_box(b"url ", 0, 1, b""))
    entry = box(b"gpmd", b"\0" * 6 + struct.pack(">H", 1) + b"\0" * 4)
    stsd = full_box(b"stsd", 0, 0, struct.pack(">I", 1) + entry)
    stts = full_box(b"stts", 0, 0, struct.pack(">III", 1, n, timescale))
    stsc = full_box(b"stsc", 0, 0, struct.pack(">IIII", 1, 1, 1, 1))
    stsz = full_box(b"stsz", 0, 0, struct.pack(">II", 0, n) + struct.pack(f">{n}I", *sizes))
    if max(offsets, default=0) >= 1 << 32:
        chunk = full_box(b"co64", 0, 0, struct.pack(">I", n) + struct.pack(f">{n}Q", *offsets))
    else:
        chunk = full_box(b"stco", 0, 0, struct.pack(">I", n) + struct.pack(f">{n}I", *offsets))
    stbl = box(b"stbl", stsd + stts + stsc + stsz + chunk)
    minf = box(b"minf", full_box(b"nmhd", 0, 0, b"") + box(b"dinf", dref) + stbl)
    mdia = box(b"mdia", mdhd + hdlr + minf)
    return box(b"trak", tkhd + mdia)


def inject_gpmd(path: Path, payloads: Sequence[bytes]) -> None:
    """Add a gpmd track (one payload per second) to the MP4 at ``path``, in place."""
    data = path.read_bytes()
    boxes = top_level_boxes(data)
    kind, moov_start, moov_end = boxes[-1]
    assert kind == b"moov" and moov_end == len(data), "needs ffmpeg's moov-at-the-end layout"
    head = data[:moov_start]
    moov_children = _children(data[moov_start + 8 : moov_end])
    mdat_payload = b"".join(payloads)
    mdat_start = len(head)
    offsets, at = [], mdat_start + 8
    for p in payloads:
        offsets.append(at)
        at += len(p)
    new_children: list[bytes] = []
    last_trak = max(i for i, (k, _) in enumerate(moov_children) if k == b"trak")
    mvhd = next(b for k, b in moov_children if k == b"mvhd")
    version = mvhd[8]
    timescale = struct.unpack_from(">I", mvhd, 8 + 4 + (16 if version == 1 else 8))[0]
    next_id = struct.unpack_from(">I", mvhd, len(mvhd) - 4)[0]
    for i, (k, b) in enumerate(moov_children):
        if k == b"mvhd":
            b = b[:-4] + struct.pack(">I", next_id + 1)
        new_children.append(b)
        if i == last_trak:
            new_children.append(_gpmd_trak(next_id, [len(p) for p in payloads], offsets, timescale))
    path.write_bytes(head + box(b"mdat", mdat_payload) + box(b"moov", b"".join(new_children)))


# --- altitude profile of a jump --------------------------------------------------------


@attrs.frozen
class Jump:
    """True times (s on the recording's timeline) of a generated jump."""

    exit: float
    deploy: float
    landing: float | None
    times: np.ndarray
    altitudes: np.ndarray

    def altitude(self, t: np.ndarray) -> np.ndarray:
        return np.interp(t, self.times, self.altitudes)


def jump_profile(
    *,
    seconds: float,
    exit_at: float,
    exit_altitude: float = 4000.0,
    freefall_s: float = 40.0,
    terminal: float = 50.0,
    canopy: float = 5.0,
    ground: float = 500.0,
    climb: float = 8.0,
    jump_run_s: float = 20.0,
    physical: bool = True,
) -> Jump:
    """Altitude over ``[0, seconds]``; ``physical=False`` makes every speed change a step."""
    dt = 0.005
    t = np.arange(0.0, seconds + dt, dt)
    alt = np.empty_like(t)
    v = 0.0  # descent rate, m/s
    h = exit_altitude
    deploy_at = exit_at + freefall_s
    landing: float | None = None
    i_exit = int(round(exit_at / dt))
    run_start = exit_at - jump_run_s
    for i in range(t.size):
        ti = t[i]
        if i <= i_exit:
            alt[i] = max(ground, exit_altitude - climb * max(0.0, run_start - ti))
            continue
        if ti <= deploy_at:
            v = terminal if not physical else v + G * (1 - (v / terminal) ** 2) * dt
        elif physical:
            v = canopy + (v - canopy) * math.exp(-dt / 1.0)
        else:
            v = canopy
        h -= v * dt
        if h <= ground:
            h = ground
            if landing is None:
                landing = float(ti)
        alt[i] = h
    return Jump(exit_at, deploy_at, landing, t, alt)


def add_telemetry(
    path: Path, jump: Jump, *, start: float = 0.0, seconds: int, noise_m: float = 1.0,
    **kw: Any,
) -> list[bytes]:  # fmt: skip
    """A ``gpmd`` track with ``jump``'s altitude from ``start`` for ``seconds`` (one
    payload a second) injected into ``path``; the payloads, for byte comparisons."""
    payloads = payloads_from_profile(
        jump.altitude, start=start, seconds=seconds, noise_m=noise_m, **kw
    )
    inject_gpmd(path, payloads)
    return payloads


def make_chaptered_telemetry_jump(
    first: Path, second: Path, jump: Jump, *, split_s: float, seconds: int,
    seeds: tuple[int, int], freefall: tuple[float, float] | None = None,
    creation_time: str | None = None,
) -> tuple[Path, Path]:  # fmt: skip
    """One recording of ``seconds`` split into two GoPro chapters at ``split_s``, each
    with its share of ``jump``'s telemetry. The sound has a wind roar over ``freefall``
    (start, length) when given, else it is quiet (a muted or cased camera)."""
    whole = first.with_name("unused-whole.mp4")
    make_jump_clip(
        whole, seconds=seconds, freefall=freefall, creation_time=creation_time,
        chapters=[(first, split_s), (second, seconds - split_s)],
    )  # fmt: skip
    whole.unlink(missing_ok=True)
    add_telemetry(first, jump, seconds=int(split_s), seed=seeds[0])
    add_telemetry(second, jump, start=split_s, seconds=int(seconds - split_s), seed=seeds[1])
    return first, second
