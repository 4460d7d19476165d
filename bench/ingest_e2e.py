"""End to end: seconds from ``device.mounted`` to three resolved jumps (and filled projects).

Starts the real service in a child process (``python -m stinercut_svc serve``,
SQLite, ``INGEST_AUTO=true``, ``IMPORT_ROOTS`` = a temporary folder), creates three
customer projects over HTTP, and builds a GoPro card of 1080p clips for them with
ffmpeg: per jump a QR shot (``Stinercut: <project uuid>``, ``--qr-seconds`` long,
with its LRV proxy) and a jump recording (``--jump-seconds``, a wind-band freefall
from 4 s to ``jump - 4`` s in quiet audio, camera-like bitrate ``--bitrate``). The
freefall detector needs at least 20 s of freefall, hence jump clips of ~30 s.

Then a detector-like client (websocket-client, as the detector daemon) sends
``device.mounted {mount_path}`` with ``target: all`` (as the detector sends it) and a frontend-like client
records the ``videofile:*`` events as they arrive. Printed: the card's size and
length, seconds to ``copy_completed``, to ``batch_completed`` (three jumps
resolved), and to the three projects holding their clips; the copy part against
``cp -r`` of the same card in the same run (same disk, after the import, so both
read from the page cache), and the whole pipeline's realtime factor (card seconds
over wall seconds).

    .venv/bin/python bench/ingest_e2e.py [--jump-seconds 30] [--qr-seconds 4] [--bitrate 40M]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import trio
import websocket  # websocket-client, the detector daemon's library

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.cards import gopro_folder, make_jump_clip  # noqa: E402
from tests.support.child_server import serve_in_child  # noqa: E402
from tests.support.media import ffmpeg  # noqa: E402
from tests.support.qr import make_qr_clip  # noqa: E402

JUMPS = 3
TIMEOUT_S = 900.0


def qr_clip(path: Path, code: str, seconds: float, creation_time: str) -> None:
    silent = path.with_name(f"{path.stem}.noaudio.mp4")
    make_qr_clip(
        silent, f"Stinercut: {code}", seconds=seconds, size="1920x1080", rate="30", gop=30,
        module_px=12, position=(200, 200),
    )  # fmt: skip
    ffmpeg(
        "-i", str(silent), "-f", "lavfi", "-i", f"anoisesrc=d={seconds}:c=pink:a=0.01:r=48000",
        "-map", "0:v", "-map", "1:a", "-c:v", "copy", "-c:a", "aac", "-b:a", "128k",
        "-shortest", "-metadata", f"creation_time={creation_time}", str(path),
    )  # fmt: skip
    silent.unlink()
    proxy(path)


def proxy(path: Path) -> None:
    """The LRV proxy: the same timeline at 848x480, as a GoPro writes one per recording."""
    ffmpeg(
        "-i", str(path), "-vf", "scale=848:480", "-c:v", "libx264", "-preset", "ultrafast",
        "-b:v", "2M", "-c:a", "copy", "-f", "mp4", str(path.with_name("GL" + path.name[2:-4] + ".LRV")),
    )  # fmt: skip


def build_card(root: Path, customers: list[str], args: argparse.Namespace) -> float:
    """The card; returns its recorded seconds."""
    g = gopro_folder(root)
    seconds = 0.0
    for index, customer in enumerate(customers):
        qr_number = 2 * index + 1
        minute = 10 * index
        qr_clip(
            g / f"GH01{qr_number:04d}.MP4",
            customer,
            args.qr_seconds,
            f"2026-12-01T10:{minute:02d}:00Z",
        )
        make_jump_clip(
            g / f"GH01{qr_number + 1:04d}.MP4",
            seconds=args.jump_seconds,
            freefall=(4.0, args.jump_seconds - 8.0),
            creation_time=f"2026-12-01T10:{minute + 1:02d}:00Z",
            size="1920x1080",
            rate=30,
            video_bitrate=args.bitrate,
        )
        proxy(g / f"GH01{qr_number + 1:04d}.MP4")
        seconds += args.qr_seconds + args.jump_seconds
    return seconds


class Listener:
    """A frontend client recording (arrival time, message), in a thread."""

    def __init__(self, url: str) -> None:
        self.ws = websocket.create_connection(url, timeout=1)
        self.events: list[tuple[float, dict[str, Any]]] = []
        self.stop = False
        self.thread = threading.Thread(target=self.pump, daemon=True)
        self.thread.start()

    def pump(self) -> None:
        while not self.stop:
            try:
                raw = self.ws.recv()
            except websocket.WebSocketTimeoutException:
                continue
            except (websocket.WebSocketException, OSError):
                return
            if raw:
                self.events.append((time.perf_counter(), json.loads(raw)))

    def first(self, command: str) -> float | None:
        return next((t for t, m in self.events if m.get("command") == command), None)


def send_mounted(url: str, mount_path: str) -> float:
    ws = websocket.create_connection(url, timeout=5)
    try:
        sent = time.perf_counter()
        ws.send(
            json.dumps(
                {
                    "command": "device.mounted",
                    "target": "all",
                    "data": {"device_node": "/dev/sdx1", "mount_path": mount_path},
                }
            )
        )
        return sent
    finally:
        ws.close()


def _stat(pid: int) -> list[int]:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return [int(v) for v in fields[11:15]]  # utime, stime, cutime, cstime


def cpu_of(pid: int) -> float:
    """CPU seconds of the service: its process, its reaped children (ffmpeg, ffprobe) and
    its live ones (the QR decoding worker processes live as long as the service)."""
    ticks = sum(_stat(pid))
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            try:
                ticks += sum(_stat(int(child))[:2])
            except (FileNotFoundError, ProcessLookupError):
                pass
    return ticks / os.sysconf("SC_CLK_TCK")


def size_of(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


async def run(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
        base = Path(tmp)
        roots = base / "media"
        card = roots / "card"
        env = {
            "DATABASE_URL": f"sqlite:///{base / 'bench.db'}",
            "SHARED_VIDEO_PATH": str(base / "shared"),
            "IMPORT_ROOTS": str(roots),
            "INGEST_AUTO": "true",
            "DATA_DIR": str(base / "data"),
        }
        async with serve_in_child(log_path=base / "service.log", **env) as (url, pid):
            ws_base = url.replace("http://", "ws://") + "/ws?client_type="
            async with httpx.AsyncClient(base_url=url, timeout=30) as http:
                customers = []
                for n in range(JUMPS):
                    answer = await http.post("/api/projects", json={"name": f"Customer {n + 1}"})
                    answer.raise_for_status()
                    customers.append(answer.json()["uuid"])
                made = time.perf_counter()
                recorded = await trio.to_thread.run_sync(build_card, card, customers, args)
                made = time.perf_counter() - made
                card_bytes = size_of(card)
                listener = await trio.to_thread.run_sync(Listener, ws_base + "frontend")
                cpu_before = cpu_of(pid)
                sent = await trio.to_thread.run_sync(send_mounted, ws_base + "detector", str(card))
                batch: dict[str, Any] | None = None
                projects_at: float | None = None
                with trio.fail_after(TIMEOUT_S):
                    while batch is None:
                        page = (await http.get("/api/imports")).json()["imports"]
                        if page and page[0]["status"] in {"resolved", "needs_manual", "error"}:
                            batch = (await http.get(f"/api/imports/{page[0]['uuid']}")).json()
                        else:
                            await trio.sleep(0.05)
                    while projects_at is None:
                        counts = [
                            len((await http.get(f"/api/projects/{c}")).json().get("videos", []))
                            for c in customers
                        ]
                        if all(counts):
                            projects_at = time.perf_counter()
                        else:
                            await trio.sleep(0.05)
                cpu_used = cpu_of(pid) - cpu_before
                listener.stop = True
            resolved = [j for j in batch["jumps"] if j["state"] == "resolved"]
            copy_done = listener.first("videofile:copy_completed")
            completed = listener.first("videofile:batch_completed")
            copy_s = None if copy_done is None else copy_done - sent
            print(
                f"card: {JUMPS} jumps, {len(list(card.rglob('*.MP4')))} MP4 + "
                f"{len(list(card.rglob('*.LRV')))} LRV, 1920x1080 30 fps {args.bitrate}, "
                f"{card_bytes / 1e6:.0f} MB, {recorded:.0f} s recorded (built in {made:.0f} s)"
            )
            print(f"batch: {batch['status']}, {len(resolved)}/{len(batch['jumps'])} jumps resolved")
            if copy_s is not None:
                print(
                    f"device.mounted -> copy_completed:   {copy_s:6.2f} s "
                    f"({card_bytes / 1e6 / copy_s:.0f} MB/s)"
                )
            if completed is not None:
                total = completed - sent
                print(
                    f"device.mounted -> batch_completed: {total:6.2f} s "
                    f"({recorded / total:.1f}x realtime over the card's {recorded:.0f} s)"
                )
            print(f"device.mounted -> 3 projects filled: {projects_at - sent:6.2f} s")
            started_at = listener.first("videofile:analysis_started")
            analysed = [
                t for t, m in listener.events if m.get("command") == "videofile:file_analyzed"
            ]
            if started_at is not None and copy_done is not None and analysed and completed:
                print(
                    f"  phases: copy {copy_done - sent:.2f} s, probe {started_at - copy_done:.2f} s, "
                    f"QR + audio per recording {(analysed[-1] - started_at) / (2 * JUMPS):.2f} s, "
                    f"thumbnails + rows + projects {completed - analysed[-1]:.2f} s"
                )
            print(
                f"service CPU (process + ffmpeg children): {cpu_used:.1f} s "
                f"= {recorded / cpu_used:.1f}x realtime per core; load average "
                f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
            )
            # Baseline in the same run: cp -r of the same card to the same disk.
            target = base / "cp-baseline"
            started = time.perf_counter()
            await trio.run_process(["cp", "-r", str(card), str(target)])
            await trio.run_process(["sync", "-f", str(target)])
            cp_s = time.perf_counter() - started
            print(
                f"cp -r + sync of the same card:      {cp_s:6.2f} s "
                f"({card_bytes / 1e6 / cp_s:.0f} MB/s)"
                + ("" if copy_s is None else f"; service copy phase / cp = {copy_s / cp_s:.2f}")
            )
            shutil.rmtree(target, ignore_errors=True)
            await trio.to_thread.run_sync(listener.ws.close)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jump-seconds", type=float, default=30.0)
    parser.add_argument("--qr-seconds", type=float, default=4.0)
    parser.add_argument("--bitrate", default="40M")
    parser.add_argument("--tmp", default=None, help="where the card and storage live")
    args = parser.parse_args()
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    trio.run(run, args)


if __name__ == "__main__":
    main()
