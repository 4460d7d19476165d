"""A minimal Redis connection on trio sockets: pipelined commands, replies parsed in C.

Why not a client library: the hub's Redis bridge needs a handful of commands, sent at
the rate messages are routed. coredis (the one asyncio-free client that runs under
trio, through anyio) cost ~1.7 ms of CPU per routed message; redis-py's asyncio
client does not run under trio at all. This module is the small part that matters:

* one TCP (or TLS, ``rediss://``) connection per :func:`connect`, with ``AUTH``,
  ``SELECT`` and ``CLIENT SETNAME`` done before it is handed out;
* callers never touch the socket. :meth:`RedisConnection.enqueue` appends an encoded
  command (``hiredis.pack_command``) and a *waiter* without awaiting anything; one
  writer task sends everything queued since its last wake-up in one ``send_all``
  (so a burst of commands is one write, i.e. pipelined). Cancelling a caller (a
  timeout) therefore never leaves half a command on the wire: its reply is simply
  discarded when it arrives;
* one reader task feeds the bytes to hiredis' C ``Reader`` and hands each reply, in
  order, to the waiter of its command. Error replies arrive as
  ``hiredis.ReplyError`` values, not exceptions: :meth:`call` raises them,
  callbacks decide for themselves. When the connection ends, every waiter still
  owed a reply gets a :class:`ConnectionLost` value instead.

RESP2 only, no pub/sub pushes (every reply must answer a command). Not thread-safe:
trio tasks of one run only.
"""

from __future__ import annotations

import ssl
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import unquote, urlsplit

import attrs
import hiredis
import trio

READ_SIZE = 256 * 1024

#: a command's reply: ``bytes | int | list | None``, or ``hiredis.ReplyError``, or
#: :class:`ConnectionLost` when the connection ended before the reply came
Reply = Any
Waiter = Callable[[Reply], None]


class RedisError(Exception):
    """Base of this module's errors."""


class ConnectionLost(RedisError):
    """The connection ended (or could not be used); a command's fate is unknown."""


class CommandError(RedisError):
    """Redis answered a command with an error reply (``-ERR ...``)."""


@attrs.frozen
class RedisAddress:
    """Where and how to connect, from a ``redis://`` or ``rediss://`` URL."""

    host: str
    port: int = 6379
    db: int = 0
    username: str | None = None
    password: str | None = None
    tls: bool = False

    @classmethod
    def from_url(cls, url: str) -> RedisAddress:
        parts = urlsplit(url)
        if parts.scheme not in ("redis", "rediss") or not parts.hostname:
            raise ValueError(f"{url!r} is not a redis:// or rediss:// URL")
        path = parts.path.strip("/")
        try:
            db = int(path) if path else 0
            port = parts.port or 6379
        except ValueError:
            raise ValueError(f"{url!r}: port and database must be numbers") from None
        return cls(
            host=parts.hostname,
            port=port,
            db=db,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password is not None else None,
            tls=parts.scheme == "rediss",
        )


class _Slot:
    """The waiter of :meth:`RedisConnection.call`: keeps the reply, wakes the caller."""

    __slots__ = ("event", "reply")

    def __init__(self) -> None:
        self.event = trio.Event()
        self.reply: Reply = None

    def __call__(self, reply: Reply) -> None:
        self.reply = reply
        self.event.set()


def pack(args: tuple[bytes | str | int | float, ...]) -> bytes:
    """One command in RESP (C, hiredis); its type stub wrongly wants a 1-tuple."""
    return hiredis.pack_command(args)  # type: ignore[arg-type]


def _discard(reply: Reply) -> None:
    """The waiter of a command whose reply nobody reads."""


