"""The guard between the service and every ffmpeg/ffprobe it starts.

Run as ``python -I -S guard.py LIFELINE_FD TAG -- tool args...`` (a script on
purpose: no package import, so it starts in ~15 ms). It forks the tool and
waits for it, and kills it when the *service* dies, however it dies:

* The service holds the write end of a pipe (the lifeline); the guard holds the
  read end. When the service process exits — SIGKILL and the OOM killer
  included — the kernel closes the write end, the guard reads EOF and SIGKILLs
  its process group (the tool and itself).
* The tool gets ``PR_SET_PDEATHSIG = SIGKILL`` *from the guard*: if the guard is
  killed (trio's SIGKILL after the grace period, or by hand), the tool dies too.

Why not ``PR_SET_PDEATHSIG`` straight in the service's child? The signal fires
when the *thread* that forked the child exits, and trio spawns children from its
worker threads, which exit after 10 s idle: a healthy render would be killed
mid-way. The guard is single-threaded, so there the parent-death signal means
what it says.

The guard is the leader of its own process group (the service starts it with
``process_group=0``), so a terminal's Ctrl-C never reaches ffmpeg behind the
service's back, and one ``killpg`` reaches every process of a job.

SIGTERM/SIGINT/SIGHUP to the guard are passed on to the tool (ffmpeg finishes
its file on SIGTERM); the guard exits the way the tool did (same code, or the
same signal), so callers cannot tell it is there. ``TAG`` is not read: it sits
on the command line so that recovery can recognise a dead instance's leftovers
(``/proc/<pid>/cmdline``) without storing pids.
"""

from __future__ import annotations

import ctypes
import os
import select
import signal
import sys

PR_SET_PDEATHSIG = 1
FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def main(argv: list[str]) -> int:
    if len(argv) < 5 or argv[3] != "--":
        os.write(2, b"usage: guard.py LIFELINE_FD TAG -- tool [args...]\n")
        return 2
    lifeline = int(argv[1])
    command = argv[4:]
    child = 0

    def forward(signum: int, _frame: object) -> None:
        if child > 0:
            try:
                os.kill(child, signum)
            except ProcessLookupError:
                pass

    for signum in FORWARDED:
        signal.signal(signum, forward)
    guard_pid = os.getpid()
    child = os.fork()
    if child == 0:  # the tool
        try:
            os.close(lifeline)
            libc = ctypes.CDLL(None, use_errno=True)
            if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
                os._exit(126)
            if os.getppid() != guard_pid:  # the guard died before prctl took effect
                os._exit(126)
            for signum in FORWARDED:
                signal.signal(signum, signal.SIG_DFL)
            os.execv(command[0], command)
        except BaseException:
            pass
        os._exit(127)

    poller = select.poll()
    poller.register(lifeline, select.POLLIN | select.POLLHUP | select.POLLERR)
    try:
        pidfd = os.pidfd_open(child)
    except (AttributeError, OSError):
        pidfd = -1
    if pidfd >= 0:
        poller.register(pidfd, select.POLLIN)
    while True:
        # Without a pidfd (old kernel), look at the child twice a second.
        events = poller.poll(None if pidfd >= 0 else 500)
        if any(fd == lifeline for fd, _ in events):
            # The only writer is the service, and it never writes: this is EOF.
            os.kill(child, signal.SIGKILL)
            if os.getpgid(0) == os.getpid():  # our own group: the tool's children too
                os.killpg(os.getpid(), signal.SIGKILL)
            return 137
        done, status = os.waitpid(child, os.WNOHANG)
        if done == child:
            break
    if os.WIFSIGNALED(status):
        died_of = os.WTERMSIG(status)
        sys.stdout.flush()
        signal.signal(died_of, signal.SIG_DFL)
        os.kill(os.getpid(), died_of)
        return 128 + died_of
    return os.WEXITSTATUS(status)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
