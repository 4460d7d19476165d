"""Log output: one handler on the root logger, ``text`` or ``json``, with request and job ids.

Why one handler on the root: every logger of the service, Hypercorn's (wired to
``stinercut_svc.server``/``stinercut_svc.access`` in ``server.py``), Quart's
app logger, alembic's, propagates to it, so each record is written exactly once.
Quart adds a handler of its own to the app logger only when none is reachable at
that moment, which :func:`configure_logging` (called before the app is created)
rules out.

Why context variables: a request id or a job uuid is known far from most of the
log calls that should carry it (the database layer, the media runner, the hub).
:data:`request_id` is set by the per-request ASGI wrapper
(:mod:`stinercut_svc.access_log`) and :data:`job_id` by :func:`bind_job` where the
supervisor starts a job's task. Trio copies the context into a task when it is
spawned (``start_soon``/``start``) and ``trio.to_thread.run_sync`` runs its
function in a copy too, so everything a request or a job starts *after* the value
is set inherits it, and nothing started before (the app's background tasks) does.
:class:`ContextFilter` reads both when a record is emitted, in the emitting
context, so no log call has to pass them.

``LOG_FORMAT=text`` (default) keeps the classic line
``2026-12-02 13:00:52,989 INFO    stinercut_svc.access: ...``; ``json`` writes one
object per line: ``time`` (UTC, ISO 8601, milliseconds), ``level``, ``logger``,
``message``, and ``request_id``/``job_id`` when known, ``exception`` with the
traceback when there is one, and ``http`` (method, path, status, bytes,
duration_ms, client) on access lines.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from contextvars import ContextVar
from typing import Literal, TextIO

LogFormat = Literal["text", "json"]
LOG_FORMATS: tuple[LogFormat, ...] = ("text", "json")

TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"

#: The id of the HTTP request being handled (``X-Request-ID``), or ``None``.
request_id: ContextVar[str | None] = ContextVar("stinercut_request_id", default=None)
#: The uuid of the render job being run, or ``None``.
job_id: ContextVar[str | None] = ContextVar("stinercut_job_id", default=None)


def bind_job(job_uuid: str) -> None:
    """Mark the current task (and what it starts from now on) as working on ``job_uuid``.

    Call it first thing in the job's own task: the value then lives exactly as
    long as that task, with no reset needed.
    """
    job_id.set(job_uuid)


class ContextFilter(logging.Filter):
    """Puts ``request_id`` and ``job_id`` on every record (``extra=`` values win)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = request_id.get()
        if not hasattr(record, "job_id"):
            record.job_id = job_id.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line (newlines inside values are escaped)."""

    def format(self, record: logging.LogRecord) -> str:
        seconds = int(record.created)
        millis = int((record.created - seconds) * 1000)
        entry: dict[str, object] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        rid = getattr(record, "request_id", None)
        if rid is not None:
            entry["request_id"] = rid
        jid = getattr(record, "job_id", None)
        if jid is not None:
            entry["job_id"] = jid
        http = getattr(record, "http", None)
        if http is not None:
            entry["http"] = http
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def make_handler(fmt: LogFormat, stream: TextIO | None = None) -> logging.Handler:
    """The service's handler: ``fmt`` formatting plus the context filter."""
    handler = logging.StreamHandler(stream or sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    handler.addFilter(ContextFilter())
    return handler


def configure_logging(level: str, fmt: LogFormat = "text") -> None:
    """Send every log record to stderr once, at ``level``, as ``fmt`` (``text``/``json``).

    Replaces whatever handlers the root logger had (calling it twice does not
    double the output). The service's own loggers keep no handlers and
    propagate, so nothing reaches stderr by a second path.
    """
    if fmt not in LOG_FORMATS:
        raise ValueError(f"log format must be one of {', '.join(LOG_FORMATS)}, not {fmt!r}")
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(make_handler(fmt))
    root.setLevel(level)
    for name in ("stinercut_svc", "stinercut_svc.access", "stinercut_svc.server"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True


__all__ = [
    "LOG_FORMATS",
    "ContextFilter",
    "JsonFormatter",
    "LogFormat",
    "bind_job",
    "configure_logging",
    "job_id",
    "make_handler",
    "request_id",
]