class RedisConnection:
    """One open connection; made by :func:`connect`, valid inside its ``async with``."""

    def __init__(self, stream: trio.abc.Stream) -> None:
        self._stream = stream
        self._reader = hiredis.Reader()
        self._waiters: deque[Waiter] = deque()
        self._out: list[bytes] = []
        self._out_ready = trio.Event()
        self._closed: ConnectionLost | None = None
        #: the writer is inside ``send_all`` (a cancelled write may have sent part of it)
        self._writing = False

    @property
    def closed(self) -> bool:
        return self._closed is not None

    @property
    def pending_replies(self) -> int:
        return len(self._waiters)

    def enqueue(self, payload: bytes, *waiters: Waiter) -> None:
        """Queue encoded command(s) and one waiter per command, in order. Never blocks.

        ``payload`` may hold several commands (``b"".join`` of ``pack_command``
        results); pass exactly one waiter for each.
        """
        if self._closed is not None:
            raise self._closed
        self._out.append(payload)
        self._waiters.extend(waiters)
        self._out_ready.set()

    def send(self, *args: bytes | str | int | float) -> None:
        """Queue one command whose reply is not needed."""
        self.enqueue(pack(args), _discard)

    async def call(self, *args: bytes | str | int | float) -> Reply:
        """Send one command and return its reply; raises :class:`CommandError` on ``-ERR``.

        Bound it with a timeout yourself: a Redis that stopped answering is only
        noticed by the caller's deadline (or by the connection breaking).
        """
        slot = _Slot()
        self.enqueue(pack(args), slot)
        await slot.event.wait()
        reply = slot.reply
        if isinstance(reply, ConnectionLost):
            raise ConnectionLost(str(reply))
        if isinstance(reply, hiredis.ReplyError):
            raise CommandError(str(reply))
        return reply

    async def send_last_words(self, *commands: tuple[bytes | str | int, ...]) -> bool:
        """Write ``commands`` straight to the socket, replies ignored, for shutdown.

        At shutdown the reader and writer tasks are already cancelled, so nothing
        queued would be sent. This writes directly (after whatever was still queued),
        unless a cancelled write may have left part of a command on the wire (then
        Redis would misparse it). Bound it with a (shielded) timeout. ``True`` if it
        was written.
        """
        if self._writing:
            return False
        last = [pack(c) for c in commands]
        try:
            await self._stream.send_all(b"".join([*self._out, *last]))
        except (OSError, trio.BrokenResourceError, trio.ClosedResourceError):
            return False
        return True

    async def _write_loop(self) -> None:
        while True:
            while not self._out:
                self._out_ready = trio.Event()
                await self._out_ready.wait()
            chunk = self._out[0] if len(self._out) == 1 else b"".join(self._out)
            self._out.clear()
            self._writing = True
            await self._stream.send_all(chunk)
            self._writing = False

    async def _read_loop(self) -> None:
        reader = self._reader
        waiters = self._waiters
        while True:
            data = await self._stream.receive_some(READ_SIZE)
            if not data:
                raise ConnectionLost("Redis closed the connection")
            reader.feed(bytes(data) if isinstance(data, bytearray) else data)
            try:
                while (reply := reader.gets()) is not False:
                    if not waiters:
                        raise ConnectionLost("Redis sent a reply nobody asked for")
                    waiters.popleft()(reply)
            except hiredis.ProtocolError as exc:
                raise ConnectionLost(f"Redis protocol error: {exc}") from exc

    def _fail_waiters(self, why: str) -> None:
        self._closed = ConnectionLost(why)
        while self._waiters:
            self._waiters.popleft()(self._closed)
        self._out.clear()


@asynccontextmanager
async def connect(
    address: RedisAddress, *, timeout: float, name: str | None = None
) -> AsyncIterator[RedisConnection]:
    """Open, authenticate and select; yield the connection while its tasks run.

    If the connection breaks, the reader's :class:`ConnectionLost` (or the socket's
    ``OSError``/``trio.BrokenResourceError``) cancels the ``async with`` body and
    comes out of it, wrapped in an exception group.
    """
    with trio.fail_after(timeout):
        stream: trio.abc.Stream = await trio.open_tcp_stream(address.host, address.port)
        if address.tls:
            stream = trio.SSLStream(
                stream, ssl.create_default_context(), server_hostname=address.host
            )
            await stream.do_handshake()
    conn = RedisConnection(stream)
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(conn._read_loop)
            nursery.start_soon(conn._write_loop)
            with trio.fail_after(timeout):
                if address.password is not None:
                    user = (address.username,) if address.username else ()
                    await conn.call("AUTH", *user, address.password)
                if address.db:
                    await conn.call("SELECT", address.db)
                if name:
                    await conn.call("CLIENT", "SETNAME", name)
            yield conn
            nursery.cancel_scope.cancel()
    finally:
        conn._fail_waiters("connection closed")
        await trio.aclose_forcefully(stream)
