"""Prometheus metrics: what ``GET /metrics`` reports, and how each figure is gathered.

One :class:`ServiceMetrics` per app, with its own ``CollectorRegistry`` (never the
library's global one): tests run several apps in one process, and a second
instance must not fail with "duplicated timeseries" nor mix its counts into
another's. The app keeps it in ``app.extensions`` (:func:`metrics_of`); with
``METRICS_ENABLED=false`` there is none and every function here is a no-op.

How each figure is gathered, cheapest path first:

* **HTTP requests** (by route *template*, ``url_rule.rule``, never the raw path,
  so ids do not explode the label set) and their latency: recorded by the
  per-request ASGI wrapper (``access_log.py``) through :meth:`HttpMetrics.observe`,
  which keeps plain numbers per series (a dict lookup, a ``bisect``, two list
  increments: about 1 µs) and turns them into families only when scraped.
* **Hub** clients by type, messages routed, slow-client (1013) disconnects,
  backplane failures/drops: plain integers the hub and the backplane keep anyway,
  read at scrape time (:class:`ScrapeCollector`). Nothing is added to the hub's
  per-message path but one ``dict`` increment.
* **Jobs by state** and **queue wait** (claim time minus creation time of the jobs
  this instance claimed): one read-only query at scrape time, cached
  :data:`JOBS_CACHE_S`, in a worker thread with a deadline (a hung database makes
  the jobs figures go missing, never the scrape hang).
* **ffmpeg processes running**: this process's children whose command line runs
  ffmpeg behind the guard, counted from ``/proc`` at scrape time (a render carries
  its job's tag, everything else is ``other``).
* **Render seconds**: observed by the render handler when a render completes
  (:func:`observe_render`).
* **Upload bytes**: multipart request bytes received, by route, counted by the
  ASGI wrapper for multipart requests only.
* the standard ``process_*`` figures (CPU, memory, open fds) of this process.
"""

from __future__ import annotations

import logging
import os
from bisect import bisect_left
from collections.abc import Iterator
from datetime import datetime, timedelta
from itertools import accumulate
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import trio
from prometheus_client import CollectorRegistry, Histogram, ProcessCollector
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from .hub.protocol import CLIENT_TYPES, TARGETS
from .models import Job, JobStatus
from .models.base import utcnow

if TYPE_CHECKING:
    from .context import StinercutApp
    from .hub import Hub

log = logging.getLogger(__name__)

EXTENSION = "stinercut.metrics"
NAMESPACE = "stinercut"
#: Jobs by state and queue wait are read from the database at most this often.
JOBS_CACHE_S = 5.0
#: A scrape waits this long for the jobs query, then answers without its figures.
JOBS_QUERY_TIMEOUT_S = 2.0
#: Route label of requests that matched no route (404/405): one series, not one per path.
UNMATCHED = "<unmatched>"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

HTTP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
RENDER_BUCKETS = (1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0)
QUEUE_BUCKETS = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 1800.0, 3600.0, 4 * 3600.0)


