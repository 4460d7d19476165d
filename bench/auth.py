"""What access control costs per request: the same read with auth off, from a
trusted network, and with a bearer token (one indexed lookup of its hash).

Run (wrk from ``apt-get install wrk``)::

    .venv/bin/python bench/auth.py [--rounds 3] [--seconds 5] [--connections 10]

Three services run as child processes the way production starts them
(``python -m stinercut_svc serve``, SQLite in separate data folders, an
empty job list each): ``AUTH_REQUIRED=false``; ``AUTH_REQUIRED=true`` with
``TRUSTED_NETWORKS=127.0.0.1/32`` (no token looked at); ``AUTH_REQUIRED=true``
with the load sending ``Authorization: Bearer`` of a viewer token made with the
real CLI (``stinercut tokens create``). wrk loads ``GET /api/jobs`` on each, the
order rotating per round; printed: medians of req/s and server CPU per request,
and the ratios to "auth off" taken within each round (the machine is usually
shared: absolute figures move, ratios much less).
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import tempfile
from pathlib import Path

import httpx
import trio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.support.child_server import serve_in_child  # noqa: E402

VARIANTS = ("off", "trusted", "token")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def wrk(url: str, pid: int, connections: int, seconds: int, token: str | None) -> tuple[float, float]:
    """``(req/s, server CPU ms per request)`` of one wrk run."""
    headers = ["-H", f"Authorization: Bearer {token}"] if token else []
    before = cpu_seconds(pid)
    done = await trio.run_process(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", *headers, f"{url}/api/jobs"],
        capture_stdout=True,
    )
    cpu = cpu_seconds(pid) - before
    text = done.stdout.decode()
    rate = re.search(r"Requests/sec:\s+([\d.]+)", text)
    total = re.search(r"(\d+) requests in", text)
    assert rate and total, text
    assert "Non-2xx" not in text, text  # every answer was a 200: the token was accepted
    return float(rate.group(1)), cpu * 1000 / max(int(total.group(1)), 1)


async def main(args: argparse.Namespace) -> None:
    work = Path(tempfile.mkdtemp(prefix="stinercut-bench-auth-"))
    envs = {
        "off": {"AUTH_REQUIRED": "false"},
        "trusted": {"AUTH_REQUIRED": "true", "TRUSTED_NETWORKS": "127.0.0.1/32"},
        "token": {"AUTH_REQUIRED": "true", "TRUSTED_NETWORKS": "10.99.0.0/16"},
    }
    for name, env in envs.items():
        env.update(DATA_DIR=str(work / name), SHARED_VIDEO_PATH=str(work / name / "shared"))
    token_env = {**os.environ, **envs["token"], "LOG_LEVEL": "WARNING"}
    made = await trio.run_process(
        [sys.executable, "-m", "stinercut_svc", "tokens", "create", "--role", "viewer", "--name", "bench"],
        env=token_env, capture_stdout=True,
    )
    token = made.stdout.decode().strip().splitlines()[-1]
    rates: dict[str, list[float]] = {name: [] for name in VARIANTS}
    cpus: dict[str, list[float]] = {name: [] for name in VARIANTS}
    ratio_rate: dict[str, list[float]] = {name: [] for name in VARIANTS}
    ratio_cpu: dict[str, list[float]] = {name: [] for name in VARIANTS}
    async with (
        serve_in_child(**envs["off"]) as off,
        serve_in_child(**envs["trusted"]) as trusted,
        serve_in_child(**envs["token"]) as tokened,
    ):
        servers = {"off": off, "trusted": trusted, "token": tokened}
        for name, (url, _) in servers.items():  # each answers 200 (the token is accepted)
            headers = {"Authorization": f"Bearer {token}"} if name == "token" else {}
            async with httpx.AsyncClient(base_url=url, headers=headers) as http:
                assert (await http.get("/api/jobs")).status_code == 200
        for name, (url, pid) in servers.items():  # warm-up
            await wrk(url, pid, args.connections, 1, token if name == "token" else None)
        for round_ in range(args.rounds):
            order = VARIANTS[round_ % 3:] + VARIANTS[: round_ % 3]
            this: dict[str, tuple[float, float]] = {}
            for name in order:
                url, pid = servers[name]
                this[name] = await wrk(url, pid, args.connections, args.seconds,
                                       token if name == "token" else None)
            for name in VARIANTS:
                rates[name].append(this[name][0])
                cpus[name].append(this[name][1])
                ratio_rate[name].append(this[name][0] / this["off"][0])
                ratio_cpu[name].append(this[name][1] / this["off"][1])
    med = statistics.median
    print(f"GET /api/jobs, wrk -c{args.connections} -d{args.seconds}s, {args.rounds} rounds (medians)")
    print(f"{'variant':<10} {'req/s':>8} {'CPU ms/req':>11} {'req/s vs off':>13} {'CPU vs off':>11}")
    for name in VARIANTS:
        print(f"{name:<10} {med(rates[name]):8.0f} {med(cpus[name]):11.2f} "
              f"{med(ratio_rate[name]):13.2f} {med(ratio_cpu[name]):11.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=10)
    trio.run(main, parser.parse_args())
