"""Request ids: the ``X-Request-ID`` a client sent (when usable) or a fresh one.

One small module because three layers answer requests and each must tag its answer
the same way: the ASGI wrapper (:mod:`.access_log`) for everything Quart serves, the
health fast path (:mod:`.fast_health`) and the hub's own HTTP handshake
(:mod:`.hub.connection`), which never reach Quart. An id from the client is kept only
if it is short printable ASCII, so it can go into a header and a log line unchanged.
"""

from __future__ import annotations

import os

REQUEST_ID_HEADER = "X-Request-ID"
MAX_REQUEST_ID = 128

_PRINTABLE = frozenset(range(0x20, 0x7F))


def usable_request_id(raw: bytes) -> str | None:
    """The client's id if it is 1-128 printable ASCII characters (after trimming)."""
    value = raw.strip()
    if not 0 < len(value) <= MAX_REQUEST_ID or not _PRINTABLE.issuperset(value):
        return None
    return value.decode("ascii")


def new_request_id() -> str:
    return os.urandom(16).hex()


def request_id_from(raw: str | bytes | None) -> str:
    """The client's usable id, else a new one."""
    if isinstance(raw, str):
        raw = raw.encode("latin-1", "replace")
    return (usable_request_id(raw) if raw else None) or new_request_id()