class HttpMetrics(Collector):
    """Requests by method, route template and status; latency by method and route;
    upload bytes by route.

    Kept as plain numbers per series (bucket counts and a sum in one list), turned
    into metric families only when scraped: a request costs a dict lookup, a
    ``bisect`` and two list increments (~1 µs), no lock and no labelled child.
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        #: (method, route, status) -> [count per bucket ..., count above the last, sum]
        self._series: dict[tuple[str, str, int], list[float]] = {}
        self._uploads: dict[str, int] = {}
        #: copies taken on the trio thread by :meth:`freeze`, read by :meth:`collect`
        self._frozen: tuple[dict[tuple[str, str, int], list[float]], dict[str, int]] = ({}, {})
        registry.register(self)

    def observe(self, method: str, route: str | None, status: int, seconds: float) -> None:
        if method not in METHODS:
            method = "other"  # a client's made-up methods must not grow the label set
        key = (method, route or UNMATCHED, status)
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = [0.0] * (len(HTTP_BUCKETS) + 2)
        series[bisect_left(HTTP_BUCKETS, seconds)] += 1
        series[-1] += seconds

    def uploaded(self, route: str | None, size: int) -> None:
        if size:
            label = route or UNMATCHED
            self._uploads[label] = self._uploads.get(label, 0) + size

    def freeze(self) -> None:
        """Copy the numbers (trio thread) for a scrape rendered in a worker thread."""
        self._frozen = ({k: list(v) for k, v in self._series.items()}, dict(self._uploads))

    def collect(self) -> Iterator[Metric]:
        series, uploads = self._frozen
        requests = CounterMetricFamily(
            f"{NAMESPACE}_http_requests",
            "HTTP requests answered, by method, route template and status",
            labels=["method", "route", "status"],
        )
        latency: dict[tuple[str, str], list[float]] = {}
        for (method, route, status), values in series.items():
            requests.add_metric([method, route, str(status)], sum(values[:-1]))
            total = latency.setdefault((method, route), [0.0] * len(values))
            for index, value in enumerate(values):
                total[index] += value
        yield requests
        histogram = HistogramMetricFamily(
            f"{NAMESPACE}_http_request_duration_seconds",
            "Time from the request reaching the app to its last response byte handed on",
            labels=["method", "route"],
        )
        for (method, route), values in latency.items():
            cumulative = list(accumulate(values[:-1]))
            buckets = [(floatToGoString(b), c) for b, c in zip(HTTP_BUCKETS, cumulative, strict=False)]
            buckets.append(("+Inf", cumulative[-1]))
            histogram.add_metric([method, route], buckets, values[-1])
        yield histogram
        uploaded = CounterMetricFamily(
            f"{NAMESPACE}_upload_bytes",
            "Request body bytes of multipart uploads received, by route template",
            labels=["route"],
        )
        for route, size in uploads.items():
            uploaded.add_metric([route], size)
        yield uploaded


@attrs.define
class JobFigures:
    """Jobs by state, as last read from the database."""

    by_state: dict[str, int]
    read_at: float  # trio clock


@attrs.define
class Snapshot:
    """Figures read on the trio thread (or gathered in a worker) just before a scrape."""

    hub_clients: dict[str, int] = attrs.Factory(dict)
    hub_routed: dict[str, int] = attrs.Factory(dict)
    hub_slow: dict[str, int] = attrs.Factory(dict)
    hub_connections: int = 0
    backplane: dict[str, float] | None = None
    jobs: JobFigures | None = None
    ffmpeg: dict[str, int] | None = None


class ServiceMetrics:
    """Everything ``/metrics`` reports for one app."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.http = HttpMetrics(self.registry)
        self.render_seconds = Histogram(
            "render_seconds",
            "Wall time of completed renders (claim to recorded completion), by render path",
            ["render_path"],
            namespace=NAMESPACE,
            buckets=RENDER_BUCKETS,
            registry=self.registry,
        )
        self.queue_wait = Histogram(
            "job_queue_wait_seconds",
            "Time jobs claimed by this instance waited: claim time minus creation time",
            namespace=NAMESPACE,
            buckets=QUEUE_BUCKETS,
            registry=self.registry,
        )
        ProcessCollector(registry=self.registry)
        self.snapshot = Snapshot()
        #: how long jobs figures are reused (tests set 0 to see each change at once)
        self.jobs_cache_s = JOBS_CACHE_S
        self.registry.register(ScrapeCollector(self))
        self._jobs_lock = trio.Lock()
        self._jobs_in_flight = False
        #: claims already counted into ``queue_wait``: (job id, claim time)
        self._claims_seen: set[tuple[int, datetime]] = set()
        self._claims_since = utcnow()

    # -- gathering at scrape time ------------------------------------------------------

    async def refresh(self, app: StinercutApp) -> None:
        """Bring :attr:`snapshot` up to date (call on the trio thread before a scrape)."""
        self.http.freeze()
        read_hub(app.hub, self.snapshot)
        await self._refresh_jobs(app)
        self.snapshot.ffmpeg = await trio.to_thread.run_sync(count_ffmpeg, os.getpid())

    async def _refresh_jobs(self, app: StinercutApp) -> None:
        async with self._jobs_lock:  # concurrent scrapes share one query
            jobs = self.snapshot.jobs
            now = trio.current_time()
            if jobs is not None and now - jobs.read_at < self.jobs_cache_s:
                return
            if self._jobs_in_flight:
                return  # an abandoned query still runs: do not pile up threads behind it
            if not app.schema_ready.is_set():
                return
            owner = getattr(getattr(app, "supervisor", None), "owner", None)
            since = self._claims_since - timedelta(seconds=2)  # timestamps may be whole seconds
            self._jobs_in_flight = True

            def query() -> tuple[dict[str, int], list[tuple[int, datetime, datetime]]]:
                try:
                    with Session(app.db.engine) as session:
                        return read_jobs(session, owner, since)
                finally:
                    # Here, not on the trio side: an abandoned query clears it when it ends.
                    self._jobs_in_flight = False

            try:
                with trio.move_on_after(JOBS_QUERY_TIMEOUT_S):
                    by_state, claims = await trio.to_thread.run_sync(query, abandon_on_cancel=True)
                    self.snapshot.jobs = JobFigures(by_state, trio.current_time())
                    self._count_claims(claims)
                    return
                log.warning("metrics: the jobs query took over %.0f s; jobs figures left out",
                            JOBS_QUERY_TIMEOUT_S)
            except Exception as exc:  # noqa: BLE001 - a scrape answers without them
                log.warning("metrics: reading jobs failed: %s", exc)
            self.snapshot.jobs = None

    def _count_claims(self, claims: list[tuple[int, datetime, datetime]]) -> None:
        fresh: set[tuple[int, datetime]] = set()
        for job_id, created, claimed in claims:
            key = (job_id, claimed)
            fresh.add(key)
            if key not in self._claims_seen:
                self.queue_wait.observe(max(0.0, (claimed - created).total_seconds()))
            if claimed > self._claims_since:
                self._claims_since = claimed
        # Only claims inside the overlap window can come back: remember just those.
        self._claims_seen = fresh


