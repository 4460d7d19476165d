"""Benchmark the REST API on MariaDB: project detail reads and a 1 GB upload.

Run (MariaDB on 127.0.0.1:3306, root with an empty password by default)::

    .venv/bin/python bench/api.py [--database-url mysql://root@127.0.0.1:3306/stinercut_bench_api]
                                  [--requests 4000] [--concurrency 20] [--upload-mib 1024]

It starts the service in a child process (one Hypercorn trio worker, as
production runs), then prints:

* ``GET /api/projects/{uuid}`` for a project with 20 clips at concurrency 20:
  requests/s, p50 and p99 latency;
* a 1 GiB multipart upload over 127.0.0.1: MB/s, next to ``cp`` of the same
  file in the same run (ratio), and the server's peak RSS growth during it.

Only 127.0.0.1 is targeted. The database named in the URL is emptied first.
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pymysql
import trio
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.child_server import serve_in_child  # noqa: E402
from tests.support.media import ffmpeg, make_clip  # noqa: E402
from tests.support.processes import memory_kib, reset_peak  # noqa: E402

MIB = 1024 * 1024
CLIPS = 20
BOUNDARY = "stinercut-bench-boundary"

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


async def bench_detail(url: str, shared: Path, requests: int, concurrency: int) -> None:
    (shared / "uploads" / "bench").mkdir(parents=True, exist_ok=True)
    clip = make_clip(shared / "uploads" / "bench" / "clip.mp4", seconds=1.0)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=60) as http:
        project = (await http.post(f"{url}/api/projects", json={"name": "bench"})).json()["uuid"]
        for _ in range(CLIPS):
            response = await http.post(
                f"{url}/api/projects/{project}/videos",
                json={"path": clip.relative_to(shared).as_posix()},
            )
            response.raise_for_status()
        target = f"{url}/api/projects/{project}"
        detail = (await http.get(target)).json()
        assert len(detail["videos"]) == CLIPS

        for _ in range(100):  # warm the pool and the code paths
            (await http.get(target)).raise_for_status()

        latencies: list[float] = []
        remaining = requests

        async def worker() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                started = time.perf_counter()
                response = await http.get(target)
                latencies.append(time.perf_counter() - started)
                response.raise_for_status()

        started = time.perf_counter()
        async with trio.open_nursery() as nursery:
            for _ in range(concurrency):
                nursery.start_soon(worker)
        elapsed = time.perf_counter() - started
    cuts = statistics.quantiles(latencies, n=100)
    print(f"GET /api/projects/{{uuid}} ({CLIPS} clips), {requests} requests at concurrency {concurrency}:")
    print(
        f"  httpx (this process) {requests / elapsed:8.1f} req/s"
        f"   p50 {cuts[49] * 1000:6.1f} ms   p99 {cuts[98] * 1000:6.1f} ms"
    )
    # The Python load generator needs a core of its own on this 2-core machine;
    # wrk (C) shows what the server itself sustains.
    if shutil.which("wrk"):
        await wrk(target, concurrency)
    else:
        print("  wrk not installed (apt-get install wrk): server-only figure not measured")


async def wrk(target: str, concurrency: int, seconds: int = 10) -> None:
    done = await trio.run_process(
        ["wrk", "-t1", f"-c{concurrency}", f"-d{seconds}s", "--latency", target],
        capture_stdout=True,
    )
    text = done.stdout.decode()
    rate = re.search(r"Requests/sec:\s+([\d.]+)", text)
    p50 = re.search(r"^\s+50%\s+(\S+)", text, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", text, re.M)
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    assert rate and p50 and p99, text
    print(
        f"  wrk ({seconds} s)           {float(rate.group(1)):8.1f} req/s"
        f"   p50 {p50.group(1):>9}   p99 {p99.group(1):>9}"
        f"   errors {non2xx.group(1) if non2xx else 0}"
    )


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
    subprocess.run(["cp", str(source), str(copy)], check=True)
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
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--database-url", default="mysql://root@127.0.0.1:3306/stinercut_bench_api"
    )
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--upload-mib", type=int, default=1024)
    args = parser.parse_args()

    reset_database(args.database_url)
    work = Path(tempfile.mkdtemp(prefix="stinercut-bench-api-"))
    shared = work / "shared"
    try:
        async with serve_in_child(
            DATABASE_URL=args.database_url, SHARED_VIDEO_PATH=str(shared)
        ) as (url, pid):
            await bench_detail(url, shared, args.requests, args.concurrency)
            await bench_upload(url, pid, work, shared, args.upload_mib)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    trio.run(main)
