"""Who a caller is: trusted network, token, or nobody.

One object per app (``app.access``), used by the REST guard (``guard.py``) and by
both WebSocket paths (``hub/connection.py``, ``routers/websocket.py``), so HTTP
and the hub decide the same way.

The client address is the socket's peer. ``X-Forwarded-For`` is ignored: any
client can send it, so believing it would let anyone claim a trusted address.
Behind a reverse proxy the proxy's address is what is checked; trust the proxy
only if everything it forwards may be trusted.

Callers from ``TRUSTED_NETWORKS`` get ``admin``: the frontend and the detector on
the centre's LAN send no tokens and must keep working unchanged. With
``AUTH_REQUIRED`` off (the embedded default) everyone is ``admin`` and no token
is looked at.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Sequence

from ..config import IPNetwork
from ..database import Database
from . import tokens
from .errors import AuthenticationRequired, InsufficientRole, InvalidToken
from .roles import Access, Role

log = logging.getLogger(__name__)

BEARER = "bearer"


class AccessControl:
    def __init__(self, db: Database, *, required: bool, trusted: Sequence[IPNetwork]) -> None:
        self.db = db
        self.required = required
        self.trusted = tuple(trusted)

    def is_trusted(self, address: str | None) -> bool:
        """Whether ``address`` (an IP, maybe IPv4-mapped IPv6) is in a trusted network."""
        if not self.trusted or not address:
            return False
        try:
            ip = ipaddress.ip_address(address.strip("[]").split("%", 1)[0])
        except ValueError:
            return False  # "unknown", a Unix socket path: not a trusted peer
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return any(ip in network for network in self.trusted)

    async def role_of(self, address: str | None, token: str | None) -> Role:
        """The caller's role; raises 401-type errors when a token is needed and bad."""
        if not self.required or self.is_trusted(address):
            return Role.ADMIN
        if not token:
            raise AuthenticationRequired(
                "authentication required: send 'Authorization: Bearer <token>' "
                "(create one with 'stinercut tokens create')"
            )
        found = await self.db.run(lambda session: tokens.authenticate(session, token))
        if found is None:
            raise InvalidToken("the token is unknown or revoked")
        return found[1]

    async def check(self, address: str | None, token: str | None, needed: Access) -> Role | None:
        """Raise unless the caller may do what ``needed`` allows; return its role
        (``None`` for an open route, where nobody is asked)."""
        if not isinstance(needed, Role):  # OPEN
            return None
        role = await self.role_of(address, token)
        if not role.allows(needed):
            raise InsufficientRole(
                f"this needs the {needed} role; the token has {role}",
                required=needed.value, role=role.value,
            )
        return role


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header (scheme in any case)."""
    if not authorization:
        return None
    scheme, _, value = authorization.strip().partition(" ")
    if scheme.lower() != BEARER:
        return None
    return value.strip() or None
