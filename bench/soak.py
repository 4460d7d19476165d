#!/usr/bin/env python3
"""Soak: WebSocket clients connecting and leaving for minutes; does the server's RSS plateau?

The service runs as the real CLI in its own process (SQLite in a temporary
folder). ``--procs`` load processes each keep opening ``--clients / procs``
WebSocket clients (raw sockets, minimal handshake), let each receive one
published message, and close them: half with a close frame, half by dropping
the TCP connection. Every ``--every`` seconds it prints the server's RSS, the
clients it counts and the rounds done; at the end, RSS growth over the second
half of the run (a plateau is what a leak-free server shows after warm-up).

``--tracemalloc`` starts the server with ``STINERCUT_TRACEMALLOC=1``: it then logs
the top allocation growth since start-up once a minute (to this script's output).

    .venv/bin/python bench/soak.py [--minutes 10] [--clients 1000] [--tracemalloc]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _wsload import client_frame, handshake  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def get_json(port: int, path: str) -> Any:
    with urllib.request.urlopen(f"http://{HOST}:{port}{path}", timeout=10) as answer:
        return json.loads(answer.read())


def churn(port: int, clients: int, until: float, rounds: Any) -> None:
    """Open ``clients`` clients, read until each saw a frame (or 5 s), close; repeat."""
    while time.monotonic() < until:
        socks = []
        for i in range(clients):
            kind = "frontend" if i % 4 else "detector"
            try:
                socks.append(handshake(HOST, port, f"client_type={kind}"))
            except OSError:
                break
        if socks:
            # One message to everyone: the last client asks the hub (hub:ping -> hub:pong).
            for sock in socks:
                sock.sendall(client_frame(0x1, b'{"command":"hub:ping"}'))
            for sock in socks:
                sock.settimeout(5)
                try:
                    sock.recv(4096)
                except OSError:
                    pass
        for i, sock in enumerate(socks):
            try:
                if i % 2:
                    sock.sendall(client_frame(0x8, b"\x03\xe8"))
            except OSError:
                pass
            sock.close()
        with rounds.get_lock():
            rounds.value += 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--procs", type=int, default=2)
    parser.add_argument("--every", type=float, default=30.0, help="seconds between samples")
    parser.add_argument("--tracemalloc", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="soak-") as tmp:
        with socket.socket() as probe:
            probe.bind((HOST, 0))
            port = probe.getsockname()[1]
        env = {**os.environ, "DATA_DIR": f"{tmp}/data", "SHARED_VIDEO_PATH": f"{tmp}/shared",
               "HOST": HOST, "PORT": str(port), "LOG_LEVEL": "WARNING",
               "WS_MAX_CLIENTS": str(args.clients * 2)}
        for name in ("REDIS_URL", "DATABASE_URL"):
            env.pop(name, None)
        if args.tracemalloc:
            env["STINERCUT_TRACEMALLOC"] = "1"
        server = subprocess.Popen([sys.executable, "-m", "stinercut_svc", "serve"], cwd=ROOT,
                                  env=env, stdout=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    get_json(port, "/")
                    break
                except OSError:
                    if time.monotonic() > deadline or server.poll() is not None:
                        raise SystemExit("the service did not start") from None
                    time.sleep(0.2)
            start = time.monotonic()
            until = start + 60 * args.minutes
            rounds = mp.get_context("fork").Value("i", 0)
            per = args.clients // args.procs
            workers = [mp.get_context("fork").Process(target=churn, args=(port, per, until, rounds))
                       for _ in range(args.procs)]
            print(f"server pid {server.pid}; {args.procs} x {per} clients churning for "
                  f"{args.minutes:g} min; load average {os.getloadavg()[0]:.2f}", flush=True)
            print(f"{'t (s)':>7} {'RSS MiB':>8} {'clients':>8} {'rounds':>7} {'connections':>12}",
                  flush=True)
            samples: list[tuple[float, float]] = [(0.0, rss_mib(server.pid))]
            print(f"{0:7.0f} {samples[0][1]:8.1f} {0:8d} {0:7d}", flush=True)
            for w in workers:
                w.start()
            while any(w.is_alive() for w in workers):
                time.sleep(min(args.every, max(1.0, until - time.monotonic() + 1)))
                t = time.monotonic() - start
                rss = rss_mib(server.pid)
                samples.append((t, rss))
                try:
                    total = str(get_json(port, "/api/ws/clients")["total"])
                except OSError as exc:  # reported, not fatal: the next sample tries again
                    total = f"({type(exc).__name__})"
                print(f"{t:7.0f} {rss:8.1f} {total:>8} {rounds.value:7d} "
                      f"{rounds.value * per:12d}", flush=True)
            for w in workers:
                w.join()
            time.sleep(3)  # let the last closes finish
            counts = get_json(port, "/api/ws/clients")
            final = rss_mib(server.pid)
            half = [rss for t, rss in samples if t >= samples[-1][0] / 2]
            print(f"after the churn: {counts['total']} clients registered, RSS {final:.1f} MiB; "
                  f"{rounds.value * per} connections in total")
            if len(half) >= 2:
                growth = half[-1] - half[0]
                print(f"RSS over the second half: {half[0]:.1f} -> {half[-1]:.1f} MiB "
                      f"({growth:+.1f} MiB, {100 * growth / half[0]:+.1f} %); peak "
                      f"{max(r for _, r in samples):.1f} MiB")
        finally:
            server.terminate()
            server.wait(20)
    return 0


if __name__ == "__main__":
    sys.exit(main())
