"""Serving one hub connection: the reader/writer pair, on a raw socket or through Quart.

The hub's own path (:func:`serve_websocket`) takes a trio stream whose HTTP
upgrade request the one-port server (``server.py``) has already read. It
answers the handshake itself, parses inbound frames with wsproto (the engine
trio-websocket is built on; used here directly because trio-websocket cannot
send one pre-built frame to many connections, see ``wire.py``), and writes
frames built once per message, a whole backlog per ``send_all``.

:func:`serve_transport` joins a Quart ``websocket`` to the same hub: that path
serves an upgrade arriving later on a kept-alive HTTP connection (only a
connection's first request is looked at by the one-port server), HTTP/2, and the
``hypercorn`` CLI with several workers. It is slower (one framework send per
message per client) and cannot see protocol pongs, so such clients are kept
alive by Hypercorn's protocol pings and checked by TCP keepalive only.
"""

from __future__ import annotations

import hmac
import logging
import socket
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol
from urllib.parse import parse_qs

import trio
from wsproto.connection import Connection, ConnectionState, ConnectionType
from wsproto.events import BytesMessage, CloseConnection, Ping, TextMessage
from wsproto.utilities import LocalProtocolError

from ..auth.hub import hub_role, offered_token, refusal, split_subprotocols
from ..auth.roles import Role
from ..request_id import REQUEST_ID_HEADER, request_id_from
from .core import CLOSE_GRACE_S, Client, Hub, Refused
from .protocol import CLIENT_TYPES, CLOSE_POLICY, DETECTOR, ERROR, FRONTEND, frame_bytes
from .wire import Head, accept_response, http_error

if TYPE_CHECKING:
    from ..auth.access import AccessControl

log = logging.getLogger("stinercut_svc.hub")

RECEIVE_BYTES = 65536


class Transport(Protocol):
    """The part of a WebSocket the Quart path uses (Quart's ``websocket`` object fits)."""

    async def receive(self) -> str | bytes: ...

    async def send(self, data: str) -> None: ...

    async def close(self, code: int, reason: str = "") -> None: ...


async def check_client(
    client_type: str,
    token: str | None,
    expected_token: str | None,
    *,
    access: AccessControl | None = None,
    address: str | None = None,
    access_token: str | None = None,
) -> tuple[str | None, Role]:
    """``(why the connection is refused with 1008, or None; the role it joins with)``.

    ``token``/``expected_token``: the detector's ``DETECTOR_WS_TOKEN``, as before.
    ``access``/``access_token``: API-token access control (``auth/hub.py``); without
    it, or with ``AUTH_REQUIRED`` off, every client joins as ``admin``.
    """
    if client_type not in CLIENT_TYPES:
        return f"unknown client_type {client_type[:40]!r}: use {' or '.join(CLIENT_TYPES)}", Role.ADMIN
    if client_type == DETECTOR and expected_token is not None:
        given = token or ""
        if not hmac.compare_digest(given.encode(), expected_token.encode()):
            return "detector token missing or wrong (query token= or X-API-Key header)", Role.ADMIN
    if access is None or not access.required:
        return None, Role.ADMIN
    role, problem = await hub_role(
        access, address, client_type, access_token,
        detector_token_matched=client_type == DETECTOR and expected_token is not None,
    )
    return problem, role or Role.VIEWER


def deliver(hub: Hub, client: Client, role: Role, message: str | bytes) -> None:
    """Hand a client's message to the hub, unless its role may not send it
    (then the client alone gets ``hub:error``)."""
    problem = refusal(role, message)
    if problem is not None:
        hub.send_to(client.id, ERROR, problem)
        return
    hub.on_message(client, message)


# -- the hub's own path ------------------------------------------------------------


