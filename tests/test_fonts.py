"""``POST /api/fonts/convert`` and :func:`stinercut_svc.fonts.convert_font`.

Fonts are built here with fontTools' FontBuilder (a TrueType/glyf one and a
CFF/OTF one) from outlines and metrics chosen by the test, so the expected path
data, transforms and advances are known exactly. Oversized bodies are sent over a
real socket to check they are refused while still arriving.
"""

from __future__ import annotations

import io
import os
import re
import struct
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import attrs
import pytest
import trio
from fontTools.fontBuilder import FontBuilder
from fontTools.pens.t2CharStringPen import T2CharStringPen
from fontTools.pens.ttGlyphPen import TTGlyphPen
from fontTools.ttLib import TTFont
from quart.datastructures import FileStorage

from stinercut_svc import fonts
from stinercut_svc.app import create_app
from stinercut_svc.config import Settings
from stinercut_svc.context import StinercutApp
from stinercut_svc.fonts import FontError, convert_font
from tests.support.processes import descendants
from tests.support.server import running_server

DEJAVU = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
BOUNDARY = "stinercutBoundary"
UMLAUTS = {"Ö": "Ouml", "Ä": "Auml", "Ü": "Uuml", "ö": "ouml", "ä": "auml", "ü": "uuml", "ß": "szlig"}

Draw = Callable[[object], None]


# --- outlines (all on known coordinates; lsb = xMin so fontTools draws them as-is) ---

def _square(pen) -> None:  # type: ignore[no-untyped-def]
    pen.moveTo((100, 0))
    pen.lineTo((100, 700))
    pen.lineTo((500, 700))
    pen.lineTo((500, 0))
    pen.closePath()


def _quad(pen) -> None:  # type: ignore[no-untyped-def]
    pen.moveTo((100, 0))
    pen.qCurveTo((400, 0), (400, 350))
    pen.lineTo((100, 700))
    pen.closePath()


def _triangle(pen) -> None:  # type: ignore[no-untyped-def]
    pen.moveTo((50, 0))
    pen.lineTo((250, 500))
    pen.lineTo((450, 0))
    pen.closePath()


def _cubic(pen) -> None:  # type: ignore[no-untyped-def]
    pen.moveTo((100, 0))
    pen.curveTo((100, 500), (400, 900), (900, 900))
    pen.lineTo((900, 0))
    pen.closePath()


def _nothing(pen) -> None:  # type: ignore[no-untyped-def]
    pass


SQUARE_D = "M100 0V700H500V0Z"
QUAD_D = "M100 0Q400 0 400 350L100 700Z"
TRIANGLE_D = "M50 0 250 500 450 0Z"  # fontTools' SVG pen omits a repeated L
CUBIC_D = "M100 0C100 500 400 900 900 900V0Z"

#: char → (glyph name, outline, advance, lsb) for the TrueType test font.
TT_GLYPHS: dict[str, tuple[str, Draw, int, int]] = {
    "A": ("A", _square, 600, 100),
    "O": ("O", _quad, 550, 100),
    "a": ("a", _triangle, 500, 50),
    "1": ("one", _triangle, 520, 50),
    "e": ("e", _nothing, 480, 0),  # mapped, but no outline
    " ": ("space", _nothing, 250, 0),  # not a requested character
    **{char: (f"uni{ord(char):04X}", _triangle, 500, 50) for char in UMLAUTS},
}


