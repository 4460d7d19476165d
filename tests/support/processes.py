"""Which ffmpeg/ffprobe children of this process are alive (read from /proc).

Used to prove that cancelling a render or a tool call leaves no child behind.
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
