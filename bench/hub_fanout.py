#!/usr/bin/env python3
"""Hub benchmark: this service's hub against the original backend's, in the same run.

Both servers run in processes of their own: ours as the real CLI (``python -m
stinercut_svc serve``, SQLite in a temporary folder, keepalive pings off), the
original as its FastAPI ``/ws`` router on uvicorn the way its ``main.py`` mounts it.
The original is recreated at run time, never committed: its ``backend/`` is
exported (its ``routers/websocket.py``, ``routers/__init__.py``, ``main.py``)
with ``git archive`` from ``--original-src`` (default: the fetched
mirror) into a temporary folder and served from a bench-only venv
(``bench/.venv-original``: fastapi 0.104.1, uvicorn[standard] 0.24.0, websockets 12.0,
its pinned versions). Its ``routers/websocket.py`` imports the video-processing
handlers of other routers; those are replaced by empty stubs (the benchmark never
sends the ``target: backend`` commands that would call them). If the source or the
venv is missing, the original's figures are skipped with a line saying so.

Load: receivers are separate processes (``_wsload.py``: blocking sockets, a minimal
frame parser), split over ``--receiver-procs``; the detector that sends is this
process, with zero-mask frames. One-way latency uses CLOCK_MONOTONIC, which all
processes on the machine share. Server CPU is read from ``/proc/<pid>/stat``.

Runs (each printed with the original's figure where it applies):
  fanout-50   50 frontends x --messages (2000) messages of ~120 B, sent as fast as possible
  fanout-200  200 frontends x messages/4 (same deliveries in total)
  steady      50 frontends, 10,000 deliveries/s (200 messages/s) for --steady-seconds
  stalled     ours only: 8 KiB messages with and without one frontend that never reads

    .venv/bin/python bench/hub_fanout.py [--repeat 1] [--messages 2000]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _wsload import client_frame, handshake, receive_process  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"
MIRROR = Path("/work/.mirror/stinerrd+stinercut3/repo")
ORIGINAL_VENV = ROOT / "bench" / ".venv-original"
CLK_TCK = os.sysconf("SC_CLK_TCK")

ORIGINAL_FILES = ("backend/routers/__init__.py", "backend/routers/websocket.py", "backend/main.py")
ORIGINAL_LAUNCHER = '''
import sys, types
sys.path.insert(0, sys.argv[1])
# Handlers of other routers that routers/websocket.py imports; never called here.
for module, names in {
    "routers.videopart": ["handle_videopart_uploaded"],
    "routers.sound": ["handle_sound_uploaded"],
    "routers.video_detection": ["handle_start_detection", "handle_gopro_copy_completed"],
    "routers.video_splitter": ["handle_video_split"],
    "routers.video_slowmo": ["handle_video_slowmo"],
    "routers.video_transition": ["handle_video_transition"],
    "routers.animated_pax": ["handle_animated_pax_intro"],
    "routers.video_vertical": ["handle_video_vertical"],
}.items():
    stub = types.ModuleType(module)
    for name in names:
        async def handler(*args, **kwargs):
            return {}
        setattr(stub, name, handler)
    sys.modules[module] = stub
import uvicorn
from fastapi import FastAPI
from routers import websocket
app = FastAPI()
app.include_router(websocket.router)   # as main.py does
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[2]), log_level="warning")
'''


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def wait_http(port: int, path: str, process: subprocess.Popen[bytes], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            with urllib.request.urlopen(f"http://{HOST}:{port}{path}", timeout=2):
                return
        except OSError as exc:
            if getattr(exc, "code", None):  # an HTTP error answer: it is up
                return
            time.sleep(0.1)
    raise RuntimeError("server did not come up")


@contextmanager
def ours(workdir: Path) -> Iterator[tuple[int, int]]:
    port = free_port()
    env = {**os.environ, "DATA_DIR": str(workdir / "data"), "SHARED_VIDEO_PATH": str(workdir / "shared"),
           "HOST": HOST, "PORT": str(port), "LOG_LEVEL": "WARNING", "WS_PING_INTERVAL": "0",
           "WS_PING_TIMEOUT": "2"}
    for name in ("REDIS_URL", "DATABASE_URL"):
        env.pop(name, None)
    process = subprocess.Popen([sys.executable, "-m", "stinercut_svc", "serve"], cwd=ROOT, env=env,
                               stdout=subprocess.DEVNULL)
    try:
        wait_http(port, "/", process)
        yield port, process.pid
    finally:
        process.terminate()
        process.wait(15)


@contextmanager
def original(src: Path, workdir: Path) -> Iterator[tuple[int, int] | str]:
    """The original's /ws on uvicorn, or a string saying why it is not available."""
    python = ORIGINAL_VENV / "bin" / "python"
    if not python.exists():
        yield (f"no {ORIGINAL_VENV} (create it: python3 -m venv {ORIGINAL_VENV} && "
               f"{ORIGINAL_VENV}/bin/pip install fastapi==0.104.1 'uvicorn[standard]==0.24.0' "
               "websockets==12.0)")
        return
    target = workdir / "original"
    target.mkdir()
    archive = workdir / "backend.tar"
    try:
        git = ["git", "-C", str(src)]
        with archive.open("wb") as out:
            # Only what is served (the mirror lacks some large blobs, e.g. model weights).
            subprocess.run([*git, "archive", "HEAD", *ORIGINAL_FILES], stdout=out, check=True,
                           stderr=subprocess.PIPE)
        with tarfile.open(archive) as tar:
            tar.extractall(target, filter="data")
    except (subprocess.CalledProcessError, OSError, tarfile.TarError) as exc:
        yield f"original source unavailable at {src}: {exc}"
        return
    launcher = workdir / "run_original.py"
    launcher.write_text(ORIGINAL_LAUNCHER)
    port = free_port()
    process = subprocess.Popen([str(python), str(launcher), str(target / "backend"), str(port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_http(port, "/docs", process)
        yield port, process.pid
    except RuntimeError as exc:
        err = process.stderr.read().decode()[-500:] if process.stderr else ""
        yield f"original did not start: {exc} {err}"
    finally:
        process.terminate()
        process.wait(15)


def run(port: int, pid: int, *, clients: int, messages: int, size: int, rate: float | None,
        procs: int, stalled: bool = False) -> dict[str, Any]:
    ctx = mp.get_context("fork")
    ready, results, go = ctx.Queue(), ctx.Queue(), ctx.Event()
    shares = [clients // procs + (1 if i < clients % procs else 0) for i in range(procs)]
    workers = [ctx.Process(target=receive_process, args=(HOST, port, n, messages, ready, go, results))
               for n in shares if n]
    for w in workers:
        w.start()
    for _ in workers:
        ready.get(timeout=60)
    stall = handshake(HOST, port, "client_type=frontend") if stalled else None
    if stall is not None:
        stall.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sender = handshake(HOST, port, "client_type=detector")
    sender.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    time.sleep(0.3)  # every handshake done on the server side
    pad = "x" * max(0, size - 110)
    go.set()
    cpu0 = cpu_seconds(pid)
    start = time.monotonic()
    for seq in range(messages):
        if rate is not None:
            due = start + seq / rate
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        body = json.dumps({"command": "bench:tick", "target": "frontend",
                           "data": {"seq": seq, "t": time.monotonic(), "pad": pad}},
                          separators=(",", ":")).encode()
        sender.sendall(client_frame(0x1, body))
    summaries = [results.get(timeout=600) for _ in workers]
    cpu = cpu_seconds(pid) - cpu0
    for w in workers:
        w.join(10)
    sender.close()
    if stall is not None:
        stall.close()
    delivered = sum(s["received"] for s in summaries)
    end = max(s["last"] for s in summaries)
    latencies = sorted(x for s in summaries for x in s["latencies"])
    seconds = max(end - start, 1e-9)
    return {
        "clients": clients, "messages": messages, "delivered": delivered,
        "lost": clients * messages - delivered,
        "out_of_order": sum(s["out_of_order"] for s in summaries),
        "rate": delivered / seconds, "seconds": seconds,
        "cpu_us": 1e6 * cpu / delivered if delivered else float("nan"),
        "p50_ms": 1000 * pct(latencies, 50), "p99_ms": 1000 * pct(latencies, 99),
    }


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    return values[min(len(values) - 1, round(p / 100 * (len(values) - 1)))]


def line(name: str, who: str, r: dict[str, Any]) -> str:
    return (f"{name:<11} {who:<8} {r['clients']:>3} clients x {r['messages']:>5}: "
            f"{r['rate']:>9,.0f} deliveries/s, {r['cpu_us']:6.1f} us CPU/delivery, "
            f"p50 {r['p50_ms']:7.1f} ms, p99 {r['p99_ms']:7.1f} ms, "
            f"lost {r['lost']}, out of order {r['out_of_order']}")


def median(runs: list[dict[str, Any]], key: str) -> dict[str, Any]:
    return sorted(runs, key=lambda r: r[key])[len(runs) // 2]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=1, help="interleaved runs (median shown)")
    parser.add_argument("--steady-seconds", type=float, default=5.0)
    parser.add_argument("--receiver-procs", type=int, default=2)
    parser.add_argument("--original-src", type=Path, default=MIRROR)
    parser.add_argument("--skip-original", action="store_true")
    args = parser.parse_args()
    procs = args.receiver_procs
    steady_msgs = int(200 * args.steady_seconds)
    plan: list[tuple[str, dict[str, Any]]] = [
        ("fanout-50", dict(clients=50, messages=args.messages, size=120, rate=None)),
        ("fanout-200", dict(clients=200, messages=args.messages // 4, size=120, rate=None)),
        ("steady", dict(clients=50, messages=steady_msgs, size=120, rate=200.0)),
    ]
    print(f"python {sys.version.split()[0]}; {os.cpu_count()} CPUs; load average "
          f"{os.getloadavg()[0]:.2f}; repeat {args.repeat}; receivers in {procs} processes",
          flush=True)
    results: dict[tuple[str, str], list[dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory(prefix="hub-bench-") as tmp:
        workdir = Path(tmp)
        (workdir / "o").mkdir()
        with ours(workdir / "o") as (port, pid), original(
            args.original_src, workdir
        ) as orig:
            servers: dict[str, tuple[int, int]] = {"ours": (port, pid)}
            if isinstance(orig, str) or args.skip_original:
                print(f"original: not measured ({'skipped' if args.skip_original else orig})")
            else:
                servers["original"] = orig
            for _ in range(args.repeat):
                for name, spec in plan:
                    for who, (p, pid_) in servers.items():
                        r = run(p, pid_, procs=procs, **spec)
                        results.setdefault((name, who), []).append(r)
                        print(line(name, who, r), flush=True)
            # One stalled frontend (ours only: the original awaits each send in turn,
            # so a client that stops reading stalls every other one).
            base8 = run(port, pid, clients=50, messages=args.messages, size=8192, rate=None,
                        procs=procs)
            print(line("8k", "ours", base8), flush=True)
            stall8 = run(port, pid, clients=50, messages=args.messages, size=8192, rate=None,
                         procs=procs, stalled=True)
            print(line("8k+stalled", "ours", stall8), flush=True)
    print("\nsummary (medians):")
    get = {k: median(v, "rate" if k[0] != "steady" else "p99_ms") for k, v in results.items()}
    f50, f200, steady = get[("fanout-50", "ours")], get[("fanout-200", "ours")], get[("steady", "ours")]
    o50, osteady = get.get(("fanout-50", "original")), get.get(("steady", "original"))
    ratio = f" = {f50['rate'] / o50['rate']:.2f}x the original ({o50['rate']:,.0f}/s)" if o50 else ""
    print(f"  fan-out 50 x {args.messages}: {f50['rate']:,.0f} deliveries/s{ratio} "
          f"(target >= 40,000 and >= 2x); CPU {f50['cpu_us']:.1f} us/delivery"
          + (f" vs original {o50['cpu_us']:.1f}" if o50 else "") + " (target <= 10)")
    print(f"  steady 10,000 deliveries/s: p99 {steady['p99_ms']:.1f} ms"
          + (f" vs original {osteady['p99_ms']:.1f} ms" if osteady else "") + " (target <= 20 ms)")
    o200 = get.get(("fanout-200", "original"))
    print(f"  200 clients: {f200['rate']:,.0f} deliveries/s = {f200['rate'] / f50['rate']:.2f}x the "
          f"50-client rate (target >= 0.8)" + (f"; original {o200['rate']:,.0f}/s" if o200 else ""))
    print(f"  stalled client: healthy rate {stall8['rate']:,.0f}/s = "
          f"{stall8['rate'] / base8['rate']:.2f}x without it, lost {stall8['lost']}")
    lost = sum(r["lost"] + r["out_of_order"] for (_, who), rs in results.items() if who == "ours"
               for r in rs) + base8["lost"] + stall8["lost"]
    print(f"  ours lost or reordered in all runs: {lost}")
    shutil.rmtree(workdir, ignore_errors=True)
    return 0 if lost == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
