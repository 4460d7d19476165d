#!/usr/bin/env python3
"""Hub fan-out benchmark: 50 frontends, 1 detector, 2000 messages as fast as it sends.

Starts the service as a subprocess on 127.0.0.1 (SQLite in a temporary folder,
keepalive pings off so no ping traffic mixes in, WS_PING_TIMEOUT=2 so the stalled
client is dropped within the run), connects trio-websocket clients from
this process and prints, per run: delivered/lost, delivered messages per second,
one-way latency p50/p99 (sender and receivers share this process's clock).

Runs:
  1. baseline: small messages (~120 bytes), no stalled client;
  2. baseline-8k: 8 KiB messages, no stalled client (like-for-like reference);
  3. stalled-8k: 8 KiB messages plus one frontend that never reads.
Run 3 is compared with run 2 (and with run 1): the healthy clients' rate and
latency must stay within 20%, and they must lose nothing; the stalled client
should be disconnected (close 1013) instead of slowing anyone down.

    .venv/bin/python bench/hub_fanout.py [--clients 50] [--messages 2000] [--repeat 1]

Every run is bounded (``--run-timeout``); the whole script also stops its server.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import attrs
import httpx
import trio
from trio_websocket import ConnectionClosed, WebSocketConnection, open_websocket_url

ROOT = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"
QUIET_S = 5.0  # after the last send, how long a silent client is waited for


@attrs.define
class Receiver:
    expected: int
    received: int = 0
    latencies: list[float] = attrs.field(factory=list)
    last_at: float = 0.0
    out_of_order: int = 0
    close: str = "open"


@attrs.frozen
class RunResult:
    name: str
    clients: int
    messages: int
    size: int
    delivered: int
    lost: int
    out_of_order: int
    seconds: float
    rate: float
    p50_ms: float
    p99_ms: float
    stalled: str | None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


async def start_server(nursery: trio.Nursery, workdir: Path) -> tuple[str, trio.Process]:
    port = free_port()
    env = {
        **os.environ,
        "DATA_DIR": str(workdir / "data"),
        "SHARED_VIDEO_PATH": str(workdir / "shared"),
        "HOST": HOST,
        "PORT": str(port),
        "LOG_LEVEL": "WARNING",
        "WS_PING_INTERVAL": "0",
        "WS_PING_TIMEOUT": "2",
    }
    env.pop("REDIS_URL", None)
    env.pop("DATABASE_URL", None)
    process: trio.Process = await nursery.start(
        lambda task_status: trio.run_process(
            [sys.executable, "-m", "stinercut_svc", "serve"],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, check=False, task_status=task_status,
        )
    )
    base = f"http://{HOST}:{port}"
    async with httpx.AsyncClient(base_url=base, trust_env=False) as http:
        with trio.fail_after(30):
            while True:
                try:
                    if (await http.get("/")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await trio.sleep(0.1)
    return base, process


async def connected(base: str, frontends: int) -> None:
    async with httpx.AsyncClient(base_url=base, trust_env=False) as http:
        with trio.fail_after(30):
            while (await http.get("/api/ws/clients")).json()["frontend"] != frontends:
                await trio.sleep(0.05)


async def healthy(ws_base: str, rx: Receiver, ready: trio.Event) -> None:
    async with open_websocket_url(f"{ws_base}?client_type=frontend", message_queue_size=256,
                                  max_message_size=4 * 1024 * 1024) as ws:
        ready.set()
        expect = 0
        try:
            while rx.received < rx.expected:
                raw = await ws.get_message()
                now = time.perf_counter()
                data = json.loads(raw)["data"]
                rx.latencies.append(now - data["t"])
                rx.received += 1
                rx.last_at = now
                if data["seq"] != expect:
                    rx.out_of_order += 1
                expect = data["seq"] + 1
        except ConnectionClosed as closed:
            rx.close = f"{closed.reason.code} {closed.reason.reason}"


async def stalled(ws_base: str, done: trio.Event, ready: trio.Event, result: list[str]) -> None:
    # message_queue_size=1: trio-websocket stops reading the socket once one
    # message waits, so the server sees a client that stopped reading.
    async with open_websocket_url(f"{ws_base}?client_type=frontend", message_queue_size=1,
                                  max_message_size=4 * 1024 * 1024) as ws:
        ready.set()
        await done.wait()
        got = 0
        with trio.move_on_after(QUIET_S * 2):
            try:
                while True:
                    await ws.get_message()
                    got += 1
            except ConnectionClosed as closed:
                result.append(f"closed {closed.reason.code} ({closed.reason.reason}) "
                              f"after {got} messages")
                return
        result.append(f"still open after {got} messages")


async def run_once(base: str, name: str, *, clients: int, messages: int, size: int,
                   with_stalled: bool, timeout: float) -> RunResult:
    ws_base = base.replace("http://", "ws://") + "/ws"
    receivers = [Receiver(messages) for _ in range(clients)]
    stall_result: list[str] = []
    finished = trio.Event()
    with trio.fail_after(timeout):
        async with trio.open_nursery() as nursery:
            for rx in receivers:
                ready = trio.Event()
                nursery.start_soon(healthy, ws_base, rx, ready)
                await ready.wait()
            if with_stalled:
                ready = trio.Event()
                nursery.start_soon(stalled, ws_base, finished, ready, stall_result)
                await ready.wait()
            await connected(base, clients + int(with_stalled))
            async with open_websocket_url(f"{ws_base}?client_type=detector") as detector:
                pad = "x" * max(0, size - 110)
                first_send = time.perf_counter()
                await send_all(detector, messages, pad)
                last_send = time.perf_counter()
                # Wait for everyone, or for a quiet spell: what has not come by then is lost.
                while any(rx.received < rx.expected for rx in receivers):
                    newest = max([rx.last_at for rx in receivers] + [last_send])
                    if time.perf_counter() - newest > QUIET_S:
                        break
                    await trio.sleep(0.05)
            if with_stalled:
                # The hub drops it once a write has waited WS_PING_TIMEOUT (2 s here);
                # only then may it read, or reading would make it healthy again.
                with trio.move_on_after(QUIET_S * 2):
                    await connected(base, clients)
            finished.set()
            if not with_stalled:
                nursery.cancel_scope.cancel()
            else:
                # Let the stalled client drain and report, then stop the rest.
                while not stall_result:
                    await trio.sleep(0.05)
                nursery.cancel_scope.cancel()
    delivered = sum(rx.received for rx in receivers)
    latencies = sorted(x for rx in receivers for x in rx.latencies)
    end = max(rx.last_at for rx in receivers) if delivered else time.perf_counter()
    seconds = end - first_send
    return RunResult(
        name=name, clients=clients, messages=messages, size=size,
        delivered=delivered, lost=clients * messages - delivered,
        out_of_order=sum(rx.out_of_order for rx in receivers),
        seconds=seconds, rate=delivered / seconds if seconds > 0 else 0.0,
        p50_ms=1000 * percentile(latencies, 50), p99_ms=1000 * percentile(latencies, 99),
        stalled=stall_result[0] if stall_result else None,
    )


async def send_all(detector: WebSocketConnection, messages: int, pad: str) -> None:
    for seq in range(messages):
        await detector.send_message(json.dumps({
            "command": "bench:tick", "target": "frontend",
            "data": {"seq": seq, "t": time.perf_counter(), "pad": pad},
        }))


def percentile(values: list[float], pct: float) -> float:
    if not values:
        return float("nan")
    k = min(len(values) - 1, max(0, round(pct / 100 * (len(values) - 1))))
    return values[k]


def show(r: RunResult) -> None:
    print(f"{r.name:<12} {r.clients:>3} clients x {r.messages} msgs of ~{r.size} B: "
          f"delivered {r.delivered}, lost {r.lost}, out of order {r.out_of_order}; "
          f"{r.rate:,.0f} msg/s over {r.seconds:.2f} s; latency p50 {r.p50_ms:.1f} ms, "
          f"p99 {r.p99_ms:.1f} ms" + (f"; stalled client: {r.stalled}" if r.stalled else ""),
          flush=True)


def compare(label: str, run: RunResult, ref: RunResult, *, verdict: bool = True) -> bool:
    """Healthy clients may be faster, never more than 20% slower, and lose nothing."""
    rate = run.rate / ref.rate
    p50 = run.p50_ms / ref.p50_ms
    p99 = run.p99_ms / ref.p99_ms
    ok = rate >= 0.8 and p50 <= 1.2 and p99 <= 1.2 and run.lost == 0
    outcome = ("within 20%" if ok else "OUTSIDE 20%") if verdict else "informational"
    print(f"{run.name} vs {label}: rate x{rate:.2f}, p50 x{p50:.2f}, p99 x{p99:.2f}, "
          f"healthy lost {run.lost} -> {outcome}")
    return ok


def median_run(runs: list[RunResult]) -> RunResult:
    return sorted(runs, key=lambda r: r.rate)[len(runs) // 2]


async def main(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory(prefix="hub-bench-") as tmp:
        async with trio.open_nursery() as nursery:
            base, process = await start_server(nursery, Path(tmp))
            print(f"server {base} (pid {process.pid}); python {sys.version.split()[0]}; "
                  f"{os.cpu_count()} CPUs; repeat {args.repeat} (median by rate)", flush=True)
            plan = [("baseline", 120, False), ("baseline-8k", 8192, False),
                    ("stalled-8k", 8192, True)]
            results: dict[str, list[RunResult]] = {name: [] for name, _, _ in plan}
            try:
                for _ in range(args.repeat):
                    for name, size, with_stalled in plan:
                        result = await run_once(base, name, clients=args.clients,
                                                messages=args.messages, size=size,
                                                with_stalled=with_stalled,
                                                timeout=args.run_timeout)
                        show(result)
                        results[name].append(result)
                        await connected(base, 0)  # everyone gone before the next run
            finally:
                process.terminate()
            median = {name: median_run(runs) for name, runs in results.items()}
            if args.repeat > 1:
                print("medians:")
                for result in median.values():
                    show(result)
            ok = compare("baseline-8k", median["stalled-8k"], median["baseline-8k"])
            # Different message size, so not a like-for-like check:
            compare("baseline", median["stalled-8k"], median["baseline"], verdict=False)
            lost = sum(r.lost for runs in results.values() for r in runs)
            return 0 if ok and lost == 0 else 1


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=1, help="runs of each kind (median shown)")
    parser.add_argument("--run-timeout", type=float, default=120.0)
    return parser.parse_args()


if __name__ == "__main__":
    sys.exit(trio.run(main, parse_args()))
