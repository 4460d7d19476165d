"""Who claimed a job: an identity that survives pid reuse and reboots.

``claimed_by`` is ``host:pid:start:boot:token``:

* ``host`` — the host name (cut to 60 characters);
* ``pid`` and ``start`` — the supervisor's process id and its start time in clock
  ticks since boot (field 22 of ``/proc/<pid>/stat``): a pid the kernel has since
  given to another process has another start time;
* ``boot`` — the first 12 hex digits of ``/proc/sys/kernel/random/boot_id``: after
  a reboot every old pid is meaningless;
* ``token`` — random, so two supervisors in one process never share an identity.

:func:`owner_is_dead` answers "is this owner provably gone?" — only for owners on
this host and boot; others are judged by their heartbeat alone. The ffmpeg
processes of an owner carry ``<owner>/<job uuid>`` on their guard's command line
(see :mod:`stinercut_svc.media.guard`), which is how recovery finds and kills what
a dead owner left behind (:func:`kill_leftovers`).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
from functools import cache
from pathlib import Path

import attrs

HOST_CHARS = 60


@attrs.frozen
class OwnerId:
    host: str
    pid: int
    start: int | None  # None: an owner written before start times were recorded
    boot: str | None
    token: str

    def __str__(self) -> str:
        return f"{self.host}:{self.pid}:{self.start}:{self.boot}:{self.token}"


def process_start_ticks(pid: int) -> int | None:
    """The process's start time (clock ticks since boot), or None if it does not exist."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after the last ")".
    fields = stat[stat.rindex(")") + 2 :].split()
    return int(fields[19])  # field 22 overall


@cache
def boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip().replace("-", "")[:12]
    except OSError:
        return "noboot"


def this_host() -> str:
    return socket.gethostname()[:HOST_CHARS]


def new_owner_id() -> str:
    pid = os.getpid()
    owner = OwnerId(this_host(), pid, process_start_ticks(pid), boot_id(), secrets.token_hex(4))
    return str(owner)


def parse(owner: str) -> OwnerId | None:
    """Read a ``claimed_by`` value; the older ``host:pid:token`` form is accepted too."""
    parts = owner.split(":")
    try:
        if len(parts) == 5:
            host, pid, start, boot, token = parts
            return OwnerId(host, int(pid), int(start) if start.isdigit() else None, boot, token)
        if len(parts) == 3:
            host, pid, token = parts
            return OwnerId(host, int(pid), None, None, token)
    except ValueError:
        return None
    return None


def on_this_machine(owner: OwnerId) -> bool:
    """Same host name, and (when recorded) the same boot of the same kernel."""
    if owner.host != this_host():
        return False
    return owner.boot is None or owner.boot == boot_id()


def owner_is_dead(owner: str | None) -> bool:
    """True when ``owner`` ran on this machine in a process that no longer exists.

    Owners on other hosts (or unreadable ones) are judged by their heartbeat only.
    A live pid whose start time differs from the recorded one is a reused pid: the
    owner is dead.
    """
    if not owner:
        return True
    parsed = parse(owner)
    if parsed is None or not on_this_machine(parsed):
        return False
    started = process_start_ticks(parsed.pid)
    if started is None:
        return True
    return parsed.start is not None and started != parsed.start


def job_tag(owner: str, job_uuid: str) -> str:
    """What an owner's render processes for one job carry on their command line."""
    return f"{owner}/{job_uuid}"


def kill_leftovers(owner: str, job_uuid: str, *, guard_name: str = "guard.py") -> int:
    """SIGKILL the render processes a dead ``owner`` left for ``job_uuid``; return how many.

    Only on this machine, only for a dead owner, and only processes whose command
    line carries exactly this owner's tag for this job: a reused pid never matches.
    The process is pinned with a pidfd before its command line and start time are
    checked a second time, so the signal cannot reach a process that took the pid
    in between. Killing the guard kills its ffmpeg (parent-death signal).
    """
    parsed = parse(owner)
    if parsed is None or not on_this_machine(parsed) or not owner_is_dead(owner):
        return 0
    tag = job_tag(owner, job_uuid).encode()
    killed = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        if not _carries(pid, tag, guard_name):
            continue
        started = process_start_ticks(pid)
        try:
            pidfd = os.pidfd_open(pid)
        except OSError:
            continue
        try:
            if _carries(pid, tag, guard_name) and process_start_ticks(pid) == started:
                signal.pidfd_send_signal(pidfd, signal.SIGKILL)
                killed += 1
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                os.close(pidfd)
    return killed


def _carries(pid: int, tag: bytes, guard_name: str) -> bool:
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return tag in argv and any(arg.endswith(guard_name.encode()) for arg in argv)