def build_truetype(
    glyphs: dict[str, tuple[str, Draw, int, int]] = TT_GLYPHS,
    *,
    units_per_em: int = 1000,
    typo_ascender: int | None = 750,
    hhea_ascent: int = 800,
    flavor: str | None = None,
    drop: Iterable[str] = (),
) -> bytes:
    builder = FontBuilder(units_per_em, isTTF=True)
    order = [".notdef", *(name for name, *_ in glyphs.values())]
    builder.setupGlyphOrder(order)
    builder.setupCharacterMap({ord(char): spec[0] for char, spec in glyphs.items()})
    outlines = {".notdef": _pen_glyph(_square)}
    metrics = {".notdef": (600, 100)}
    for name, draw, advance, lsb in glyphs.values():
        outlines[name] = _pen_glyph(draw)
        metrics[name] = (advance, lsb)
    builder.setupGlyf(outlines)
    builder.setupHorizontalMetrics(metrics)
    builder.setupHorizontalHeader(ascent=hhea_ascent, descent=-200)
    builder.setupNameTable({"familyName": "Stinercut Test", "styleName": "Regular"})
    if typo_ascender is not None:
        builder.setupOS2(sTypoAscender=typo_ascender, sTypoDescender=-250, usWinAscent=800)
    builder.setupPost()
    return _save(builder.font, flavor=flavor, drop=drop)


def build_cff(*, flavor: str | None = None) -> bytes:
    """A CFF-flavoured OpenType font, 2048 units/em, no OS/2 (ascender from hhea)."""
    glyphs = {"A": "A", "ß": "germandbls", "z": "z"}
    builder = FontBuilder(2048, isTTF=False)
    builder.setupGlyphOrder([".notdef", *glyphs.values()])
    builder.setupCharacterMap({ord(char): name for char, name in glyphs.items()})
    charstrings = {}
    for name in [".notdef", *glyphs.values()]:
        pen = T2CharStringPen(1000, None)
        if name != "z":  # z is mapped but empty
            _cubic(pen)
        charstrings[name] = pen.getCharString()
    builder.setupCFF("StinercutCFF", {"FullName": "Stinercut CFF"}, charstrings, {})
    builder.setupHorizontalMetrics({name: (1000, 100) for name in [".notdef", *glyphs.values()]})
    builder.setupHorizontalHeader(ascent=1900, descent=-500)
    builder.setupNameTable({"familyName": "Stinercut CFF", "styleName": "Regular"})
    builder.setupPost()
    return _save(builder.font, flavor=flavor, drop=("OS/2",))


def _pen_glyph(draw: Draw):  # type: ignore[no-untyped-def]
    pen = TTGlyphPen(None)
    draw(pen)
    return pen.glyph()


def _save(font: TTFont, *, flavor: str | None, drop: Iterable[str]) -> bytes:
    for tag in drop:
        if tag in font:
            del font[tag]
    font.flavor = flavor
    out = io.BytesIO()
    font.save(out)
    return out.getvalue()


def _ids(svg_paths: str) -> list[str]:
    return re.findall(r'<path id="_([^"]+)"', svg_paths)


def _lines_by_id(svg_paths: str) -> dict[str, str]:
    return {re.match(r'<path id="_([^"]+)"', line)[1]: line for line in svg_paths.split("\n")}  # type: ignore[index]


# --- the pure function ----------------------------------------------------------

TT_TRANSFORM = "translate(0, 45.00) scale(0.0600, -0.0600)"  # 60/1000; OS/2 typo ascender 750


def test_truetype_paths_ids_transform_and_sort_order() -> None:
    result = convert_font(build_truetype(), "Stinercut Test")
    lines = result.svg_paths.split("\n")
    assert lines == sorted(lines)
    assert _ids(result.svg_paths) == [
        "1", "A", "Auml", "O", "Ouml", "Uuml", "a", "auml", "ouml", "szlig", "uuml",
    ]
    by_id = _lines_by_id(result.svg_paths)
    assert by_id["A"] == f'<path id="_A" d="{SQUARE_D}" transform="{TT_TRANSFORM}" />'
    assert by_id["O"] == f'<path id="_O" d="{QUAD_D}" transform="{TT_TRANSFORM}" />'
    assert by_id["Ouml"] == f'<path id="_Ouml" d="{TRIANGLE_D}" transform="{TT_TRANSFORM}" />'
    assert result.glyph_count == 11
    assert result.font_name == "Stinercut Test"
    assert result.empty == ("e",)
    assert "B" in result.missing and "e" not in result.missing and "A" not in result.missing
    assert len(result.missing) == len(fonts.CHARACTERS) - 11 - 1
    assert result.advances["A"] == 36.0  # 600 * 0.06
    assert result.advances["O"] == 33.0
    assert result.advances["1"] == 31.2
    assert result.advances["ß"] == 30.0
    assert "e" not in result.advances


