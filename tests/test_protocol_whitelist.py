"""Playlists in user media may name local files only: nothing is ever fetched.

A real HTTP server on 127.0.0.1 counts every connection. HLS playlists and concat
lists that point at it are uploaded as clips, registered as assets, and handed to
ffmpeg directly: each is refused and the server sees no connection. A positive
control proves the playlists *would* fetch when a caller allowed http explicitly,
so "no connection" means the whitelist stopped it, not a broken playlist.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from functools import partial
from pathlib import Path

import pytest
import trio

from stinercut_svc.context import StinercutApp
from stinercut_svc.media.runner import (
    PROTOCOL_WHITELIST,
    ToolError,
    restrict_inputs,
    run_capture,
    run_ffmpeg,
)
from tests.test_uploads import multipart


class CountingServer:
    """Accepts TCP connections, answers 404, counts them."""

    def __init__(self) -> None:
        self.connections = 0
        self.port = 0

    async def handle(self, stream: trio.SocketStream) -> None:
        self.connections += 1
        with trio.move_on_after(2):
            await stream.receive_some(65536)
            await stream.send_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
        await stream.aclose()


@pytest.fixture
async def http_server(nursery: trio.Nursery) -> AsyncIterator[CountingServer]:
    server = CountingServer()
    listeners = await nursery.start(partial(trio.serve_tcp, server.handle, 0, host="127.0.0.1"))
    server.port = listeners[0].socket.getsockname()[1]
    yield server


def hls_playlist(port: int) -> bytes:
    return (
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:4\n#EXT-X-MEDIA-SEQUENCE:0\n"
        f"#EXTINF:4.0,\nhttp://127.0.0.1:{port}/segment0.ts\n#EXT-X-ENDLIST\n"
    ).encode()


def concat_list(port: int) -> bytes:
    return f"ffconcat version 1.0\nfile 'http://127.0.0.1:{port}/clip.mp4'\n".encode()


PLAYLISTS = {"list.m3u8": hls_playlist, "list.ffconcat": concat_list}


def test_restrict_inputs_puts_the_whitelist_before_every_input() -> None:
    args = ["-ss", "1", "-i", "a.mp4", "-stream_loop", "-1", "-i", "b.m4a", "-map", "0", "out.mp4"]
    assert restrict_inputs(args) == [
        "-ss", "1", "-protocol_whitelist", PROTOCOL_WHITELIST, "-i", "a.mp4",
        "-stream_loop", "-1", "-protocol_whitelist", PROTOCOL_WHITELIST, "-i", "b.m4a",
        "-map", "0", "out.mp4",
    ]  # fmt: skip
    explicit = ["-protocol_whitelist", "file,pipe", "-i", "x", "-i", "y"]
    assert restrict_inputs(explicit) == [
        "-protocol_whitelist", "file,pipe", "-i", "x",
        "-protocol_whitelist", PROTOCOL_WHITELIST, "-i", "y",
    ]  # fmt: skip


@pytest.mark.parametrize("name", sorted(PLAYLISTS))
async def test_uploaded_playlists_are_refused_and_fetch_nothing(
    client, app: StinercutApp, http_server: CountingServer, name: str  # type: ignore[no-untyped-def]
) -> None:
    project = (await (await client.post("/api/projects", json={"name": "p"})).get_json())["uuid"]
    body, ctype = multipart(file=(name, PLAYLISTS[name](http_server.port)))
    response = await client.post(
        f"/api/projects/{project}/videos", data=body, headers={"Content-Type": ctype}
    )
    assert response.status_code == 422, await response.get_data(as_text=True)
    assert (await response.get_json())["error"]["code"] == "invalid_media"

    # The same file already in storage, registered by path as a clip and as an asset.
    stored = app.storage.uploads / "incoming" / name
    stored.parent.mkdir(parents=True, exist_ok=True)
    stored.write_bytes(PLAYLISTS[name](http_server.port))
    relative = app.storage.relative(stored)
    response = await client.post(f"/api/projects/{project}/videos", json={"path": relative})
    assert response.status_code == 422, await response.get_data(as_text=True)
    response = await client.post("/api/assets", json={"type": "intro", "path": relative})
    assert response.status_code == 422, await response.get_data(as_text=True)
    await trio.sleep(0.2)
    assert http_server.connections == 0


@pytest.mark.parametrize("name", sorted(PLAYLISTS))
async def test_render_ffmpeg_never_fetches_from_a_playlist(
    tmp_path: Path, http_server: CountingServer, name: str
) -> None:
    playlist = tmp_path / name
    playlist.write_bytes(PLAYLISTS[name](http_server.port))
    extra = ["-safe", "0"] if name.endswith(".ffconcat") else []
    args = [*extra, "-i", str(playlist), "-f", "null", "-"]
    with pytest.raises(ToolError):
        await run_ffmpeg(args)
    thumb = await run_capture(
        ["ffmpeg", "-nostdin", "-i", str(playlist), "-frames:v", "1", "-f", "null", "-"],
        timeout=20,
    )
    assert thumb.returncode != 0
    await trio.sleep(0.2)
    assert http_server.connections == 0

    # Positive control: the same playlist with http allowed on purpose does connect.
    allowed = [*extra, "-protocol_whitelist", "file,http,tcp", "-i", str(playlist)]
    with pytest.raises(ToolError):  # the server answers 404
        await run_ffmpeg([*allowed, "-f", "null", "-"])
    assert http_server.connections >= 1
