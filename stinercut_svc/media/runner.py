"""The one way this service runs ffmpeg and ffprobe.

Two entry points:

* :func:`run_capture` for short tool calls (``-version``, ffprobe, a thumbnail):
  output captured, hard timeout, the child killed if the deadline passes.
* :func:`run_ffmpeg` for renders: ``-progress pipe:1`` parsed into
  :class:`Progress` values while the process runs, stderr kept as a short tail for
  error messages.

Cancellation: both run the child inside the caller's cancel scope via
``trio.run_process``. When that scope is cancelled the child gets SIGTERM (ffmpeg
treats it like ``q``: it stops reading input and closes the output), then SIGKILL
after ``grace`` seconds if it has not exited. The call returns only once the child
has been reaped, so no ffmpeg outlives the task that started it.

No tool outlives the *service* either: every child runs behind
:mod:`~stinercut_svc.media.guard`, which holds the read end of a pipe whose write
end only this process holds (the lifeline). When the service dies — SIGKILL, the
OOM killer — the guard sees EOF and kills its process group within milliseconds.

Every input is opened with ``-protocol_whitelist file``: a playlist (HLS, concat
list) inside user media may name only local files, never ``http:``, ``tcp:`` and
the like — whatever the ffmpeg build's defaults are. :func:`restrict_inputs`
puts the option before each ``-i`` of an ffmpeg command line;
``probe`` passes it to ffprobe itself.
"""

from __future__ import annotations

import collections
import os
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import attrs
import trio

DEFAULT_GRACE_S = 2.0
#: Grace before SIGKILL for a cancelled tool whose output is read as it comes.
STREAMING_GRACE_S = 0.5
STDERR_TAIL_LINES = 20
#: Protocols an input (and anything a playlist inside it names) may use.
PROTOCOL_WHITELIST = "file"
GUARD_SCRIPT = str(Path(__file__).with_name("guard.py"))


class ToolError(RuntimeError):
    """A tool exited unsuccessfully; ``stderr_tail`` holds its last words."""

    def __init__(self, message: str, *, returncode: int | None, stderr_tail: str) -> None:
        super().__init__(message)
        self.returncode = returncode
        self.stderr_tail = stderr_tail


class ToolMissingError(ToolError):
    """The executable is not installed or not runnable."""


class ToolTimeoutError(ToolError):
    """The tool ran past its deadline and was killed."""


@attrs.frozen
class Captured:
    returncode: int
    stdout: bytes
    stderr: bytes


@attrs.frozen
class Progress:
    """One ``-progress`` block: where the encoder is, and how fast it goes."""

    out_time_s: float | None
    speed: float | None
    frame: int | None
    done: bool


async def _terminate(process: trio.Process, grace: float) -> None:
    """SIGTERM, then SIGKILL if the child is still there after ``grace`` seconds.

    The guard passes SIGTERM on to the tool; the SIGKILL goes to the guard's whole
    process group (the guard leads it and is not reaped yet, so the id is ours).
    """
    try:
        process.send_signal(signal.SIGTERM)
    except ProcessLookupError:
        return
    with trio.move_on_after(grace):
        await process.wait()
        return
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        process.kill()


# --- the lifeline and the guard ---------------------------------------------------

_lifeline_lock = threading.Lock()
_lifeline: tuple[int, int, int] | None = None  # (owner pid, read fd, write fd)


def lifeline_fd() -> int:
    """The read end of this process's lifeline pipe (created on first use).

    Both ends are close-on-exec; the read end reaches a guard only through
    ``pass_fds``. The write end is never written and never closed: the kernel
    closes it when this process ends, which is the whole point. A forked copy
    of the service (several workers) makes its own.
    """
    global _lifeline
    with _lifeline_lock:
        if _lifeline is None or _lifeline[0] != os.getpid():
            read_fd, write_fd = os.pipe()
            _lifeline = (os.getpid(), read_fd, write_fd)
        return _lifeline[1]


def guarded(argv: Sequence[str], *, tag: str = "-") -> list[str]:
    """``argv`` behind the guard: killed when this service process dies."""
    return [sys.executable, "-I", "-S", GUARD_SCRIPT, str(lifeline_fd()), tag, "--", *argv]


def _spawn_options() -> dict[str, Any]:
    return {"pass_fds": (lifeline_fd(),), "process_group": 0}


def restrict_inputs(args: Sequence[str]) -> list[str]:
    """Put ``-protocol_whitelist file`` before each ``-i`` that does not have one.

    Input options sit between the previous input (or the start) and their
    ``-i``; an explicit whitelist there is left as the caller wrote it.
    """
    result: list[str] = []
    pending_options: list[str] = []
    for index, arg in enumerate(args):
        is_input = arg == "-i" and index + 1 < len(args) and (index == 0 or args[index - 1] != "-i")
        if is_input and "-protocol_whitelist" not in pending_options:
            result += ["-protocol_whitelist", PROTOCOL_WHITELIST]
        result.append(arg)
        pending_options.append(arg)
        if is_input:
            pending_options = []
    return result