def test_umlaut_and_eszett_ids() -> None:
    result = convert_font(build_truetype(), "x")
    ids = set(_ids(result.svg_paths))
    assert set(UMLAUTS.values()) <= ids
    assert not ids & set(UMLAUTS)  # the raw characters never appear as ids


def test_ascender_falls_back_to_hhea_and_scale_follows_units_per_em() -> None:
    data = build_truetype(units_per_em=2048, typo_ascender=None, hhea_ascent=1900, drop=("OS/2",))
    result = convert_font(data, "x")
    # 60 / 2048 = 0.029296875; 1900 * that = 55.664…
    assert 'transform="translate(0, 55.66) scale(0.0293, -0.0293)"' in result.svg_paths
    assert result.advances["A"] == round(600 * 60 / 2048, 2)


def test_cff_opentype_font() -> None:
    result = convert_font(build_cff(), "cff")
    assert result.svg_paths == (
        f'<path id="_A" d="{CUBIC_D}" transform="translate(0, 55.66) scale(0.0293, -0.0293)" />\n'
        f'<path id="_szlig" d="{CUBIC_D}" transform="translate(0, 55.66) scale(0.0293, -0.0293)" />'
    )
    assert result.glyph_count == 2
    assert result.empty == ("z",)
    assert result.advances == {"A": 29.3, "ß": 29.3}


@pytest.mark.parametrize("flavor", ["woff", "woff2"])
def test_woff_and_woff2_give_the_same_paths(flavor: str) -> None:
    plain = convert_font(build_truetype(), "x")
    packed = convert_font(build_truetype(flavor=flavor), "x")
    assert packed == plain
    assert convert_font(build_cff(flavor=flavor), "x") == convert_font(build_cff(), "x")


def test_font_name_from_filename() -> None:
    assert fonts.font_name_from_filename("My Font.v2.TTF") == "My Font.v2"
    assert fonts.font_name_from_filename("C:\\fonts\\Brand.woff2") == "Brand"
    assert fonts.font_name_from_filename("../../x/Brand.otf") == "Brand"
    for bad in ("font.ttc", "font.pdf", "font", ".ttf", "", None):
        with pytest.raises(FontError):
            fonts.font_name_from_filename(bad)


@pytest.mark.parametrize("flavor", ["woff", "woff2"])
def test_compressed_fonts_that_inflate_past_the_limit_are_refused(flavor: str) -> None:
    data = build_truetype(flavor=flavor)
    with pytest.raises(FontError) as caught:
        convert_font(data, "x", max_sfnt_bytes=500)
    assert caught.value.code == "font_too_large"
    # A header that understates the size (a compression bomb) is caught while
    # inflating, not trusted.
    lying = bytearray(data)
    struct.pack_into(">I", lying, 16, 100)  # totalSfntSize
    if flavor == "woff":
        struct.pack_into(">I", lying, 44 + 12, 10)  # first table's origLength
    with pytest.raises(FontError) as caught:
        convert_font(bytes(lying), "x", max_sfnt_bytes=500)
    assert caught.value.code in ("font_too_large", "corrupt_font")


def test_dejavu_sans_when_installed() -> None:
    # DejaVuSans is a real prerequisite on the project's machines (fonts-dejavu-core).
    if not DEJAVU.exists():
        pytest.skip(f"{DEJAVU} is not installed (Debian package fonts-dejavu-core)")
    result = convert_font(DEJAVU.read_bytes(), "DejaVuSans")
    assert result.glyph_count == len(fonts.CHARACTERS) == 69
    assert result.missing == () and result.empty == ()
    lines = result.svg_paths.split("\n")
    assert lines == sorted(lines)
    # unitsPerEm 2048, OS/2 typo ascender 1556: 1556 * 60 / 2048 = 45.59
    assert all(
        line.endswith('transform="translate(0, 45.59) scale(0.0293, -0.0293)" />') for line in lines
    )
    assert set(UMLAUTS.values()) <= set(_ids(result.svg_paths))
    assert result.advances["A"] == round(1401 * 60 / 2048, 2)


