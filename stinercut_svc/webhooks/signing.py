"""HMAC-SHA256 signatures over the exact request body.

``X-Stinercut-Signature: sha256=<hex>`` where ``<hex>`` is
``HMAC-SHA256(WEBHOOK_SECRET, body)``. The receiver recomputes it over the raw bytes it
received (before any JSON parsing) and compares in constant time. The body carries
``event_id`` and ``occurred_at``, so a replayed request is recognisable by the
idempotency key the receiver already stores.
"""

from __future__ import annotations

import hashlib
import hmac

SIGNATURE_HEADER = "X-Stinercut-Signature"
EVENT_HEADER = "X-Stinercut-Event"
#: The idempotency key: the same for every retry of one delivery.
IDEMPOTENCY_HEADER = "Idempotency-Key"
PREFIX = "sha256="


def sign(secret: str, body: bytes) -> str:
    digest = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
    return PREFIX + digest


def verify(secret: str, body: bytes, header: str | None) -> bool:
    """True when ``header`` is the signature of ``body`` under ``secret``."""
    if not header or not header.startswith(PREFIX):
        return False
    return hmac.compare_digest(sign(secret, body), header)