def read_hub(hub: Hub, snapshot: Snapshot) -> None:
    """Copy the hub's and the backplane's counters (no I/O, trio thread)."""
    snapshot.hub_clients = hub.local_counts()
    snapshot.hub_routed = dict(hub.routed)
    snapshot.hub_slow = dict(hub.slow_disconnects)
    snapshot.hub_connections = hub.open_connections
    backplane = hub.backplane
    if backplane is None:
        snapshot.backplane = None
    else:
        snapshot.backplane = {
            "connected": 1.0 if backplane.connected else 0.0,
            "failures": backplane.failures,
            "dropped": backplane.dropped,
            "sent": backplane.sent,
            "received": backplane.received,
            "buffered": backplane.buffered,
        }


def read_jobs(
    session: Session, owner: str | None, since: datetime
) -> tuple[dict[str, int], list[tuple[int, datetime, datetime]]]:
    """Jobs per state, and ``(id, created, claimed)`` of ``owner``'s claims since ``since``."""
    by_state = {status.value: 0 for status in JobStatus}
    for status, count in session.execute(select(Job.status, func.count()).group_by(Job.status)):
        by_state[str(getattr(status, "value", status))] = int(count)
    claims: list[tuple[int, datetime, datetime]] = []
    if owner is not None:
        rows = session.execute(
            select(Job.id, Job.created_at, Job.started_at).where(
                Job.claimed_by == owner, Job.started_at >= since
            )
        )
        claims = [(row[0], row[1], row[2]) for row in rows if row[2] is not None]
    return by_state, claims


def _children(pid: int) -> list[int] | None:
    """Child pids of ``pid`` from each of its threads' ``children`` file (Linux >= 3.5 with
    ``CONFIG_PROC_CHILDREN``, as on Debian/Ubuntu kernels); ``None`` where it is missing."""
    found: list[int] = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            found += [int(p) for p in (task / "children").read_text().split()]
    except OSError:
        return None
    return found


def count_ffmpeg(pid: int) -> dict[str, int] | None:
    """ffmpeg processes this service runs, by kind (``render``: tagged with a job);
    ``None`` when the kernel does not list children (the gauge is then left out).

    Every ffmpeg runs behind the guard (``media/runner.py``): the guard is our child,
    its command line is ``python guard.py FD TAG -- /path/ffmpeg ...``.
    """
    children = _children(pid)
    if children is None:
        return None
    counts = {"render": 0, "other": 0}
    for child in children:
        try:
            argv = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"--" not in argv:
            continue
        split = argv.index(b"--")
        if split + 1 >= len(argv) or os.path.basename(argv[split + 1]) != b"ffmpeg":
            continue
        tag = argv[split - 1] if split >= 1 else b"-"
        counts["render" if tag not in (b"-", b"") else "other"] += 1
    return counts


