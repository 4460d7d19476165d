"""Which callback URLs the service will POST to (server-side request forgery guard).

A callback URL is chosen by an API client, and the service then sends requests from
inside the centre's network. Without a guard, a client could point it at the
database's admin port, a router's web UI or a cloud metadata address. So unless
``WEBHOOK_ALLOW_PRIVATE`` is set, a URL whose host *resolves* to a loopback,
link-local, private (RFC 1918, ULA), shared (CGNAT), multicast, reserved or
unspecified address is refused: when it is set (answering 422), and again before
every delivery, because DNS answers change.

Known limit: the address is checked, then httpx resolves the name again to connect;
a hostile DNS server answering differently within that window (rebinding) is not
stopped by this check. Deployments that need that guarantee route callbacks through
an egress proxy.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

import trio

MAX_URL_LENGTH = 2048


class CallbackUrlError(ValueError):
    """The callback URL is unusable; the message says why (shown to API clients)."""


def check_syntax(url: str) -> str:
    """The URL's host, when the URL has an acceptable shape; else :class:`CallbackUrlError`."""
    if len(url) > MAX_URL_LENGTH:
        raise CallbackUrlError(f"callback_url is longer than {MAX_URL_LENGTH} characters")
    try:
        parts = urlsplit(url)
        port = parts.port  # raises on a non-numeric or out-of-range port
    except ValueError as exc:
        raise CallbackUrlError(f"callback_url is not a valid URL: {exc}") from None
    if parts.scheme not in ("http", "https"):
        raise CallbackUrlError("callback_url must be an http:// or https:// URL")
    if not parts.hostname:
        raise CallbackUrlError("callback_url has no host")
    if parts.username or parts.password:
        raise CallbackUrlError("callback_url must not contain credentials")
    del port
    return parts.hostname


def forbidden_reason(address: str) -> str | None:
    """Why ``address`` may not be called without ``WEBHOOK_ALLOW_PRIVATE`` (None: allowed)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_link_local:
        return "a link-local address"
    if ip.is_unspecified:
        return "the unspecified address"
    if ip.is_multicast:
        return "a multicast address"
    if ip.is_private or (isinstance(ip, ipaddress.IPv4Address) and ip in _SHARED):
        return "a private-network address"
    if ip.is_reserved:
        return "a reserved address"
    return None


_SHARED = ipaddress.IPv4Network("100.64.0.0/10")


async def check_target(url: str, *, allow_private: bool) -> None:
    """Raise :class:`CallbackUrlError` unless ``url`` may be called now."""
    host = check_syntax(url)
    if allow_private:
        return
    port = urlsplit(url).port or (443 if url.lower().startswith("https") else 80)
    try:
        infos = await trio.socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise CallbackUrlError(f"callback_url host {host!r} does not resolve ({exc})") from None
    for info in infos:
        reason = forbidden_reason(str(info[4][0]))
        if reason is not None:
            raise CallbackUrlError(
                f"callback_url host {host!r} resolves to {reason}; "
                "set WEBHOOK_ALLOW_PRIVATE=true to allow callbacks into private networks"
            )


async def accept_callback_url(url: str, *, secret: str | None, allow_private: bool) -> str:
    """Check a callback URL an API client asks for (422 via :class:`CallbackUrlError`).

    Unsigned webhooks are never sent, so without ``WEBHOOK_SECRET`` no URL is accepted:
    better a clear answer now than deliveries that can never go out.
    """
    if not secret:
        raise CallbackUrlError(
            "webhooks are not configured on this service (set WEBHOOK_SECRET to enable them)"
        )
    await check_target(url, allow_private=allow_private)
    return url
