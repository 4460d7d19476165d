#!/usr/bin/env python3
"""Redis bridge benchmark: CPU per routed message, and two instances against one.

Starts a private ``redis-server`` on a free port and three services through the real
CLI (``python -m stinercut_svc serve``, each its own process, SQLite in a temporary
folder, keepalive pings off): ``plain`` (no ``REDIS_URL``), and ``A`` and ``B``
sharing the private Redis. Receivers are minimal WebSocket readers (raw sockets,
frames counted, not decoded) so that the load generator stays cheap.

1. Bridge CPU: one detector sends ``--cpu-messages`` small messages to one frontend,
   on ``plain`` and on ``A`` (the same load). Server CPU (all threads, from
   ``/proc/PID/task/*/schedstat``) with Redis minus without, divided by the
   messages, is what the bridge costs to *send* one routed message (envelope,
   XADD, reading its own entry back). ``B`` has no clients; its CPU over the same
   run, divided by the messages, is what *receiving* one costs.
2. Scale-out: 50 frontends, detectors sending ``--messages`` messages as fast as they
   can. One instance (``plain``, all 50 clients) against two instances (25 clients on
   ``A``, 25 on ``B``), with the one detector on ``A``, and with one detector on each:
   deliveries per second and their ratio, plus a *CPU-projected* ratio (server CPU of
   the one instance divided by that of the busier of the two, for the same
   deliveries): what two instances with a core each would give. On a machine shared
   with other work the measured rate depends on the scheduler; the projection less so.

    .venv/bin/python bench/hub_backplane.py [--repeat 3] [--messages 2000] [--clients 50]

Runs alternate (plain, Redis, plain, ...) and medians are printed; the machine is
shared, so compare ratios from one run, not absolute figures across runs.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

import attrs
import httpx
import trio

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.child_server import serve_in_child, wait_ready  # noqa: E402
from tests.support.redis_server import redis_server  # noqa: E402

HOST = "127.0.0.1"
QUIET_S = 5.0  # a receiver that got nothing for this long has lost the rest


def coredis_tree(dest: Path) -> str | None:
    """The service as it was just before the bridge dropped coredis, unpacked into
    ``dest`` (``git archive``, read-only for the repository); its commit, or None."""
    found = subprocess.run(
        ["git", "-C", str(ROOT), "log", "-1", "--format=%H", "-S", "import coredis",
         "--", "stinercut_svc/backplane.py"],
        capture_output=True, text=True, check=False,
    ).stdout.strip()
    if not found:
        return None
    # The newest commit before that one whose hub is importable (a commit in between
    # may hold a half-moved hub package).
    candidates = subprocess.run(
        ["git", "-C", str(ROOT), "rev-list", "--max-count=50", f"{found}^"],
        capture_output=True, text=True, check=True,
    ).stdout.split()
    for rev in candidates:
        for path in ("stinercut_svc/hub.py", "stinercut_svc/hub/__init__.py"):
            exists = subprocess.run(
                ["git", "-C", str(ROOT), "cat-file", "-e", f"{rev}:{path}"], capture_output=True
            )
            if exists.returncode == 0:
                break
        else:
            continue
        break
    else:
        return None
    dest.mkdir(parents=True)
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", rev, "stinercut_svc"], capture_output=True, check=True
    )
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive.stdout, check=True)
    return rev


@asynccontextmanager
async def serve_tree(tree: Path, **env: str) -> AsyncIterator[tuple[str, int]]:
    """Like ``serve_in_child``, but the package is imported from ``tree`` (its cwd)."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port = int(sock.getsockname()[1])
    environ = {**os.environ, "HOST": HOST, "PORT": str(port), "LOG_LEVEL": "WARNING",
               "PYTHONPATH": str(tree), **env}
    process = await trio.lowlevel.open_process(
        [sys.executable, "-m", "stinercut_svc", "serve"], env=environ, cwd=str(tree),
        stdout=subprocess.DEVNULL,
    )
    url = f"http://{HOST}:{port}"
    try:
        await wait_ready(url, process)
        yield url, process.pid
    finally:
        process.terminate()
        with trio.move_on_after(10):
            await process.wait()
        process.kill()
        await process.wait()


@attrs.frozen
class Service:
    name: str
    url: str
    pid: int

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])


