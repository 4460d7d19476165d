"""Benchmark the REST API against its framework's floor: project detail, access log, health.

Run (MariaDB on 127.0.0.1:3306, root with an empty password by default; wrk from
``apt-get install wrk``)::

    .venv/bin/python bench/api.py [--database-url mysql://root@127.0.0.1:3306/stinercut_bench_api]
                                  [--backends mariadb,sqlite] [--rounds 3] [--seconds 8]
                                  [--connections 20] [--upload-mib 1024] [--metrics-only]

Every server is a child process started the way production starts it (the real
CLI, ``python -m stinercut_svc serve``, one Hypercorn trio worker), next to a bare
Quart-Trio "hello" app on Hypercorn (``bench/hello_floor.py``): the floor no route
of this framework stack can beat. Per backend three services share one database:
``LOG_LEVEL=WARNING`` (no access log), the same with ``METRICS_ENABLED=false``
(no HTTP metrics, no ``/metrics``; request ids stay on), and ``LOG_LEVEL=INFO``
(access log written to a file). The load generator is wrk (C, one thread) at
``--connections``; runs are interleaved round by round (the order rotates) and the
figures printed are medians over the rounds, ratios taken within each round. It prints:

* ``GET /api/projects/{uuid}`` (20 clips, 6 finished jobs): req/s, p50/p99, server
  CPU per request, and the ratio to the floor measured in the same round;
* the same reads spread at random over 20 projects (a wrk Lua script), where
  concurrent reads rarely share a fetch: the per-request cost without sharing;
* the metrics' cost: req/s with metrics (the default) over req/s with
  ``METRICS_ENABLED=false``, and the same for server CPU per request
  (``--metrics-only`` runs just this comparison and the floor);
* the access log's cost: req/s at ``INFO`` over req/s at ``WARNING``;
* ``GET /api/health`` at ``--connections``: p99 and the count of non-200 answers,
  alone and while the same service is loaded with project reads;
* a ``--upload-mib`` multipart upload (0 skips it): MB/s next to ``cp`` of the same
  file in the same run, and the server's peak RSS growth during it.

The machine is usually shared (2 cores): absolute figures move with other load,
ratios much less. Only 127.0.0.1 is targeted. The MariaDB database named in the URL
is emptied first.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

import attrs
import httpx
import pymysql
import trio
from sqlalchemy import create_engine, inspect
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from stinercut_svc.models import Job, JobStatus, Project, Video  # noqa: E402
from tests.support.child_server import serve_in_child  # noqa: E402
from tests.support.media import ffmpeg, make_clip  # noqa: E402
from tests.support.processes import memory_kib, reset_peak  # noqa: E402

MIB = 1024 * 1024
CLIPS = 20
JOBS = 6
#: Projects the spread reads go over (each a copy of the first).
SPREAD = 20
BOUNDARY = "stinercut-bench-boundary"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@attrs.frozen
class Server:
    name: str
    url: str  # the URL wrk loads
    pid: int
    spread: tuple[str, ...] = ()  # paths of SPREAD projects, for reads spread over them


@attrs.frozen
class Run:
    rate: float
    p50_ms: float
    p99_ms: float
    requests: int
    non2xx: int
    errors: int
    cpu_ms_per_request: float


def reset_database(url: str) -> None:
    parsed = make_url(url)
    assert parsed.host in ("127.0.0.1", "localhost"), "benchmarks only target 127.0.0.1"
    conn = pymysql.connect(
        host=parsed.host, port=parsed.port or 3306, user=parsed.username or "root",
        password=parsed.password or "",
    )  # fmt: skip
    with conn, conn.cursor() as cursor:
        cursor.execute(f"DROP DATABASE IF EXISTS `{parsed.database}`")
        cursor.execute(
            f"CREATE DATABASE `{parsed.database}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
        )


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (from /proc)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def _ms(value: str) -> float:
    number = float(re.match(r"[\d.]+", value).group())  # type: ignore[union-attr]
    unit = value.lstrip("0123456789.")
    return number * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}[unit]


async def wrk(
    server: Server, connections: int, seconds: int, path: str = "", script: Path | None = None
) -> Run:
    """One wrk run against ``server`` (``path`` overrides its URL's path)."""
    url = server.url if not path else re.sub(r"^(http://[^/]+).*$", r"\1", server.url) + path
    cpu_before = cpu_seconds(server.pid)
    extra = ["-s", str(script)] if script else []
    done = await trio.run_process(
        ["wrk", "-t1", f"-c{connections}", f"-d{max(seconds, 1)}s", "--latency", *extra, url],
        capture_stdout=True,
    )
    cpu = cpu_seconds(server.pid) - cpu_before
    text = done.stdout.decode()
    rate = re.search(r"Requests/sec:\s+([\d.]+)", text)
    total = re.search(r"(\d+) requests in", text)
    p50 = re.search(r"^\s+50%\s+(\S+)", text, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", text, re.M)
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    assert rate and total and p50 and p99, text
    requests = int(total.group(1))
    return Run(
        rate=float(rate.group(1)),
        p50_ms=_ms(p50.group(1)),
        p99_ms=_ms(p99.group(1)),
        requests=requests,
        non2xx=int(non2xx.group(1)) if non2xx else 0,
        errors=sum(int(g) for g in errors.groups()) if errors else 0,
        cpu_ms_per_request=cpu * 1000 / max(requests, 1),
    )


@asynccontextmanager
async def floor_server() -> AsyncIterator[Server]:
    port = _free_port()
    process = await trio.lowlevel.open_process(
        [sys.executable, str(ROOT / "bench" / "hello_floor.py"), str(port)]
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        async with httpx.AsyncClient() as http:
            with trio.fail_after(30):
                while True:
                    try:
                        if (await http.get(url)).status_code == 200:
                            break
                    except httpx.TransportError:
                        await trio.sleep(0.1)
        yield Server("floor", url, process.pid)
    finally:
        process.terminate()
        await process.wait()


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def seed(url: str, shared: Path, database_url: str) -> list[str]:
    """A project with CLIPS registered clips (through the API) and JOBS finished jobs,
    plus SPREAD - 1 copies of it made in the database (for reads spread over projects)."""
    folder = shared / "uploads" / "bench"
    folder.mkdir(parents=True, exist_ok=True)
    clip = folder / "clip.mp4"
    if not clip.exists():
        make_clip(clip, seconds=1.0)
    async with httpx.AsyncClient(timeout=60) as http:
        project = (
            await http.post(
                f"{url}/api/projects",
                json={"name": "Tandem Ünal", "settings": {"audio_mode": "mix"}},
            )
        ).json()["uuid"]
        for _ in range(CLIPS):
            response = await http.post(
                f"{url}/api/projects/{project}/videos", json={"path": "uploads/bench/clip.mp4"}
            )
            response.raise_for_status()

    def add_jobs() -> None:
        engine = create_engine(database_url.replace("mysql://", "mysql+pymysql://", 1))
        with Session(engine) as session, session.begin():
            owner = session.query(Project).filter(Project.uuid == project).one()
            states = [JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED]
            for index in range(JOBS):
                status = states[index % len(states)]
                session.add(
                    Job(
                        project_id=owner.id,
                        status=status,
                        progress=100 if status is JobStatus.COMPLETED else 40,
                        output_path=f"output/{project}/job{index}.mp4"
                        if status is JobStatus.COMPLETED
                        else None,
                        error_message="ffmpeg exited with code 1"
                        if status is JobStatus.FAILED
                        else None,
                        options=json.dumps({"audio_mode": "mix", "output": {"crf": 20}}),
                        render_path="reencode",
                    )
                )
            session.flush()
            clips = session.query(Video).filter(Video.project_id == owner.id).all()
            jobs = session.query(Job).filter(Job.project_id == owner.id).all()
            for index in range(1, SPREAD):
                copy = Project(name=f"{owner.name} {index}", settings=owner.settings)
                session.add(copy)
                session.flush()
                copies.append(copy.uuid)
                for clip in clips:
                    session.add(Video(**_fields(clip, project_id=copy.id)))
                for job in jobs:
                    session.add(Job(**_fields(job, project_id=copy.id)))
        engine.dispose()

    copies: list[str] = [project]
    await trio.to_thread.run_sync(add_jobs)
    return copies


def variants(args: argparse.Namespace) -> list[tuple[str, str]]:
    """(LOG_LEVEL, metrics on/off) of the services started per backend."""
    measured = [("WARNING", "metrics"), ("WARNING", "no-metrics")]
    return measured if args.metrics_only else [*measured, ("INFO", "metrics")]


def _fields(row: object, **override: object) -> dict[str, object]:
    """A row's column values without its identity, for a copy."""
    skip = {"id", "uuid"}
    values = {
        attr.key: getattr(row, attr.key)
        for attr in inspect(type(row)).column_attrs
        if attr.key not in skip
    }
    return {**values, **override}


async def bench_http(args: argparse.Namespace, work: Path) -> None:
    conns, seconds = args.connections, args.seconds
    half = max(seconds // 2, 1)
    async with AsyncExitStack() as stack:
        servers: list[Server] = [await stack.enter_async_context(floor_server())]
        for backend in args.backends:
            database_url = (
                args.database_url
                if backend == "mariadb"
                else f"sqlite:///{work / 'bench.sqlite3'}"
            )
            if backend == "mariadb":
                reset_database(database_url)
            shared = work / f"shared-{backend}"
            projects: list[str] = []
            for level, metrics in variants(args):
                url, pid = await stack.enter_async_context(
                    serve_in_child(
                        log_path=work / f"{backend}-{level}-{metrics}.log",
                        DATABASE_URL=database_url,
                        SHARED_VIDEO_PATH=str(shared),
                        LOG_LEVEL=level,
                        METRICS_ENABLED="true" if metrics == "metrics" else "false",
                    )
                )
                if not projects:
                    projects = await seed(url, shared, database_url)
                servers.append(
                    Server(
                        f"{backend} {level}" + (" no-metrics" if metrics != "metrics" else ""),
                        f"{url}/api/projects/{projects[0]}",
                        pid,
                        tuple(f"/api/projects/{p}" for p in projects),
                    )
                )
        async with httpx.AsyncClient() as http:  # one check that answers are what we load
            for server in servers[1:]:
                body = (await http.get(server.url)).json()
                assert "videos" in body, (server.name, body)
                assert len(body["videos"]) == CLIPS and len(body["jobs"]) == JOBS, body
        for server in servers:  # warm-up
            await wrk(server, conns, 1)

        runs: dict[str, list[Run]] = {s.name: [] for s in servers}
        spread: dict[str, list[Run]] = {}
        health: dict[str, list[Run]] = {}
        loaded: dict[str, list[Run]] = {}
        root: dict[str, list[Run]] = {}
        for round_no in range(args.rounds):
            shift = round_no % len(servers)
            for server in servers[shift:] + servers[:shift]:
                runs[server.name].append(await wrk(server, conns, seconds))
            if args.metrics_only:  # the cheapest app route too: the worst case for a fixed cost
                for server in servers[shift:] + servers[:shift]:
                    if server.name != "floor":
                        root.setdefault(server.name, []).append(
                            await wrk(server, conns, seconds, "/")
                        )
            for server in servers[1:]:
                if not server.name.endswith("WARNING") or args.metrics_only:
                    continue
                script = work / f"spread-{server.pid}.lua"
                paths = ", ".join(f'"{p}"' for p in server.spread)
                script.write_text(
                    f"local paths = {{{paths}}}\n"
                    "request = function()\n"
                    "  return wrk.format(nil, paths[math.random(#paths)])\n"
                    "end\n"
                )
                spread.setdefault(server.name, []).append(
                    await wrk(server, conns, seconds, script=script)
                )
                health.setdefault(server.name, []).append(
                    await wrk(server, conns, half, "/api/health")
                )
                # Health while the same service is busy with project reads.
                results: list[Run] = []

                async def load(srv: Server = server, out: list[Run] = results) -> None:
                    out.append(await wrk(srv, conns, half + 1))

                async with trio.open_nursery() as nursery:
                    nursery.start_soon(load)
                    await trio.sleep(0.5)
                    loaded.setdefault(server.name, []).append(
                        await wrk(server, conns, half, "/api/health")
                    )
            print(f"  round {round_no + 1}/{args.rounds} done", file=sys.stderr)

    def med(values: list[float]) -> float:
        return statistics.median(values)

    def ratios(name: str, base: str) -> list[float]:
        return [a.rate / b.rate for a, b in zip(runs[name], runs[base], strict=True)]

    floor = runs["floor"]
    print(
        f"GET /api/projects/{{uuid}} ({CLIPS} clips, {JOBS} jobs), wrk -c{conns} "
        f"{seconds:g} s x {args.rounds} interleaved rounds, medians:"
    )
    print(
        f"  {'floor: bare Quart-Trio hello':34s} {med([r.rate for r in floor]):8.1f} req/s"
        f"   p50 {med([r.p50_ms for r in floor]):6.1f} ms  p99 {med([r.p99_ms for r in floor]):6.1f} ms"
        f"   server CPU {med([r.cpu_ms_per_request for r in floor]):.2f} ms/req"
    )
    for name, series in runs.items():
        if name == "floor":
            continue
        line = (
            f"  {name:34s} {med([r.rate for r in series]):8.1f} req/s"
            f"   p50 {med([r.p50_ms for r in series]):6.1f} ms  p99 {med([r.p99_ms for r in series]):6.1f} ms"
            f"   server CPU {med([r.cpu_ms_per_request for r in series]):.2f} ms/req"
            f"   ratio to floor {med(ratios(name, 'floor')):.2f}"
        )
        if sum(r.non2xx + r.errors for r in series):
            line += f"   NON-2XX/ERRORS {sum(r.non2xx + r.errors for r in series)}"
        print(line)
    if spread:
        print(
            f"  the same reads spread at random over {SPREAD} projects (little sharing), ratio"
            " to the floor of the same round:"
        )
    for name, series in spread.items():
        each = [a.rate / b.rate for a, b in zip(series, floor, strict=True)]
        print(
            f"  {name:34s} {med([r.rate for r in series]):8.1f} req/s"
            f"   p50 {med([r.p50_ms for r in series]):6.1f} ms  p99 {med([r.p99_ms for r in series]):6.1f} ms"
            f"   server CPU {med([r.cpu_ms_per_request for r in series]):.2f} ms/req"
            f"   ratio to floor {med(each):.2f}"
        )
    print(
        "metrics (METRICS_ENABLED=true, the default) over METRICS_ENABLED=false, both at"
        " LOG_LEVEL=WARNING, same round, medians:"
    )
    for backend in args.backends:
        each = ratios(f"{backend} WARNING", f"{backend} WARNING no-metrics")
        cpu = [
            a.cpu_ms_per_request / b.cpu_ms_per_request
            for a, b in zip(
                runs[f"{backend} WARNING"], runs[f"{backend} WARNING no-metrics"], strict=True
            )
        ]
        print(
            f"  {backend:8s} req/s ratio {med(each):.3f} (cost {100 * (1 - med(each)):.1f} %;"
            f" rounds {', '.join(f'{r:.3f}' for r in each)});"
            f" server CPU per request ratio {med(cpu):.3f}"
            f" (rounds {', '.join(f'{r:.3f}' for r in cpu)})"
        )
    for backend in args.backends if root else ():
        on, off = root[f"{backend} WARNING"], root[f"{backend} WARNING no-metrics"]
        each = [a.rate / b.rate for a, b in zip(on, off, strict=True)]
        cpu = [a.cpu_ms_per_request / b.cpu_ms_per_request for a, b in zip(on, off, strict=True)]
        print(
            f"  {backend:8s} GET / (no database): {med([r.rate for r in on]):.0f} vs"
            f" {med([r.rate for r in off]):.0f} req/s, ratio {med(each):.3f}"
            f" (rounds {', '.join(f'{r:.3f}' for r in each)}); server CPU per request"
            f" {med([r.cpu_ms_per_request for r in on]) * 1000:.0f} vs"
            f" {med([r.cpu_ms_per_request for r in off]) * 1000:.0f} us, ratio {med(cpu):.3f}"
        )
    observe_us, hook_us = await metrics_work_us(work)
    print(
        f"  metrics work per request, in-process, medians of 7 x 20000: counter+histogram"
        f" {observe_us:.2f} us + route-template hook {hook_us:.2f} us = {observe_us + hook_us:.2f} us"
    )
    for backend in args.backends:
        base = med([r.cpu_ms_per_request for r in runs[f"{backend} WARNING no-metrics"]]) * 1000
        print(
            f"  {backend:8s} = {100 * (observe_us + hook_us) / base:.2f} % of the server CPU per"
            f" request without metrics ({base:.0f} us, same run)"
        )
    if args.metrics_only:
        return
    print("access log (LOG_LEVEL=INFO) over no access log (WARNING), same round, medians:")
    for backend in args.backends:
        each = ratios(f"{backend} INFO", f"{backend} WARNING")
        cpu = [
            a.cpu_ms_per_request / b.cpu_ms_per_request
            for a, b in zip(runs[f"{backend} INFO"], runs[f"{backend} WARNING"], strict=True)
        ]
        print(
            f"  {backend:8s} req/s ratio {med(each):.2f} (cost {100 * (1 - med(each)):.0f} %;"
            f" rounds {', '.join(f'{r:.2f}' for r in each)});"
            f" server CPU per request ratio {med(cpu):.2f}"
            f" (rounds {', '.join(f'{r:.2f}' for r in cpu)})"
        )
    print(f"GET /api/health, wrk -c{conns} {half} s per round:")
    for name in health:
        for label, series in (("alone", health[name]), ("under project load", loaded[name])):
            bad = sum(r.non2xx + r.errors for r in series)
            total = sum(r.requests for r in series)
            print(
                f"  {name:16s} {label:19s} {med([r.rate for r in series]):8.1f} req/s"
                f"   p50 {med([r.p50_ms for r in series]):6.2f} ms"
                f"   p99 {med([r.p99_ms for r in series]):6.2f} ms (worst round"
                f" {max(r.p99_ms for r in series):.2f})   non-200 {bad} of {total}"
            )


async def metrics_work_us(work: Path) -> tuple[float, float]:
    """What metrics add to one request, measured on the code itself (steadier than req/s
    on a shared machine): the counter and histogram update, and the hook that records
    the route template, each timed over many calls."""
    from stinercut_svc.access_log import _route_before
    from stinercut_svc.app import create_app
    from stinercut_svc.config import Settings
    from stinercut_svc.metrics import ServiceMetrics

    calls = 20_000
    http = ServiceMetrics().http
    app = create_app(
        Settings(database_url=f"sqlite:///{work / 'micro.sqlite3'}", shared_video_path=work / "micro")
    )
    observe: list[float] = []
    hook: list[float] = []
    async with app.test_request_context("/api/projects/00000000-0000-4000-8000-000000000000"):
        for _ in range(7):
            started = time.perf_counter()
            for _ in range(calls):
                http.observe("GET", "/api/projects/<uuid>", 200, 0.004)
            observe.append((time.perf_counter() - started) / calls * 1e6)
            started = time.perf_counter()
            for _ in range(calls):
                await _route_before()
            hook.append((time.perf_counter() - started) / calls * 1e6)
    return statistics.median(observe), statistics.median(hook)


async def bench_upload(url: str, pid: int, work: Path, shared: Path, size_mib: int) -> None:
    source = work / "camera.mp4"
    plain = make_clip(work / "plain.mp4", seconds=1.0)
    ffmpeg("-i", str(plain), "-c", "copy", "-movflags", "+faststart", str(source))
    zeros = bytes(MIB)
    with source.open("ab") as handle:
        for _ in range(size_mib):
            handle.write(zeros)
    size = source.stat().st_size

    copy = shared / "temp" / "cp-baseline.mp4"
    started = time.perf_counter()
    await trio.run_process(["cp", str(source), str(copy)])
    cp_seconds = time.perf_counter() - started
    copy.unlink()

    head = (
        f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; "
        f"filename=\"camera.mp4\"\r\nContent-Type: video/mp4\r\n\r\n"
    ).encode()
    tail = f"\r\n--{BOUNDARY}--\r\n".encode()

    async def body():  # type: ignore[no-untyped-def]
        yield head
        async with await trio.open_file(source, "rb") as handle:
            while chunk := await handle.read(MIB):
                yield chunk
        yield tail

    async with httpx.AsyncClient(timeout=600) as http:
        project = (await http.post(f"{url}/api/projects", json={"name": "upload"})).json()["uuid"]
        reset_peak(pid)
        before = memory_kib(pid)
        started = time.perf_counter()
        response = await http.post(
            f"{url}/api/projects/{project}/videos",
            content=body(),
            headers={
                "Content-Type": f"multipart/form-data; boundary={BOUNDARY}",
                "Content-Length": str(len(head) + size + len(tail)),
            },
        )
        upload_seconds = time.perf_counter() - started
        after = memory_kib(pid)
    response.raise_for_status()
    stored = shared / response.json()["path"]
    assert stored.stat().st_size == size
    upload_rate = size / MIB / upload_seconds
    cp_rate = size / MIB / cp_seconds
    print(f"upload of {size / MIB:.0f} MiB (multipart, one request, incl. ffprobe + thumbnail):")
    print(f"  upload {upload_rate:8.1f} MB/s   cp {cp_rate:8.1f} MB/s   ratio {upload_rate / cp_rate:.2f}")
    growth = (after["VmHWM"] - before["VmRSS"]) / 1024
    print(f"  server peak RSS growth {growth:.1f} MiB (RSS before {before['VmRSS'] / 1024:.1f} MiB)")


async def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--database-url", default="mysql://root@127.0.0.1:3306/stinercut_bench_api"
    )
    parser.add_argument("--backends", default="mariadb,sqlite", type=lambda s: s.split(","))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--connections", type=int, default=20)
    parser.add_argument("--upload-mib", type=int, default=1024)
    parser.add_argument(
        "--metrics-only",
        action="store_true",
        help="only the metrics comparison (floor, metrics on, METRICS_ENABLED=false; no upload)",
    )
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is not installed (apt-get install wrk)")
    unknown = set(args.backends) - {"mariadb", "sqlite"}
    if unknown:
        sys.exit(f"unknown backend(s): {', '.join(sorted(unknown))}")

    load = os.getloadavg()
    print(
        f"machine: {os.cpu_count()} cores, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
        " at start (other work on the machine moves absolute figures; ratios are same-round)"
    )
    work = Path(tempfile.mkdtemp(prefix="stinercut-bench-api-"))
    try:
        await bench_http(args, work)
        if args.upload_mib and not args.metrics_only:
            reset_database(args.database_url)
            shared = work / "shared-upload"
            async with serve_in_child(
                DATABASE_URL=args.database_url, SHARED_VIDEO_PATH=str(shared)
            ) as (url, pid):
                await bench_upload(url, pid, work, shared, args.upload_mib)
        print(f"load average at end {os.getloadavg()[0]:.2f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    trio.run(main)
