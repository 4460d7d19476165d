"""Job-state webhooks: a transactional outbox, signed deliveries, retries with backoff.

* :mod:`.signing`: the ``X-Stinercut-Signature`` HMAC and its check (receivers use the
  same few lines; the README has them).
* :mod:`.targets`: which callback URLs are acceptable (scheme, and no loopback,
  link-local or private address unless ``WEBHOOK_ALLOW_PRIVATE``).
* :mod:`.outbox`: rows in ``webhook_delivery``, written in the transaction that
  changes a job's state; leasing due rows; recording outcomes.
* :mod:`.dispatcher`: the background task that delivers them.
"""