# --- the route ------------------------------------------------------------------

async def _post_font(client, data: bytes, filename: str = "Test Font.ttf"):  # type: ignore[no-untyped-def]
    response = await client.post(
        "/api/fonts/convert", files={"file": FileStorage(io.BytesIO(data), filename=filename)}
    )
    return response.status_code, await response.get_json()


async def test_convert_route_answers_in_the_frontend_format(client) -> None:  # type: ignore[no-untyped-def]
    status, body = await _post_font(client, build_truetype(), "Stinercut Test.ttf")
    assert status == 200, body
    assert set(body) == {
        "success", "font_name", "svg_paths", "glyph_count", "missing", "empty", "advances",
    }
    assert body["success"] is True
    assert body["font_name"] == "Stinercut Test"
    assert body["svg_paths"] == convert_font(build_truetype(), "x").svg_paths
    assert body["glyph_count"] == 11
    assert body["empty"] == ["e"]
    assert body["missing"][:3] == ["B", "C", "D"]
    assert body["advances"]["A"] == 36.0 and body["advances"]["Ö"] == 30.0


@pytest.mark.parametrize(
    ("filename", "build"),
    [
        ("brand.otf", build_cff),
        ("brand.woff", lambda: build_truetype(flavor="woff")),
        ("brand.WOFF2", lambda: build_cff(flavor="woff2")),
    ],
)
async def test_convert_route_accepts_otf_woff_woff2(client, filename: str, build) -> None:  # type: ignore[no-untyped-def]
    status, body = await _post_font(client, build(), filename)
    assert status == 200, body
    assert body["font_name"] == "brand"
    assert body["glyph_count"] >= 2


async def _error(response_or_pair) -> tuple[int, str, str]:  # type: ignore[no-untyped-def]
    status, body = response_or_pair
    assert set(body) == {"error", "detail"} and body["detail"] == body["error"]["message"], body
    return status, body["error"]["code"], body["error"]["message"]


def _no_cmap() -> bytes:
    return build_truetype(drop=("cmap",))


def _no_requested_chars() -> bytes:
    return build_truetype({"€": ("Euro", _square, 600, 100), " ": ("space", _nothing, 250, 0)})


def _only_empty_glyphs() -> bytes:
    return build_truetype({"A": ("A", _nothing, 600, 0)})


@pytest.mark.parametrize(
    ("data", "filename", "code", "words"),
    [
        (b"", "font.ttf", "empty_file", "empty"),
        (b"\x00\x01\x00\x00", "font.pdf", "unsupported_extension", ".ttf"),
        (b"\x00\x01\x00\x00", "font.ttc", "unsupported_extension", "not a font file name"),
        (b"%PDF-1.4 definitely not a font" * 10, "font.ttf", "not_a_font", "not a TrueType"),
        (b"ttcf\x00\x01\x00\x00" + b"\x00" * 64, "font.ttf", "unsupported_font", "collections"),
        (build_truetype()[:700], "font.ttf", "corrupt_font", "truncated"),
        (build_truetype()[:30], "font.ttf", "corrupt_font", "truncated"),
        (build_truetype(flavor="woff2")[:300], "font.woff2", "corrupt_font", "WOFF2"),
        (build_truetype(flavor="woff")[:600], "font.woff", "corrupt_font", "truncated"),
        (_no_cmap(), "font.ttf", "no_cmap", "cmap"),
        (_no_requested_chars(), "font.ttf", "no_glyphs", "none of the characters"),
        (_only_empty_glyphs(), "font.ttf", "no_glyphs", "with an outline"),
    ],
)
async def test_bad_fonts_are_clear_400s(client, data: bytes, filename: str, code: str, words: str) -> None:  # type: ignore[no-untyped-def]
    status, got_code, message = await _error(await _post_font(client, data, filename))
    assert (status, got_code) == (400, code), message
    assert words in message