async def serve_websocket(
    hub: Hub,
    stream: trio.SocketStream,
    head: Head,
    rest: bytes,
    *,
    detector_token: str | None,
    access: AccessControl | None = None,
) -> None:
    """Answer the upgrade in ``head`` and serve the connection until it closes.

    ``rest`` holds bytes that arrived after the request head (the client may
    send its first frames without waiting for our 101).
    """
    peer = _peer(stream)
    address = peer.rsplit(":", 1)[0]
    # Tagged like every HTTP answer of the service (the handshake never reaches Quart).
    tag = (REQUEST_ID_HEADER, request_id_from(head.headers.get("x-request-id")))
    key = head.headers.get("sec-websocket-key", "")
    version = head.headers.get("sec-websocket-version", "")
    if version != "13":
        await _answer(stream, http_error(
            426, "unsupported_websocket_version", "only WebSocket version 13 is supported",
            extra_headers=(("Sec-WebSocket-Version", "13"), tag)))
        return
    if not key or "upgrade" not in head.headers.get("connection", "").lower():
        await _answer(stream, http_error(
            400, "bad_websocket_handshake",
            "a WebSocket upgrade needs 'Connection: Upgrade' and 'Sec-WebSocket-Key'",
            extra_headers=(tag,)))
        return
    try:
        hub.admit(address)
    except Refused as refused:
        log.warning("ws refused from %s: %s", peer, refused.message)
        await _answer(stream, http_error(
            503, refused.code, refused.message, retry_after=refused.retry_after,
            extra_headers=(tag,)))
        return
    query = parse_qs(head.query)
    client_type = (query.get("client_type") or [""])[0] or FRONTEND
    token = (query.get("token") or [""])[0] or head.headers.get("x-api-key")
    access_token, subprotocol = offered_token(
        query, split_subprotocols(head.headers.get("sec-websocket-protocol"))
    )
    ws = Connection(ConnectionType.SERVER, trailing_data=rest)
    with trio.move_on_after(CLOSE_GRACE_S):
        try:
            await stream.send_all(_accept(key, subprotocol, tag))
        except trio.BrokenResourceError:
            await _abort(stream)
            return
    # Refusals happen after the handshake, as 1008 and a reason: a browser's
    # WebSocket API shows a close code but never an HTTP status.
    problem, role = await check_client(
        client_type, token, detector_token,
        access=access, address=address, access_token=access_token,
    )
    if problem is not None:
        await _close_refused(stream, ws, problem)
        return
    client = hub.register(client_type, peer, address=address, protocol_pings=True)
    client.direct_fd = stream.socket.fileno()
    try:
        async with trio.open_nursery() as nursery:
            reader_done = trio.Event()
            nursery.start_soon(_read_loop, hub, client, role, stream, ws, reader_done)
            clean = await _write_loop(client, stream, ws)
            if clean:
                with trio.move_on_after(CLOSE_GRACE_S):
                    await reader_done.wait()  # the peer's close answer, or its EOF
            nursery.cancel_scope.cancel()
    finally:
        client.direct_fd = None  # before the descriptor is closed (and maybe reused)
        with trio.CancelScope(shield=True):
            if ws.state is not ConnectionState.CLOSED:
                await _abort(stream)  # no close handshake: RST, the fd is free at once
            else:
                await stream.aclose()
        hub.release(client)


class _Inbound:
    """Reassembles a client's messages from wsproto events and hands them to the hub."""

    def __init__(self, hub: Hub, client: Client, role: Role, ws: Connection) -> None:
        self.hub = hub
        self.client = client
        self.role = role
        self.ws = ws
        self.parts: list[str | bytes] = []
        self.size = 0

    def handle(self) -> bool:
        """Process the pending events; ``False`` once the peer's close arrived."""
        hub, client = self.hub, self.client
        for event in self.ws.events():
            if isinstance(event, TextMessage | BytesMessage):
                if client.close_request is not None:
                    continue
                chunk: str | bytes = event.data if isinstance(event.data, str) else bytes(event.data)
                self.size += frame_bytes(chunk)
                if self.size > hub.limits.max_message_bytes:
                    hub.too_big(client, str(self.size) if event.message_finished else f"{self.size}+")
                    self.parts.clear()
                    continue
                self.parts.append(chunk)
                if event.message_finished:
                    parts = self.parts
                    if len(parts) == 1:
                        message = parts[0]
                    elif isinstance(parts[0], str):
                        message = "".join(parts)  # type: ignore[arg-type]
                    else:
                        message = b"".join(parts)  # type: ignore[arg-type]
                    self.parts = []
                    self.size = 0
                    deliver(hub, client, self.role, message)
            elif isinstance(event, Ping):
                if client.close_request is None:
                    hub.send_control(client, self.ws.send(event.response()))
            elif isinstance(event, CloseConnection):
                if client.close_request is None:
                    # The peer closes (or broke the protocol: wsproto reports that as
                    # a close with 1002/1007): answer with the same code.
                    code = event.code if event.code not in (1005, 1006) else 1000
                    hub.kick(client, code, event.reason or "closed by the client", peer=True)
                return False
        return True


async def _read_loop(
    hub: Hub,
    client: Client,
    role: Role,
    stream: trio.SocketStream,
    ws: Connection,
    done: trio.Event,
) -> None:
    inbound = _Inbound(hub, client, role, ws)
    try:
        # wsproto may already hold frames that came with the request head.
        data = b""
        while True:
            if data:
                client.last_seen = trio.current_time()
                client.ping_sent_at = None
                ws.receive_data(data)
            try:
                open_ = inbound.handle()
            finally:
                hub.flush()  # what this batch of frames routed: one write per client
            if not open_ or ws.state is ConnectionState.CLOSED:
                return
            try:
                data = await stream.receive_some(RECEIVE_BYTES)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                data = b""
            if not data:
                hub.kick(client, None, "connection lost", peer=True)
                return
    except LocalProtocolError:
        return
    finally:
        done.set()


