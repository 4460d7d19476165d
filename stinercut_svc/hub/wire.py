"""WebSocket wire format on the server side: the opening handshake and outbound frames.

Why not trio-websocket (the library the design card names) for the server side:
it frames every message per connection (``send_message`` → wsproto → one
``send_all`` per message per client), so a message to 50 clients is framed 50
times and costs 50 system calls. The hub instead frames each message **once**
(:func:`text_frame`) and queues the same ``bytes`` for every recipient; each
client's writer sends its whole backlog in one ``send_all``. Server frames are
never masked and the hub never fragments or compresses (no permessage-deflate),
which is what makes one pre-built frame valid for every connection.

Inbound frames (masked, possibly fragmented, with control frames in between)
are parsed by wsproto, the protocol engine trio-websocket itself is built on
(see ``connection.py``); test and CLI clients keep using trio-websocket.
"""

from __future__ import annotations

import json
import struct
from typing import Any

import attrs
from wsproto.utilities import generate_accept_token

#: Largest request head accepted before the connection is answered 431.
MAX_HEAD_BYTES = 16 * 1024

_OP_TEXT = 0x1
_OP_CLOSE = 0x8
_OP_PING = 0x9
_FIN = 0x80


def _header(opcode: int, length: int) -> bytes:
    if length < 126:
        return bytes((_FIN | opcode, length))
    if length < 65536:
        return struct.pack("!BBH", _FIN | opcode, 126, length)
    return struct.pack("!BBQ", _FIN | opcode, 127, length)


def text_frame(payload: bytes) -> bytes:
    """One unmasked, unfragmented text frame (``payload`` is UTF-8, here ASCII JSON)."""
    return _header(_OP_TEXT, len(payload)) + payload


def close_frame(code: int, reason: str) -> bytes:
    data = struct.pack("!H", code) + reason.encode("utf-8")[:123]
    return _header(_OP_CLOSE, len(data)) + data


#: The keepalive probe: a protocol ping with an empty payload (browsers and
#: websocket-client answer it on their own, without application code).
PING_FRAME = _header(_OP_PING, 0)


@attrs.frozen
class Head:
    """The parts of an HTTP request head the one-port server needs to decide."""

    method: str
    target: str
    headers: dict[str, str]  # lower-case names; repeated headers joined with ", "

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]

    @property
    def query(self) -> str:
        return self.target.split("?", 1)[1] if "?" in self.target else ""

    def is_websocket_upgrade(self, path: str) -> bool:
        return (
            self.method == "GET"
            and self.path == path
            and "websocket" in self.headers.get("upgrade", "").lower()
        )


def parse_head(head: bytes) -> Head | None:
    """Parse an HTTP/1.x request head (up to and including the blank line).

    ``None`` when it is not a well-formed HTTP/1.1 request line: the bytes go to
    Hypercorn, which answers whatever it is (an HTTP/2 preface included).
    """
    try:
        text = head.decode("latin-1")
        lines = text.split("\r\n")
        method, target, version = lines[0].split(" ")
    except ValueError:
        return None
    if not version.startswith("HTTP/1."):
        return None
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep:
            return None
        key = name.strip().lower()
        value = value.strip()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    return Head(method, target, headers)


def accept_response(key: str) -> bytes:
    """The ``101 Switching Protocols`` answer to a valid upgrade request."""
    return (
        "HTTP/1.1 101 Switching Protocols\r\n"
        "Upgrade: websocket\r\n"
        "Connection: Upgrade\r\n"
        f"Sec-WebSocket-Accept: {generate_accept_token(key.encode('ascii')).decode('ascii')}\r\n"
        "\r\n"
    ).encode("ascii")


_REASONS = {
    400: "Bad Request",
    426: "Upgrade Required",
    431: "Request Header Fields Too Large",
    503: "Service Unavailable",
}


def http_error(
    status: int,
    code: str,
    message: str,
    *,
    details: dict[str, Any] | None = None,
    retry_after: int | None = None,
    extra_headers: tuple[tuple[str, str], ...] = (),
) -> bytes:
    """An HTTP error answer in the service's one error format, then the connection closes."""
    body = json.dumps(
        {"error": {"code": code, "message": message, "details": details}, "detail": message}
    ).encode()
    lines = [
        f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
        "Connection: close",
    ]
    if retry_after is not None:
        lines.append(f"Retry-After: {retry_after}")
    lines.extend(f"{name}: {value}" for name, value in extra_headers)
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
