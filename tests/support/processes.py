"""What /proc says about processes: live ffmpeg/ffprobe children, memory use.

Used to prove that cancelling a render or a tool call leaves no child behind,
and to measure a server's peak memory during an upload.
"""

from __future__ import annotations

import os
from pathlib import Path


def media_children(*names: str) -> list[int]:
    """PIDs of this process's live children running ffmpeg/ffprobe (from /proc)."""
    names = names or ("ffmpeg", "ffprobe")
    me = os.getpid()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        comm = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        state, ppid = fields[0], int(fields[1])
        if ppid == me and comm in names and state != "Z":
            found.append(int(entry.name))
    return found


def memory_kib(pid: int) -> dict[str, int]:
    """Current (``VmRSS``) and peak (``VmHWM``) resident memory of a process, in KiB."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0])
    return values


def reset_peak(pid: int) -> None:
    """Make ``VmHWM`` start again from the current RSS (writing 5 to clear_refs, Linux >= 4.0)."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")