async def _write_loop(client: Client, stream: trio.SocketStream, ws: Connection) -> bool:
    """Send until a close is requested; then the close frame. ``True`` when the
    close frame went out (so the peer's answer is worth waiting for)."""
    while (batch := await client.take()) is not None:
        data = batch[0].wire if len(batch) == 1 else b"".join(item.wire for item in batch)
        client.sending_since = trio.current_time()
        with trio.CancelScope() as scope:
            client.send_scope = scope
            if client.close_request is not None:
                scope.deadline = trio.current_time() + CLOSE_GRACE_S
            try:
                await stream.send_all(data)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                return False
        client.send_scope = None
        client.sending_since = None
        if scope.cancelled_caught:
            return False  # a frame is cut in half: only an abort is left
    request = client.close_request
    assert request is not None
    if request.code is None or ws.state not in (ConnectionState.OPEN, ConnectionState.REMOTE_CLOSING):
        return False
    frame = ws.send(CloseConnection(request.code, request.reason))
    with trio.move_on_after(CLOSE_GRACE_S) as scope:
        try:
            await stream.send_all(frame)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return False
    return not scope.cancelled_caught and ws.state is not ConnectionState.CLOSED


async def _close_refused(stream: trio.SocketStream, ws: Connection, reason: str) -> None:
    try:
        with trio.move_on_after(CLOSE_GRACE_S):
            await stream.send_all(ws.send(CloseConnection(CLOSE_POLICY, reason)))
            # Wait for the peer's close answer (or EOF), then close.
            while ws.state is not ConnectionState.CLOSED:
                data = await stream.receive_some(RECEIVE_BYTES)
                if not data:
                    break
                ws.receive_data(data)
                for _ in ws.events():
                    pass
    except (trio.BrokenResourceError, trio.ClosedResourceError, LocalProtocolError):
        pass
    finally:
        with trio.CancelScope(shield=True):
            if ws.state is ConnectionState.CLOSED:
                await stream.aclose()
            else:
                await _abort(stream)


def _accept(key: str, subprotocol: str | None, *headers: tuple[str, str]) -> bytes:
    """The 101 answer with ``headers``, selecting ``subprotocol`` (a browser fails a
    connection that offered subprotocols when the answer selects none)."""
    response = accept_response(key)
    assert response.endswith(b"\r\n\r\n")
    extra = [*headers, *((("Sec-WebSocket-Protocol", subprotocol),) if subprotocol else ())]
    lines = "".join(f"{name}: {value}\r\n" for name, value in extra)
    return response[:-2] + lines.encode("ascii") + b"\r\n"


async def _answer(stream: trio.SocketStream, response: bytes) -> None:
    with trio.move_on_after(CLOSE_GRACE_S):
        try:
            await stream.send_all(response)
            await stream.send_eof()
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
    await stream.aclose()


async def _abort(stream: trio.SocketStream) -> None:
    """Close with a reset: nothing unsent lingers, the kernel frees the socket now."""
    try:
        stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00" * 2)
    except OSError:
        pass
    await stream.aclose()


def _peer(stream: trio.SocketStream) -> str:
    try:
        name: Sequence[object] = stream.socket.getpeername()
    except OSError:
        return "unknown"
    if isinstance(name, tuple) and len(name) >= 2:
        return f"{name[0]}:{name[1]}"
    return str(name)


# -- the Quart path ------------------------------------------------------------------


async def serve_transport(
    hub: Hub, client: Client, transport: Transport, role: Role = Role.ADMIN
) -> None:
    """Run one registered connection served by Quart until it closes.

    Returns when the writer has sent a requested close. If the peer goes away,
    Quart cancels this call; either way the client leaves the registry.
    """
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_transport_reader, hub, client, role, transport)
            await _transport_writer(client, transport)
            nursery.cancel_scope.cancel()
    finally:
        hub.release(client)


async def _transport_reader(hub: Hub, client: Client, role: Role, transport: Transport) -> None:
    while client.close_request is None:
        raw = await transport.receive()
        client.last_seen = trio.current_time()
        deliver(hub, client, role, raw)
        hub.flush()


async def _transport_writer(client: Client, transport: Transport) -> None:
    while (batch := await client.take()) is not None:
        for item in batch:
            if item.text is None:
                continue  # protocol control frames: Hypercorn does its own
            client.sending_since = trio.current_time()
            await transport.send(item.text)
            client.sending_since = None
    request = client.close_request
    assert request is not None
    if request.code is None:
        return
    with trio.move_on_after(CLOSE_GRACE_S):
        try:
            await transport.close(request.code, request.reason)
        except Exception as exc:  # the peer may already be gone; nothing left to do
            log.debug("ws %r: close failed: %r", client, exc)
