"""Hostile input that used to answer 500 gets a clear 4xx (or 507) instead (#11 item 4).

* JSON nested 100,000 deep → 400 ``invalid_json`` (json's decoder hits the
  recursion limit; that was an unhandled RecursionError);
* a path component over 255 bytes → 400: in a JSON ``path`` (``unsafe_path``;
  the kernel's ENAMETOOLONG escaped as a 500), as an upload's file name
  (``filename_too_long``), and as a multipart field name or value (422 naming it);
* a font whose composite glyphs form a cycle → 400 ``composite_cycle`` naming the glyphs;
* the disk filling up during an upload → 507 ``insufficient_storage``, the partial
  file removed. The shared storage is a real 8 MiB tmpfs mounted for the test.
"""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest
import trio
from fontTools.fontBuilder import FontBuilder
from fontTools.pens.ttGlyphPen import TTGlyphPen
from fontTools.ttLib import TTFont
from quart.datastructures import FileStorage

from stinercut_svc.app import create_app
from stinercut_svc.config import Settings
from stinercut_svc.context import StinercutApp
from tests.support.server import running_server

MIB = 1024 * 1024
DEEP = 100_000


async def _error(response) -> tuple[int, str, str]:  # type: ignore[no-untyped-def]
    body = await response.get_json()
    assert body["detail"] == body["error"]["message"], body
    return response.status_code, body["error"]["code"], body["detail"]


async def _project(client) -> str:  # type: ignore[no-untyped-def]
    return (await (await client.post("/api/projects", json={"name": "hostile"})).get_json())[
        "uuid"
    ]


# --- deep JSON -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "route", "body"),
    [
        ("post", "/api/projects", "[" * DEEP + "]" * DEEP),
        ("post", "/api/projects", '{"name": "x", "settings": ' + '{"a": ' * DEEP + "1" + "}" * DEEP + "}"),
        ("put", "/api/settings/render.output_crf", '{"value": ' + "[" * DEEP + "]" * DEEP + "}"),
    ],
)
async def test_json_nested_100000_deep_is_400(client, method: str, route: str, body: str) -> None:  # type: ignore[no-untyped-def]
    response = await getattr(client, method)(
        route, data=body, headers={"Content-Type": "application/json"}
    )
    status, code, message = await _error(response)
    assert (status, code) == (400, "invalid_json")
    assert "nested too deeply" in message


# --- over-long names ---------------------------------------------------------------


async def test_json_path_with_a_component_over_255_bytes_is_400(client) -> None:  # type: ignore[no-untyped-def]
    project = await _project(client)
    for path in (
        "uploads/" + "a" * 256 + ".mp4",
        "uploads/" + "ü" * 128 + "/clip.mp4",  # 256 bytes in UTF-8, 128 characters
    ):
        status, code, message = await _error(
            await client.post(f"/api/projects/{project}/videos", json={"path": path})
        )
        assert (status, code) == (400, "unsafe_path"), message
        assert "255 bytes" in message
        status, code, _ = await _error(
            await client.post("/api/assets", json={"type": "watermark", "path": path})
        )
        assert (status, code) == (400, "unsafe_path")


async def test_upload_file_name_over_255_bytes_is_400(client, app: StinercutApp) -> None:  # type: ignore[no-untyped-def]
    project = await _project(client)
    response = await client.post(
        f"/api/projects/{project}/videos",
        files={"file": FileStorage(io.BytesIO(b"x" * 10), filename="c" * 300 + ".mp4")},
    )
    status, code, message = await _error(response)
    assert (status, code) == (400, "filename_too_long")
    assert "255 bytes" in message
    assert list(app.storage.root.rglob(".upload-*")) == []


async def test_multipart_field_over_255_bytes_is_named(client) -> None:  # type: ignore[no-untyped-def]
    png = FileStorage(io.BytesIO(b"x" * 10), filename="w.png")
    # A field value past the column's 255 characters: 422 naming the field.
    response = await client.post(
        "/api/assets", form={"type": "watermark", "name": "n" * 300}, files={"file": png}
    )
    status, code, message = await _error(response)
    assert (status, code) == (422, "validation_error") and "name" in message
    # A field *name* that long: an unknown field, named (not a 500).
    png = FileStorage(io.BytesIO(b"x" * 10), filename="w.png")
    response = await client.post(
        "/api/assets", form={"type": "watermark", "f" * 300: "n"}, files={"file": png}
    )
    status, code, message = await _error(response)
    assert (status, code) == (422, "unprocessable") and "unknown form field" in message


# --- a font whose composite glyphs form a cycle ------------------------------------


class _AnyGlyph:
    """A glyph set that has every name (TTGlyphPen checks components exist)."""

    def __contains__(self, name: object) -> bool:
        return True


def _composite(*children: str) -> object:
    pen = TTGlyphPen(_AnyGlyph())
    for child in children:
        pen.addComponent(child, (1, 0, 0, 1, 0, 0))
    return pen.glyph()


def _square() -> object:
    pen = TTGlyphPen(None)
    pen.moveTo((100, 0))
    pen.lineTo((100, 700))
    pen.lineTo((500, 700))
    pen.lineTo((500, 0))
    pen.closePath()
    return pen.glyph()