class ScrapeCollector(Collector):
    """Turns the :class:`Snapshot` into metric families when the registry is collected."""

    def __init__(self, metrics: ServiceMetrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        snap = self.metrics.snapshot
        clients = GaugeMetricFamily(
            f"{NAMESPACE}_hub_clients", "WebSocket clients connected to this instance, by type",
            labels=["type"],
        )
        for client_type in CLIENT_TYPES:
            clients.add_metric([client_type], snap.hub_clients.get(client_type, 0))
        yield clients
        yield GaugeMetricFamily(
            f"{NAMESPACE}_hub_connections",
            "WebSocket connections whose tasks still run (closing ones included)",
            value=snap.hub_connections,
        )
        routed = CounterMetricFamily(
            f"{NAMESPACE}_hub_messages_routed",
            "Messages routed by this instance's hub (from its clients and the service), by target",
            labels=["target"],
        )
        for target in TARGETS:
            routed.add_metric([target], snap.hub_routed.get(target, 0))
        yield routed
        slow = CounterMetricFamily(
            f"{NAMESPACE}_hub_slow_client_disconnects",
            "Clients closed with 1013 because they did not read: outbox full or a send timed out",
            labels=["reason"],
        )
        for reason in ("outbox_full", "send_timeout"):
            slow.add_metric([reason], snap.hub_slow.get(reason, 0))
        yield slow
        plane = snap.backplane
        yield GaugeMetricFamily(
            f"{NAMESPACE}_hub_backplane_connected",
            "1 while the Redis backplane bridges this hub (0 when down or not configured)",
            value=plane["connected"] if plane else 0.0,
        )
        for name, key, text in (
            ("backplane_failures", "failures", "Redis backplane sessions that failed or ended with an error"),
            ("backplane_dropped_messages", "dropped", "Messages not bridged: buffer full or Redis refused them"),
            ("backplane_sent_messages", "sent", "Messages Redis acknowledged from this instance"),
            ("backplane_received_messages", "received", "Messages from other instances delivered here"),
        ):
            yield CounterMetricFamily(
                f"{NAMESPACE}_hub_{name}", text, value=plane[key] if plane else 0.0
            )
        if snap.jobs is not None:
            jobs = GaugeMetricFamily(
                f"{NAMESPACE}_jobs", "Render jobs in the shared database, by state",
                labels=["state"],
            )
            for state, count in snap.jobs.by_state.items():
                jobs.add_metric([state], count)
            yield jobs
        if snap.ffmpeg is not None:
            procs = GaugeMetricFamily(
                f"{NAMESPACE}_ffmpeg_processes",
                "ffmpeg processes this instance runs now (render: a job's render; other: "
                "thumbnails, analysis, ...)",
                labels=["kind"],
            )
            for kind, count in snap.ffmpeg.items():
                procs.add_metric([kind], count)
            yield procs


# -- the app's side ------------------------------------------------------------------


def install_metrics(app: StinercutApp) -> ServiceMetrics | None:
    """Create the app's metrics (unless ``METRICS_ENABLED=false``); see :func:`metrics_of`."""
    if not app.settings.metrics_enabled:
        return None
    metrics = ServiceMetrics()
    app.extensions[EXTENSION] = metrics
    return metrics


def metrics_of(app: Any) -> ServiceMetrics | None:
    """The app's metrics, or ``None`` when they are off (or the app has none)."""
    extensions = getattr(app, "extensions", None)
    return None if extensions is None else extensions.get(EXTENSION)


def observe_render(metrics: ServiceMetrics | None, render_path: str, seconds: float) -> None:
    """A render completed in ``seconds`` on ``render_path`` (``metrics``: :func:`metrics_of`
    of the app, ``None`` when metrics are off)."""
    if metrics is not None:
        metrics.render_seconds.labels(render_path or "unknown").observe(seconds)


__all__ = [
    "HttpMetrics",
    "ServiceMetrics",
    "count_ffmpeg",
    "install_metrics",
    "metrics_of",
    "observe_render",
]
