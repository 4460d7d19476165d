"""The background task that delivers the outbox, one instance or many.

It never blocks a render: it runs in the app nursery beside the supervisor, talks to
the database through the same worker threads (briefly, per batch) and to receivers
with its own HTTP client, bounded timeouts and at most :data:`CONCURRENCY` requests
in flight. A receiver that hangs costs one slot for ``WEBHOOK_TIMEOUT_S``.

Delivery is at least once: a row is leased, sent, and only then marked delivered;
a crash in between resends it after the lease. Redirects are not followed (a 3xx
is a failed attempt): following one would let a receiver bounce the service onto
an address the SSRF check refused.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from functools import partial

import attrs
import httpx
import trio

from ..config import Settings
from ..database import Database
from . import outbox, signing
from .targets import CallbackUrlError, check_target

log = logging.getLogger(__name__)

#: Requests in flight at once.
CONCURRENCY = 8
#: Rows leased per database round trip.
BATCH = 32
#: The longest sleep between two looks at the outbox: state changes recorded by the
#: supervisor (or by another instance) are picked up within this time.
IDLE_POLL_S = 1.0
USER_AGENT = "stinercut-svc-webhooks"


@attrs.frozen
class WebhookConfig:
    secret: str | None
    allow_private: bool = False
    retry_base_s: float = 10.0
    retry_window: timedelta = timedelta(days=1)
    timeout_s: float = 10.0


class Dispatcher:
    def __init__(self, db: Database, config: WebhookConfig, ready: trio.Event) -> None:
        self.db = db
        self.config = config
        #: Set once the schema is migrated (the outbox table exists).
        self.ready = ready
        self._wake = trio.Event()

    @classmethod
    def from_settings(cls, db: Database, settings: Settings, ready: trio.Event) -> Dispatcher:
        config = WebhookConfig(
            secret=settings.webhook_secret,
            allow_private=settings.webhook_allow_private,
            retry_base_s=settings.webhook_retry_base_s,
            retry_window=timedelta(seconds=settings.webhook_retry_window_s),
            timeout_s=settings.webhook_timeout_s,
        )
        return cls(db, config, ready)

    def wake(self) -> None:
        """Look at the outbox now (called after a transaction that queued deliveries)."""
        self._wake.set()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        timeout = httpx.Timeout(self.config.timeout_s)
        async with httpx.AsyncClient(
            timeout=timeout, trust_env=False, follow_redirects=False,
            headers={"User-Agent": USER_AGENT},
        ) as client:
            task_status.started()
            await self.ready.wait()
            slots = trio.CapacityLimiter(CONCURRENCY)
            async with trio.open_nursery() as nursery:
                while True:
                    self._wake = trio.Event()
                    try:
                        due = await self.db.run(
                            partial(outbox.lease_due, limit=BATCH, mysql=self.db.is_mysql)
                        )
                    except Exception as exc:  # database down: try again later
                        log.warning("webhooks: cannot read the outbox: %s", exc)
                        due = []
                    for delivery in due:
                        await slots.acquire_on_behalf_of(delivery.id)
                        nursery.start_soon(self._deliver_released, client, delivery, slots)
                    if len(due) == BATCH:
                        continue
                    with trio.move_on_after(await self._idle_s()):
                        await self._wake.wait()

    async def _idle_s(self) -> float:
        try:
            when = await self.db.run(outbox.next_due_at)
        except Exception:
            return IDLE_POLL_S
        if when is None:
            return IDLE_POLL_S
        wait = (when - outbox.utcnow()).total_seconds()
        return min(max(wait, 0.05), IDLE_POLL_S)

    async def _deliver_released(
        self, client: httpx.AsyncClient, delivery: outbox.Due, slots: trio.CapacityLimiter
    ) -> None:
        try:
            await self.deliver(client, delivery)
        finally:
            slots.release_on_behalf_of(delivery.id)

    async def deliver(self, client: httpx.AsyncClient, delivery: outbox.Due) -> None:
        """One attempt; its outcome is recorded (the row's lease covers a crash here)."""
        permanent = False
        try:
            await check_target(delivery.url, allow_private=self.config.allow_private)
            if not self.config.secret:
                raise CallbackUrlError("WEBHOOK_SECRET is not set: deliveries are not signed")
            headers = {
                "Content-Type": "application/json",
                signing.SIGNATURE_HEADER: signing.sign(self.config.secret, delivery.body),
                signing.IDEMPOTENCY_HEADER: delivery.event_id,
                signing.EVENT_HEADER: outbox.EVENT,
            }
            response = await client.post(delivery.url, content=delivery.body, headers=headers)
            if 200 <= response.status_code < 300:
                await self.db.run(partial(outbox.record_success, delivery_id=delivery.id))
                log.info("webhook %s delivered to %s", delivery.event_id, delivery.url)
                return
            error = f"receiver answered {response.status_code}"
        except CallbackUrlError as exc:
            error, permanent = str(exc), not self.config.secret
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        status = await self.db.run(
            partial(
                outbox.record_failure,
                delivery_id=delivery.id,
                error=error,
                base_s=self.config.retry_base_s,
                window=self.config.retry_window,
                permanent=permanent,
            )
        )
        log.warning(
            "webhook %s to %s failed (attempt %d): %s%s",
            delivery.event_id, delivery.url, delivery.attempts + 1, error,
            "; abandoned" if status is outbox.DeliveryStatus.ABANDONED else "",
        )