def cyclic_font() -> bytes:
    """``A`` → ``B`` → ``C`` → ``A``: built acyclic, then ``C``'s component re-pointed."""
    glyphs = {"A": _composite("B"), "B": _composite("C"), "C": _composite("D"), "D": _square()}
    builder = FontBuilder(1000, isTTF=True)
    order = [".notdef", *glyphs]
    builder.setupGlyphOrder(order)
    builder.setupCharacterMap({ord("A"): "A", ord("B"): "B"})
    builder.setupGlyf({".notdef": _square(), **glyphs})
    builder.setupHorizontalMetrics({name: (600, 0) for name in order})
    builder.setupHorizontalHeader(ascent=800, descent=-200)
    builder.setupNameTable({"familyName": "Cycle", "styleName": "Regular"})
    builder.setupOS2(sTypoAscender=750, usWinAscent=800)
    builder.setupPost()
    first = io.BytesIO()
    builder.save(first)
    # fontTools itself refuses to *write* a cycle with bounding boxes recalculated.
    font = TTFont(io.BytesIO(first.getvalue()), recalcBBoxes=False)
    font["glyf"]["C"].components[0].glyphName = "A"
    out = io.BytesIO()
    font.save(out)
    return out.getvalue()


async def test_font_with_a_composite_cycle_is_400_naming_it(client) -> None:  # type: ignore[no-untyped-def]
    data = cyclic_font()
    response = await client.post(
        "/api/fonts/convert", files={"file": FileStorage(io.BytesIO(data), filename="cycle.ttf")}
    )
    status, code, message = await _error(response)
    assert (status, code) == (400, "composite_cycle"), message
    assert "'A' -> 'B' -> 'C' -> 'A'" in message
    body = await response.get_json()
    assert body["error"]["details"]["glyphs"] == ["A", "B", "C", "A"]


# --- disk full during an upload ------------------------------------------------------


@attrs.frozen
class Tmpfs:
    path: Path
    size_bytes: int


@pytest.fixture
def small_filesystem(tmp_path: Path) -> Iterator[Tmpfs]:
    """A real 8 MiB tmpfs (we run as root in CI); skipped, saying why, where mounting is refused."""
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mount)],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield Tmpfs(mount, 8 * MIB)
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


async def _raw_post(url: str, path: str, content_type: str, body: bytes) -> tuple[int, bytes]:
    """POST over a raw socket, sending while reading: the server answers mid-body."""
    host, port = url.removeprefix("http://").split(":")
    answer = bytearray()
    async with await trio.open_tcp_stream(host, int(port)) as stream:

        async def send() -> None:
            try:
                await stream.send_all(
                    (
                        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: {content_type}\r\n"
                        f"Content-Length: {len(body)}\r\n\r\n"
                    ).encode()
                )
                for start in range(0, len(body), MIB):
                    await stream.send_all(body[start : start + MIB])
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                pass  # answered and closed before the body was complete: expected

        async with trio.open_nursery() as nursery:
            nursery.start_soon(send)
            with trio.fail_after(30):
                while True:
                    head, sep, rest = bytes(answer).partition(b"\r\n\r\n")
                    length = re.search(rb"(?i)content-length: *(\d+)", head)
                    if sep and length and len(rest) >= int(length[1]):
                        break
                    chunk = await stream.receive_some(65536)
                    if not chunk:
                        break
                    answer += chunk
            nursery.cancel_scope.cancel()
    head, _, rest = bytes(answer).partition(b"\r\n\r\n")
    match = re.match(rb"HTTP/1\.1 (\d{3})", head)
    assert match, head[:200]
    return int(match[1]), rest


async def test_disk_full_during_upload_is_507_and_leaves_nothing(
    settings: Settings, small_filesystem: Tmpfs
) -> None:
    settings = attrs.evolve(settings, shared_video_path=small_filesystem.path / "shared")
    app = create_app(settings)
    async with running_server(app) as url:
        client = app.test_client()
        project = await _project(client)
        folder = app.storage.uploads / project
        boundary = "diskfull"
        payload = os.urandom(12 * MIB)  # more than the whole filesystem
        body = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.mp4"\r\n'
            "Content-Type: video/mp4\r\n\r\n"
        ).encode() + payload + f"\r\n--{boundary}--\r\n".encode()
        status, raw = await _raw_post(
            url,
            f"/api/projects/{project}/videos",
            f"multipart/form-data; boundary={boundary}",
            body,
        )
        assert status == 507, raw[:300]
        error = json.loads(raw)
        assert error["error"]["code"] == "insufficient_storage"
        assert error["detail"] == error["error"]["message"] and "storage is full" in error["detail"]
        assert str(small_filesystem.path) not in error["detail"]
        # The partial file is gone (cleanup is shielded; give it a moment).
        with trio.fail_after(10):
            while list(app.storage.root.rglob(".upload-*")):  # noqa: ASYNC110 (a file, no event)
                await trio.sleep(0.05)
        assert not folder.exists() or list(folder.iterdir()) == []
        # The space is back: a small upload into the same folder works again.
        response = await client.post(
            f"/api/projects/{project}/videos",
            files={"file": FileStorage(io.BytesIO(b"x" * 1000), filename="small.mp4")},
        )
        # Not a video, but past the storage step: 422, not 507.
        assert response.status_code == 422, await response.get_json()
