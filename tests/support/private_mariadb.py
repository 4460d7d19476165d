"""A private MariaDB server for one test: its own datadir, socket and port.

Tests of database outages need a server they may kill and start again without
disturbing the shared MariaDB (and the other helpers' databases) on 3306. This
module runs ``mariadbd`` from the distribution in a temporary datadir:

    with PrivateMariaDB() as db:
        url = db.url            # mysql://stiner:local@127.0.0.1:<port>/stinercut
        db.stop()               # SIGKILL: the outage (db.stop(clean=True) = SIGTERM + wait)
        db.start()              # same port, same datadir: the data is still there

The pitfalls this handles (see STACK_NOTES.md): the socket directory must belong
to the ``mysql`` user (the server drops privileges to it when run as root), and
root authenticates over the unix socket only, so a password user is created
for PyMySQL over TCP. Skips the calling test when MariaDB is not installed.

The files live in their own ``/tmp/stinercut-mariadb-*`` folder (removed by
:meth:`close`), not under pytest's ``tmp_path``: every pytest run resets
``/tmp/pytest-of-<user>`` to mode 0700, so a server running as ``mysql`` loses
its datadir the moment any other test session starts.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import IO, Self

import pytest

USER = "stiner"
PASSWORD = "local"
DATABASE = "stinercut"
START_TIMEOUT_S = 60.0


def mariadb_available() -> bool:
    """True when the server binaries exist (skip tests that need one otherwise)."""
    return bool(shutil.which("mariadbd") or Path("/usr/sbin/mariadbd").exists()) and bool(
        shutil.which("mariadb-install-db")
    )


def _mariadbd() -> str:
    return shutil.which("mariadbd") or "/usr/sbin/mariadbd"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PrivateMariaDB:
    """One ``mariadbd`` in ``base/`` on a free 127.0.0.1 port; stop/start keep port and data."""

    def __init__(self, *, database: str = DATABASE) -> None:
        if not mariadb_available():
            pytest.skip("MariaDB server binaries (mariadbd, mariadb-install-db) not installed")
        self.base = Path(tempfile.mkdtemp(prefix="stinercut-mariadb-"))
        self.datadir = self.base / "data"
        self.rundir = self.base / "run"
        self.socket_path = self.rundir / "mysqld.sock"
        self.log_path = self.base / "mariadbd.log"
        self.database = database
        self.port = _free_port()
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._run_as_root = os.geteuid() == 0
        self._install()

    # -- public -------------------------------------------------------------

    @property
    def url(self) -> str:
        """The service's ``DATABASE_URL`` for this server's database."""
        return f"mysql://{USER}:{PASSWORD}@127.0.0.1:{self.port}/{self.database}"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def start(self) -> None:
        """Start the server (again) on the same port and datadir; returns once it answers."""
        if self.running:
            return
        self.rundir.mkdir(parents=True, exist_ok=True)
        self._chown_mysql(self.rundir)
        argv = [
            _mariadbd(),
            "--no-defaults",
            f"--datadir={self.datadir}",
            f"--socket={self.socket_path}",
            f"--port={self.port}",
            "--bind-address=127.0.0.1",
            f"--pid-file={self.rundir / 'mariadbd.pid'}",
            "--skip-name-resolve",
            "--innodb-buffer-pool-size=32M",
            "--innodb-log-file-size=16M",
            "--skip-log-bin",
            "--max-connections=200",
        ]
        if self._run_as_root:
            argv.insert(2, "--user=mysql")
        log = open(self.log_path, "ab")  # noqa: SIM115 - kept open for the server's life
        self._log = log
        self._process = subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
        self._wait_ready()

    def stop(self, *, clean: bool = False) -> None:
        """SIGKILL the server (an outage), or with ``clean`` SIGTERM and wait for it."""
        process = self._process
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGTERM if clean else signal.SIGKILL)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self._process = None
        if self._log is not None:
            self._log.close()
            self._log = None
        if not clean:
            # A SIGKILLed server leaves its socket behind; the next start replaces it anyway.
            self.socket_path.unlink(missing_ok=True)

    def close(self) -> None:
        """Stop the server and remove its files."""
        self.stop()
        if os.environ.get("STINERCUT_KEEP_PRIVATE_MARIADB"):
            return  # for a post-mortem of the server's log
        shutil.rmtree(self.base, ignore_errors=True)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- internals ----------------------------------------------------------

    def _chown_mysql(self, path: Path) -> None:
        if not self._run_as_root:
            return
        entry = pwd.getpwnam("mysql")
        os.chown(path, entry.pw_uid, entry.pw_gid)

    def _install(self) -> None:
        self.datadir.mkdir(parents=True, exist_ok=True)
        # The server (as mysql) must be able to reach its datadir through base/.
        os.chmod(self.base, 0o755)
        self._chown_mysql(self.datadir)
        argv = [
            "mariadb-install-db",
            "--no-defaults",
            f"--datadir={self.datadir}",
            "--auth-root-authentication-method=socket",
            "--skip-test-db",
        ]
        if self._run_as_root:
            argv.append("--user=mysql")
        done = subprocess.run(argv, capture_output=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(
                f"mariadb-install-db failed ({done.returncode}): {done.stderr.decode()[-2000:]}"
            )
        self.start()
        self._bootstrap()
        self.stop(clean=True)

    def _bootstrap(self) -> None:
        statements = [
            (
                f"CREATE DATABASE IF NOT EXISTS `{self.database}` "
                "CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
            ),
        ]
        for host in ("%", "localhost", "127.0.0.1"):
            statements.append(f"CREATE USER IF NOT EXISTS '{USER}'@'{host}' IDENTIFIED BY '{PASSWORD}'")
            statements.append(f"GRANT ALL PRIVILEGES ON `{self.database}`.* TO '{USER}'@'{host}'")
        statements.append("FLUSH PRIVILEGES")
        done = subprocess.run(
            ["mariadb", "--no-defaults", "-uroot", f"--socket={self.socket_path}", "-e",
             ";\n".join(statements)],
            capture_output=True,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"bootstrapping the private MariaDB failed: {done.stderr.decode()}")

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        assert self._process is not None
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(
                    f"mariadbd exited ({self._process.returncode}); log: "
                    + self.log_path.read_text(errors="replace")[-2000:]
                )
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                    sock.settimeout(0.5)
                    greeting = sock.recv(64)
                    if greeting:
                        return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"mariadbd did not answer on port {self.port} in {START_TIMEOUT_S} s")