def _multipart(*parts: tuple[str, str | None, bytes]) -> tuple[bytes, dict[str, str]]:
    """A hand-made multipart body from (field name, file name or None, content)."""
    body = b""
    for name, filename, content in parts:
        disposition = f'form-data; name="{name}"'
        if filename is not None:
            disposition += f'; filename="{filename}"'
        body += f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n\r\n".encode()
        body += content + b"\r\n"
    body += f"--{BOUNDARY}--\r\n".encode()
    return body, {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}


async def _post_raw(client, body: bytes, headers: dict[str, str]) -> tuple[int, str, str]:  # type: ignore[no-untyped-def]
    response = await client.post("/api/fonts/convert", data=body, headers=headers)
    return await _error((response.status_code, await response.get_json()))


async def test_missing_file_field_and_wrong_body_types(client, app: StinercutApp) -> None:  # type: ignore[no-untyped-def]
    # Multipart with no parts at all.
    status, code, message = await _post_raw(client, *_multipart())
    assert (status, code) == (400, "no_file") and "'file'" in message
    # A text field the route does not take (and no ``file``): named, like unknown JSON fields.
    status, code, message = await _post_raw(client, *_multipart(("name", None, b"x")))
    assert (status, code) == (422, "unprocessable") and "'name'" in message
    # A file under another field name.
    font = build_truetype()
    status, code, message = await _post_raw(client, *_multipart(("upload", "a.ttf", font)))
    assert (status, code) == (400, "no_file") and "'upload'" in message
    # ``file`` sent as a text field, without a file name.
    status, code, message = await _post_raw(client, *_multipart(("file", None, font)))
    assert (status, code) == (400, "no_file") and "file part" in message
    # One font per request: a second ``file`` part is refused.
    status, code, _ = await _post_raw(
        client, *_multipart(("file", "a.ttf", font), ("file", "b.ttf", font))
    )
    assert (status, code) == (400, "too_many_files")
    # Not multipart at all: JSON, a url-encoded form → 415; multipart without a boundary → 400.
    response = await client.post("/api/fonts/convert", json={"file": "abc"})
    assert (await _error((response.status_code, await response.get_json())))[:2] == (
        415,
        "unsupported_media_type",
    )
    response = await client.post("/api/fonts/convert", form={"file": "abc"})
    assert (await _error((response.status_code, await response.get_json())))[:2] == (
        415,
        "unsupported_media_type",
    )
    status, code, message = await _post_raw(client, b"xx", {"Content-Type": "multipart/form-data"})
    assert (status, code) == (400, "malformed_multipart") and "boundary" in message
    # A body that is not what the boundary promises.
    status, code, _ = await _post_raw(
        client,
        b"--b\r\nno headers here at all",
        {"Content-Type": "multipart/form-data; boundary=b"},
    )
    assert (status, code) == (400, "malformed_multipart")
    # No request body at all.
    status, code, _ = await _post_raw(client, b"", {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"})
    assert (status, code) == (400, "malformed_multipart")
    # Nothing of any of these is left in the temporary folder.
    assert _temp_files(app) == []


def _temp_files(app: StinercutApp) -> list[Path]:
    return sorted(path for path in app.storage.temp.rglob("*") if not path.is_dir())


async def test_file_just_over_10_mb_is_413(client, app: StinercutApp) -> None:  # type: ignore[no-untyped-def]
    # Within the multipart slack, so the per-file count is what refuses it.
    response = await client.post(
        "/api/fonts/convert",
        files={"file": FileStorage(io.BytesIO(b"\0" * (fonts.MAX_FONT_BYTES + 1)), filename="big.ttf")},
    )
    body = await response.get_json()
    status, code, message = await _error((response.status_code, body))
    assert (status, code) == (413, "payload_too_large")
    assert "10 MiB" in message and body["error"]["details"] == {"limit": fonts.MAX_FONT_BYTES}
    # Exactly 10 MB passes the size check (and then is simply not a font).
    status, code, _ = await _error(await _post_font(client, b"\0" * fonts.MAX_FONT_BYTES, "big.ttf"))
    assert (status, code) == (400, "not_a_font")
    # The font passed through temp/fonts/ and was removed, accepted or not.
    assert (await _post_font(client, build_truetype()))[0] == 200
    assert _temp_files(app) == []


async def test_wrong_extension_is_refused_before_the_font_is_read(live_url: str) -> None:
    # Only the part headers are sent: the answer must come without the font's bytes.
    head = (
        f"--{BOUNDARY}\r\n"
        'Content-Disposition: form-data; name="file"; filename="brand.pdf"\r\n\r\n'
    ).encode()
    with trio.fail_after(10):
        status, sent, reply = await _raw_exchange(
            live_url, _request_head(f"Content-Length: {len(head) + 5_000_000}\r\n"), [head]
        )
    assert status == 400 and sent == len(head)


# --- oversized bodies on a real socket ------------------------------------------

PART_HEAD = (
    f"--{BOUNDARY}\r\n"
    'Content-Disposition: form-data; name="file"; filename="big.ttf"\r\n'
    "Content-Type: font/ttf\r\n\r\n"
).encode()


def _request_head(extra: str) -> bytes:
    return (
        "POST /api/fonts/convert HTTP/1.1\r\nHost: test\r\n"
        f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n{extra}\r\n"
    ).encode()


def _chunked(megabytes: int) -> Iterator[bytes]:
    yield b"%x\r\n%s\r\n" % (len(PART_HEAD), PART_HEAD)
    piece = b"\0" * (1024 * 1024)
    for _ in range(megabytes):
        yield b"%x\r\n%s\r\n" % (len(piece), piece)


async def _raw_exchange(base_url: str, head: bytes, body: Iterable[bytes]) -> tuple[int, int, bytes]:
    """Send ``head`` then ``body`` while reading; return (status, body bytes sent, reply head).

    The body is sent by one task while another waits for the answer, as a browser
    would: the server may answer (and close) before the body is complete.
    """
    parts = urlsplit(base_url)
    assert parts.hostname and parts.port
    sent = 0
    reply = bytearray()
    async with await trio.open_tcp_stream(parts.hostname, parts.port) as stream:

        async def send() -> None:
            nonlocal sent
            try:
                await stream.send_all(head)
                for chunk in body:
                    await stream.send_all(chunk)
                    sent += len(chunk)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                pass  # the server answered and closed; that is the point

        async with trio.open_nursery() as nursery:
            nursery.start_soon(send)
            while b"\r\n\r\n" not in reply:
                data = await stream.receive_some(65536)
                if not data:
                    break
                reply += data
            nursery.cancel_scope.cancel()
    match = re.match(rb"HTTP/1\.1 (\d{3})", bytes(reply))
    assert match, bytes(reply[:200])
    return int(match[1]), sent, bytes(reply)


async def test_declared_oversized_body_is_refused_before_reading(live_url: str) -> None:
    with trio.fail_after(10):
        status, sent, _ = await _raw_exchange(
            live_url, _request_head("Content-Length: 1000000000\r\n"), [PART_HEAD]
        )
    # Only the part header was ever sent: the answer came from the header alone.
    assert status == 413
    assert sent == len(PART_HEAD)


async def test_chunked_oversized_body_is_cut_off_while_arriving(live_url: str) -> None:
    offered_mb = 48
    with trio.fail_after(30):
        status, sent, _ = await _raw_exchange(
            live_url, _request_head("Transfer-Encoding: chunked\r\n"), _chunked(offered_mb)
        )
    assert status == 413
    # The server stopped reading soon after the cap; socket buffers hold a few MB more.
    assert sent < 24 * 1024 * 1024 < offered_mb * 1024 * 1024


# --- off the trio thread --------------------------------------------------------

async def test_conversions_wait_on_the_app_limiter_while_the_app_keeps_serving(
    app: StinercutApp, client, nursery: trio.Nursery  # type: ignore[no-untyped-def]
) -> None:
    limiter = app.font_limiter
    holders = [object() for _ in range(int(limiter.total_tokens))]
    for holder in holders:
        limiter.acquire_on_behalf_of_nowait(holder)
    results: list[int] = []

    async def convert() -> None:
        status, _ = await _post_font(client, build_truetype())
        results.append(status)

    nursery.start_soon(convert)
    with trio.fail_after(10):
        while limiter.statistics().tasks_waiting == 0:  # noqa: ASYNC110 (polling a limiter)
            await trio.sleep(0.01)
        # The conversion is queued on the limiter; the app still answers others.
        response = await client.get("/")
        assert response.status_code == 200
        assert results == []
        for holder in holders:
            limiter.release_on_behalf_of(holder)
        while not results:  # noqa: ASYNC110 (polling results)
            await trio.sleep(0.01)
    assert results == [200]


# --- budgets: time (worker killed), output, nesting depth ----------------------------

class _AnyGlyph:
    """A glyph set with every name (TTGlyphPen checks that components exist)."""

    def __contains__(self, name: object) -> bool:
        return True


def nested_composites(levels: int, fan_out: int, *, leaf: Draw = _square) -> bytes:
    """``A`` = ``fan_out`` × level ``levels - 1`` = ... = ``fan_out**levels`` leaves.

    A few hundred bytes that expand exponentially when drawn: with an outline leaf
    the path data explodes (the output budget), with an empty leaf only the work
    does (the time budget). The shape of the 14 KB font of the issue.
    """
    glyphs: dict[str, object] = {"L0": _pen_glyph(leaf)}
    for level in range(1, levels + 1):
        pen = TTGlyphPen(_AnyGlyph())
        for i in range(fan_out):
            pen.addComponent(f"L{level - 1}", (1, 0, 0, 1, (i % 5) * 10, 0))
        glyphs[f"L{level}"] = pen.glyph()
    builder = FontBuilder(1000, isTTF=True)
    order = [".notdef", *glyphs]
    builder.setupGlyphOrder(order)
    builder.setupCharacterMap({ord("A"): f"L{levels}", ord("b"): "L0"})
    builder.setupGlyf({".notdef": _pen_glyph(_square), **glyphs})
    builder.setupHorizontalMetrics({name: (600, 0) for name in order})
    builder.setupHorizontalHeader(ascent=800, descent=-200)
    builder.setupNameTable({"familyName": "Nested", "styleName": "Regular"})
    builder.setupOS2(sTypoAscender=750, usWinAscent=800)
    builder.setupPost()
    # Recalculating bounds and maxp would itself expand every composite (and overflow).
    builder.font.recalcBBoxes = False
    out = io.BytesIO()
    builder.font.save(out)
    return out.getvalue()


def test_output_budget_is_counted_while_drawing() -> None:
    data = nested_composites(5, 10)  # 100,000 squares: ~1.7 MB of path data
    assert len(data) < 2000
    with pytest.raises(FontError) as caught:
        convert_font(data, "x", max_output_bytes=100_000)
    assert (caught.value.code, caught.value.status) == ("font_too_complex", 422)
    assert caught.value.details == {"limit": "output", "max_bytes": 100_000}
    assert "100000 bytes" in caught.value.message
    # Within the budget the same font converts (the count is not an estimate gone wrong).
    result = convert_font(nested_composites(2, 3), "x", max_output_bytes=100_000)
    assert result.glyph_count == 2


def test_output_budget_counts_exact_lines() -> None:
    result = convert_font(build_truetype(), "x")
    size = len(result.svg_paths) + 1  # every line plus its newline
    assert convert_font(build_truetype(), "x", max_output_bytes=size) == result
    with pytest.raises(FontError) as caught:
        convert_font(build_truetype(), "x", max_output_bytes=size - 1)
    assert caught.value.code == "font_too_complex"


def test_composites_nested_too_deep_are_refused_before_drawing() -> None:
    with pytest.raises(FontError) as caught:
        convert_font(nested_composites(fonts.MAX_COMPONENT_DEPTH + 1, 1), "x")
    assert (caught.value.code, caught.value.status) == ("font_too_complex", 422)
    assert caught.value.details["limit"] == "component_depth"
    assert convert_font(nested_composites(fonts.MAX_COMPONENT_DEPTH, 1), "x").glyph_count == 2


def test_worker_count() -> None:
    assert fonts.worker_count(3) == 3
    auto = fonts.worker_count(0)
    assert 1 <= auto <= fonts.MAX_AUTO_WORKERS and auto <= (os.cpu_count() or 1)


def _font_workers() -> set[int]:
    """Live trio-parallel worker processes below this test process."""
    found = set()
    for pid in descendants(os.getpid()):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z" and (b"trio_parallel" in cmdline or b"spawn_main" in cmdline):
            found.add(pid)
    return found


async def test_time_budget_kills_the_worker_while_another_conversion_succeeds(
    settings: Settings,
) -> None:
    # A small budget through the settings (FONT_TIMEOUT_SECONDS), two workers.
    app = create_app(attrs.evolve(settings, font_timeout_seconds=3.0, font_workers=2))
    slow_font = nested_composites(8, 8, leaf=_nothing)  # 16.7 M empty components
    answers: dict[str, tuple[int, dict]] = {}
    seen_workers: set[int] = set()
    async with running_server(app):
        client = app.test_client()

        async def post(name: str, data: bytes) -> None:
            response = await client.post(
                "/api/fonts/convert",
                files={"file": FileStorage(io.BytesIO(data), filename=f"{name}.ttf")},
            )
            answers[name] = (response.status_code, await response.get_json())

        with trio.fail_after(120):  # a hang guard, not a speed assertion
            async with trio.open_nursery() as nursery:
                nursery.start_soon(post, "slow", slow_font)
                nursery.start_soon(post, "normal", build_truetype())
                while "slow" not in answers:
                    seen_workers |= await trio.to_thread.run_sync(_font_workers)
                    await trio.sleep(0.1)
            # The worker that ran the slow font was killed (not left running).
            while seen_workers <= await trio.to_thread.run_sync(_font_workers):  # noqa: ASYNC110 (processes)
                await trio.sleep(0.1)

        status, body = answers["slow"]
        assert status == 422, body
        assert body["error"]["code"] == "font_too_complex"
        assert body["error"]["details"] == {"limit": "time", "seconds": 3.0}
        assert "time budget of 3 s" in body["detail"]
        status, body = answers["normal"]
        assert status == 200, body
        assert body["glyph_count"] == 11

        # A killed worker is replaced: the next conversion works.
        response = await client.post(
            "/api/fonts/convert",
            files={"file": FileStorage(io.BytesIO(build_truetype()), filename="again.ttf")},
        )
        assert response.status_code == 200


async def test_output_budget_through_the_route(settings: Settings) -> None:
    app = create_app(attrs.evolve(settings, font_max_output_bytes=50_000))
    async with running_server(app):
        response = await app.test_client().post(
            "/api/fonts/convert",
            files={"file": FileStorage(io.BytesIO(nested_composites(5, 10)), filename="n.ttf")},
        )
        body = await response.get_json()
        assert response.status_code == 422, body
        assert body["error"]["code"] == "font_too_complex"
        assert body["error"]["details"] == {"limit": "output", "max_bytes": 50_000}
        assert "output budget of 50000 bytes" in body["detail"]