def cpu_seconds(pid: int) -> float:
    """User + system CPU of ``pid`` so far, threads that ended included (``/proc/PID/stat``;
    summing the live threads' schedstat would lose the ones that ended meanwhile)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@attrs.define
class Receiver:
    expected: int
    received: int = 0
    last_at: float = 0.0


async def ws_open(port: int, client_type: str) -> tuple[trio.SocketStream, bytes]:
    """A raw WebSocket handshake; the stream and any bytes read past the answer."""
    stream = await trio.open_tcp_stream(HOST, port)
    key = base64.b64encode(os.urandom(16)).decode()
    await stream.send_all(
        (
            f"GET /ws?client_type={client_type} HTTP/1.1\r\nHost: {HOST}:{port}\r\n"
            "Upgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = await stream.receive_some(65536)
        if not chunk:
            raise RuntimeError("closed during the handshake")
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    if b" 101 " not in head.split(b"\r\n", 1)[0]:
        raise RuntimeError(f"handshake refused: {head[:80]!r}")
    return stream, rest


async def raw_receiver(port: int, rx: Receiver, frame_bytes: int, ready: trio.Event) -> None:
    """A frontend that counts bytes: every message arrives as one frame of
    ``frame_bytes`` (fixed-width fields), so the load generator costs next to nothing."""
    stream, got = await ws_open(port, "frontend")
    async with stream:
        ready.set()
        total = len(got)
        goal = rx.expected * frame_bytes
        while total < goal:
            chunk = await stream.receive_some(1 << 20)
            if not chunk:
                break
            total += len(chunk)
            rx.received = total // frame_bytes
            rx.last_at = time.perf_counter()


def message(seq: int) -> bytes:
    """A detector message of fixed size; the hub keeps the given timestamp."""
    return json.dumps(
        {"command": "bench:tick", "target": "frontend", "timestamp": "2026-01-01T00:00:00.000Z",
         "data": {"seq": f"{seq:08d}", "pad": "x" * 40}},
        separators=(",", ":"),
    ).encode()


def client_frame(payload: bytes) -> bytes:
    # Clients must mask; a zero mask key leaves the payload as it is.
    size = len(payload)
    assert size < 65536
    head = bytes([0x81, 0x80 | size]) if size < 126 else bytes([0x81, 0xFE]) + size.to_bytes(2, "big")
    return head + b"\0\0\0\0" + payload


def routed_frame_bytes() -> int:
    """Size of the frame a frontend gets: the message with ``sender`` stamped."""
    routed = json.loads(message(0))
    routed["sender"] = "detector"
    payload = len(json.dumps(routed, separators=(",", ":")))
    return payload + (2 if payload < 126 else 4)


async def raw_sender(port: int, messages: int, pace: float = 0.0) -> None:
    """The detector: pre-built frames written in chunks of 200, as fast as the server
    reads (or ``pace`` seconds apart)."""
    stream, _ = await ws_open(port, "detector")
    async with stream:
        batch = 200
        for start in range(0, messages, batch):
            frames = [client_frame(message(n)) for n in range(start, min(messages, start + batch))]
            await stream.send_all(b"".join(frames))
            if pace:
                await trio.sleep(pace)
        await trio.sleep_forever()


async def clients_connected(services: list[tuple[Service, int]]) -> None:
    async with httpx.AsyncClient(trust_env=False) as http:
        with trio.fail_after(30):
            for service, count in services:
                while True:
                    answer = (await http.get(f"{service.url}/api/ws/clients")).json()
                    if answer["local"]["frontend"] == count:
                        break
                    await trio.sleep(0.05)


@attrs.frozen
class Run:
    delivered: int
    expected: int
    seconds: float
    cpu: dict[str, float]
    #: when the last client of each service got its last message (s after the first send)
    done: dict[str, float]

    @property
    def rate(self) -> float:
        return self.delivered / self.seconds if self.seconds > 0 else 0.0


async def run_load(
    placement: list[tuple[Service, int]],
    senders: list[Service],
    messages: int,
    watch: list[Service],
    pace: float = 0.0,
) -> Run:
    """Frontends per service in ``placement``; one detector on each of ``senders``,
    sending ``messages`` between them (every frontend gets all of them)."""
    receivers: list[Receiver] = []
    where: list[str] = []
    frame_bytes = routed_frame_bytes()
    async with trio.open_nursery() as nursery:
        for service, count in placement:
            for _ in range(count):
                rx = Receiver(messages)
                receivers.append(rx)
                where.append(service.name)
                ready = trio.Event()
                nursery.start_soon(raw_receiver, service.port, rx, frame_bytes, ready)
                await ready.wait()
        await clients_connected(placement)
        cpu_before = {s.name: cpu_seconds(s.pid) for s in watch}
        first = time.perf_counter()
        share = messages // len(senders)
        for sender in senders:
            nursery.start_soon(raw_sender, sender.port, share, pace)
        while any(rx.received < rx.expected for rx in receivers):
            newest = max([rx.last_at for rx in receivers] + [first])
            if time.perf_counter() - newest > QUIET_S:
                break
            await trio.sleep(0.01)  # noqa: ASYNC110 - polls counters
        end = max(rx.last_at for rx in receivers)
        done = {
            name: max(rx.last_at for rx, w in zip(receivers, where, strict=True) if w == name) - first
            for name in set(where)
        }
        await trio.sleep(0.3)  # let the receiving instance finish its share of work
        cpu = {s.name: cpu_seconds(s.pid) - cpu_before[s.name] for s in watch}
        nursery.cancel_scope.cancel()
    await clients_connected([(s, 0) for s, _ in placement])
    return Run(
        delivered=sum(rx.received for rx in receivers),
        expected=messages * len(receivers),
        seconds=end - first,
        cpu=cpu,
        done=done,
    )


async def main(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory(prefix="hub-backplane-bench-") as tmp:
        async with AsyncExitStack() as stack:
            redis = await stack.enter_async_context(redis_server())
            channel = f"bench:{uuid.uuid4().hex}"
            services: dict[str, Service] = {}
            for name, extra in (
                ("plain", {}),
                ("A", {"REDIS_URL": redis.url, "REDIS_HUB_CHANNEL": channel}),
                ("B", {"REDIS_URL": redis.url, "REDIS_HUB_CHANNEL": channel}),
            ):
                env = {
                    "DATA_DIR": f"{tmp}/{name}/data",
                    "SHARED_VIDEO_PATH": f"{tmp}/{name}/shared",
                    "WS_PING_INTERVAL": "0",
                    "DATABASE_URL": f"sqlite:///{tmp}/{name}.sqlite3",
                    **extra,
                }
                os.makedirs(f"{tmp}/{name}/data", exist_ok=True)
                url, pid = await stack.enter_async_context(serve_in_child(**env))  # type: ignore[arg-type]
                services[name] = Service(name, url, pid)
            old_rev = coredis_tree(Path(tmp) / "old") if args.compare_coredis else None
            if old_rev:
                old_channel = f"bench-old:{uuid.uuid4().hex}"
                for name, extra in (
                    ("old-plain", {}),
                    ("old-A", {"REDIS_URL": redis.url, "REDIS_HUB_CHANNEL": old_channel}),
                    ("old-B", {"REDIS_URL": redis.url, "REDIS_HUB_CHANNEL": old_channel}),
                ):
                    os.makedirs(f"{tmp}/{name}/data", exist_ok=True)
                    env = {
                        "DATA_DIR": f"{tmp}/{name}/data",
                        "SHARED_VIDEO_PATH": f"{tmp}/{name}/shared",
                        "WS_PING_INTERVAL": "0",
                        "DATABASE_URL": f"sqlite:///{tmp}/{name}.sqlite3",
                        **extra,
                    }
                    url, pid = await stack.enter_async_context(serve_tree(Path(tmp) / "old", **env))
                    services[name] = Service(name, url, pid)
            plain, a, b = services["plain"], services["A"], services["B"]
            await trio.sleep(1.0)  # both bridges connected
            print(f"python {sys.version.split()[0]}; {os.cpu_count()} CPUs; repeat {args.repeat}; "
                  f"redis {redis.url}", flush=True)

            # warm-up (first connections, imports, caches), not counted
            await run_load([(plain, 1)], [plain], 500, [plain])
            await run_load([(a, 1)], [a], 500, [a, b])

            # 1. CPU per routed message
            per_send: list[float] = []
            per_receive: list[float] = []
            for i in range(args.repeat):
                base = await run_load([(plain, 1)], [plain], args.cpu_messages, [plain])
                bridged = await run_load([(a, 1)], [a], args.cpu_messages, [a, b])
                send_us = 1e6 * (bridged.cpu["A"] - base.cpu["plain"]) / args.cpu_messages
                receive_us = 1e6 * bridged.cpu["B"] / args.cpu_messages
                per_send.append(send_us)
                per_receive.append(receive_us)
                print(f"cpu run {i + 1}: {args.cpu_messages} msgs to 1 frontend: server CPU "
                      f"without Redis {base.cpu['plain']:.3f} s, with {bridged.cpu['A']:.3f} s "
                      f"-> bridge (send side) {send_us:.1f} us/msg; receiving instance "
                      f"(no clients) {bridged.cpu['B']:.3f} s -> {receive_us:.1f} us/msg; "
                      f"lost {base.expected - base.delivered}/"
                      f"{bridged.expected - bridged.delivered}", flush=True)

            # 1b. the same with the coredis bridge (the code before this one), same run
            old_send: list[float] = []
            old_receive: list[float] = []
            if old_rev:
                op, oa, ob = services["old-plain"], services["old-A"], services["old-B"]
                # It is slow: fewer messages, and paced (200 per 0.3 s), or its 4096-message
                # queue overflows and dropped messages would look free.
                n = min(args.cpu_messages, 3000)
                await run_load([(oa, 1)], [oa], 200, [oa, ob])  # warm-up
                for i in range(args.repeat):
                    base = await run_load([(op, 1)], [op], n, [op], pace=0.3)
                    bridged = await run_load([(oa, 1)], [oa], n, [oa, ob], pace=0.3)
                    old_send.append(1e6 * (bridged.cpu["old-A"] - base.cpu["old-plain"]) / n)
                    old_receive.append(1e6 * bridged.cpu["old-B"] / n)
                    print(f"coredis bridge ({old_rev[:12]}) run {i + 1}: {n} msgs: "
                          f"{old_send[-1]:.1f} us/msg send side, {old_receive[-1]:.1f} us/msg "
                          f"received; lost {bridged.expected - bridged.delivered}", flush=True)

            # 2. one instance vs two with the clients split
            half = args.clients // 2
            ratios: dict[str, list[float]] = {"one sender": [], "senders split": []}
            capacity: dict[str, list[float]] = {"one sender": [], "senders split": []}
            rates: dict[str, list[float]] = {}
            lost = 0
            for i in range(args.repeat):
                for label, single_senders, split_senders in (
                    ("one sender", [plain], [a]),
                    ("senders split", [plain, plain], [a, b]),
                ):
                    single = await run_load(
                        [(plain, args.clients)], single_senders, args.messages, [plain]
                    )
                    split = await run_load(
                        [(a, half), (b, args.clients - half)], split_senders, args.messages, [a, b]
                    )
                    lost += single.expected - single.delivered + split.expected - split.delivered
                    ratios[label].append(split.rate / single.rate)
                    # Same deliveries; with a core per instance the busiest one sets the pace.
                    capacity[label].append(single.cpu["plain"] / max(split.cpu["A"], split.cpu["B"]))
                    rates.setdefault(f"{label} one", []).append(single.rate)
                    rates.setdefault(f"{label} two", []).append(split.rate)
                    print(f"scale run {i + 1} ({label}): {args.clients} frontends x "
                          f"{args.messages} msgs: one instance {single.rate:,.0f} deliveries/s "
                          f"in {single.seconds:.2f} s (server busy "
                          f"{single.cpu['plain'] / single.seconds:.0%}, lost "
                          f"{single.expected - single.delivered}); two instances "
                          f"{split.rate:,.0f}/s in {split.seconds:.2f} s (A busy "
                          f"{split.cpu['A'] / split.seconds:.0%}, B busy "
                          f"{split.cpu['B'] / split.seconds:.0%}; A's clients done at "
                          f"{split.done['A']:.2f} s, B's at {split.done['B']:.2f} s; lost "
                          f"{split.expected - split.delivered}) -> x{split.rate / single.rate:.2f}; "
                          f"CPU-projected x{capacity[label][-1]:.2f}", flush=True)

            send_med = statistics.median(per_send)
            recv_med = statistics.median(per_receive)
            print(f"median: bridge CPU {send_med:.1f} us per routed message (send side), "
                  f"{recv_med:.1f} us per message received")
            if old_send:
                old_total = statistics.median(old_send) + statistics.median(old_receive)
                print(f"median: coredis bridge {statistics.median(old_send):.1f} us send side + "
                      f"{statistics.median(old_receive):.1f} us received; new/old per routed "
                      f"message (send + receive) = x{(send_med + recv_med) / old_total:.3f}")
            for label, values in ratios.items():
                print(f"median of per-run ratios, two instances / one ({label}): "
                      f"x{statistics.median(values):.2f} (median rates "
                      f"{statistics.median(rates[label + ' two']):,.0f} vs "
                      f"{statistics.median(rates[label + ' one']):,.0f} deliveries/s); "
                      f"CPU-projected (server CPU of one instance / of the busier of two, for "
                      f"the same deliveries) x{statistics.median(capacity[label]):.2f}")
            print(f"lost {lost}")
            return 0 if lost == 0 else 1


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--cpu-messages", type=int, default=10000)
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--no-compare-coredis", dest="compare_coredis", action="store_false",
                        help="skip the same measure on the code before this bridge (coredis)")
    return parser.parse_args()


if __name__ == "__main__":
    sys.exit(trio.run(main, parse_args()))