async def run_streaming(
    argv: Sequence[str],
    *,
    tag: str = "-",
    task_status: trio.TaskStatus[trio.Process] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run ``argv`` with stdout and stderr piped, for a caller that reads them as they come.

    Behind the guard and with local inputs only, like every tool here. Started with
    ``process = await nursery.start(partial(run_streaming, argv, tag=...))``; the
    caller reads ``process.stdout`` and drains ``process.stderr`` (:func:`keep_head`).

    Cancelled with the nursery, our end of its stdout is closed and the child gets
    SIGTERM, then (after half a second) its whole process group SIGKILL; the call
    returns once it is reaped. A cancelled reader stops reading, so the tool is
    usually blocked writing to a full pipe, which SIGTERM alone does not interrupt
    (ffmpeg's handler only sets a flag): the closed pipe ends the write at once.
    """
    await trio.run_process(
        guarded([argv[0], *restrict_inputs(argv[1:])], tag=tag),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        check=False,
        deliver_cancel=_stop_streaming,
        task_status=task_status,
        **_spawn_options(),
    )


async def keep_head(stream: trio.abc.ReceiveStream, into: bytearray, limit: int = 8192) -> None:
    """Read ``stream`` to its end (so the child never blocks), keeping its first bytes."""
    async for chunk in stream:
        if len(into) < limit:
            into.extend(chunk)


async def _stop_streaming(process: trio.Process) -> None:
    # Our end of its stdout closed first: a tool blocked writing gets EPIPE at once.
    if process.stdout is not None:
        with trio.CancelScope(shield=True):
            await process.stdout.aclose()
    await _terminate(process, STREAMING_GRACE_S)


def _require(binary: str) -> str:
    found = shutil.which(binary)
    if found is None:
        raise ToolMissingError(
            f"{binary} is not installed or not executable", returncode=None, stderr_tail=""
        )
    return found


def _single(group: BaseExceptionGroup) -> BaseException:
    """The one exception inside a nursery's group, so callers see plain exceptions."""
    if len(group.exceptions) == 1:
        inner = group.exceptions[0]
        return _single(inner) if isinstance(inner, BaseExceptionGroup) else inner
    return group


async def run_capture(argv: Sequence[str], *, timeout: float) -> Captured:
    """Run a short tool call; raise :class:`ToolTimeoutError`/:class:`ToolMissingError`."""
    argv = [_require(argv[0]), *restrict_inputs(argv[1:])]
    try:
        with trio.fail_after(timeout):
            done = await trio.run_process(
                guarded(argv),
                capture_stdout=True,
                capture_stderr=True,
                check=False,
                stdin=subprocess.DEVNULL,
                deliver_cancel=partial(_terminate, grace=0.5),
                **_spawn_options(),
            )
    except trio.TooSlowError:
        raise ToolTimeoutError(
            f"{argv[0]} did not finish within {timeout:g} s", returncode=None, stderr_tail=""
        ) from None
    return Captured(done.returncode, done.stdout, done.stderr)


async def run_ffmpeg(
    args: Sequence[str],
    *,
    binary: str = "ffmpeg",
    on_progress: Callable[[Progress], Awaitable[None]] | None = None,
    grace: float = DEFAULT_GRACE_S,
    tag: str = "-",
) -> None:
    """Run ``ffmpeg <args>`` to completion, reporting progress; raise :class:`ToolError`.

    ``args`` are ffmpeg's inputs, filters and outputs; this function adds the
    flags that make it non-interactive and machine-readable, and the protocol
    whitelist to every input. ``tag`` goes on the guard's command line (the
    supervisor's owner and job, so recovery can find leftovers).
    """
    argv = [
        _require(binary),
        "-hide_banner",
        "-nostdin",
        "-nostats",
        "-loglevel",
        "error",
        "-progress",
        "pipe:1",
        *restrict_inputs(args),
    ]
    tail: collections.deque[str] = collections.deque(maxlen=STDERR_TAIL_LINES)
    try:
        async with trio.open_nursery() as nursery:
            process: trio.Process = await nursery.start(
                partial(
                    trio.run_process,
                    guarded(argv, tag=tag),
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    check=False,
                    deliver_cancel=partial(_terminate, grace=grace),
                    **_spawn_options(),
                )
            )
            assert process.stdout is not None and process.stderr is not None
            nursery.start_soon(_collect_tail, process.stderr, tail)
            await _pump_progress(process.stdout, on_progress)
    except BaseExceptionGroup as group:
        raise _single(group) from None
    if process.returncode != 0:
        text = "\n".join(tail)
        raise ToolError(
            f"ffmpeg exited with code {process.returncode}: {text or 'no error output'}",
            returncode=process.returncode,
            stderr_tail=text,
        )


async def _lines(stream: trio.abc.ReceiveStream) -> AsyncIterator[str]:
    buffer = b""
    async for chunk in stream:
        buffer += chunk
        *complete, buffer = buffer.split(b"\n")
        for line in complete:
            yield line.decode("utf-8", "replace").rstrip("\r")
    if buffer:
        yield buffer.decode("utf-8", "replace")


async def _collect_tail(stream: trio.abc.ReceiveStream, tail: collections.deque[str]) -> None:
    async for line in _lines(stream):
        if line.strip():
            tail.append(line.strip())


async def _pump_progress(
    stream: trio.abc.ReceiveStream, on_progress: Callable[[Progress], Awaitable[None]] | None
) -> None:
    block: dict[str, str] = {}
    async for line in _lines(stream):
        key, sep, value = line.partition("=")
        if not sep:
            continue
        block[key.strip()] = value.strip()
        if key.strip() == "progress":
            if on_progress is not None:
                await on_progress(parse_progress(block))
            block = {}


def parse_progress(block: dict[str, str]) -> Progress:
    """Read one ``-progress`` block; values ffmpeg reports as ``N/A`` become ``None``."""
    out_us = _number(block.get("out_time_us")) or _number(block.get("out_time_ms"))
    speed = block.get("speed", "").rstrip("x").strip()
    frame = _number(block.get("frame"))
    return Progress(
        out_time_s=None if out_us is None else max(out_us, 0.0) / 1_000_000,
        speed=_number(speed),
        frame=None if frame is None else int(frame),
        done=block.get("progress") == "end",
    )


def _number(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        return None
