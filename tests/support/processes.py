"""What /proc says about processes: live ffmpeg/ffprobe children, memory use.

Used to prove that cancelling a render or a tool call leaves no child behind,
and to measure a server's peak memory during an upload.
"""

from __future__ import annotations

import os
from pathlib import Path


def _proc_table() -> dict[int, tuple[str, int, str]]:
    """pid → (command name, parent pid, state) for every process (from /proc)."""
    table: dict[int, tuple[str, int, str]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        comm = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        table[int(entry.name)] = (comm, int(fields[1]), fields[0])
    return table


def descendants(root: int) -> set[int]:
    """Every live process below ``root`` (children, grandchildren, ...)."""
    table = _proc_table()
    children: dict[int, list[int]] = {}
    for pid, (_, ppid, _state) in table.items():
        children.setdefault(ppid, []).append(pid)
    found: set[int] = set()
    todo = [root]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def media_children(*names: str, root: int | None = None) -> list[int]:
    """PIDs of live ffmpeg/ffprobe processes below ``root`` (default: this process).

    Descendants, not only children: the service runs each tool behind a guard
    process (``stinercut_svc/media/guard.py``), so ffmpeg is a grandchild.
    """
    names = names or ("ffmpeg", "ffprobe")
    table = _proc_table()
    below = descendants(os.getpid() if root is None else root)
    return sorted(
        pid for pid in below if pid in table and table[pid][0] in names and table[pid][2] != "Z"
    )


def processes_named(*names: str) -> list[int]:
    """Every live (not zombie) process on the machine with one of these command names."""
    return sorted(
        pid for pid, (comm, _, state) in _proc_table().items() if comm in names and state != "Z"
    )


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
