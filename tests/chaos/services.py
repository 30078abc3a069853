"""Private PostgreSQL and Redis servers that the chaos tests may stop, kill, restart and wipe.

The machine's shared servers (127.0.0.1:5432 and :6379) are never touched: each private server
listens on a free port, keeps its files in a temporary folder of its own and is stopped by the
pid this module started. PostgreSQL refuses to run as root, so as root the cluster belongs to
the `postgres` user (initdb and pg_ctl run through runuser).
"""

from __future__ import annotations

import contextlib
import getpass
import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import psycopg
import redis


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_until(
    condition: Callable[[], object], timeout: float, what: str, interval: float = 0.05
) -> float:
    """Poll `condition` until it returns something true; return the seconds it took."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if condition():
            return time.monotonic() - started
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


# -- Redis ----------------------------------------------------------------------------------------


class PrivateRedis:
    """A redis-server of its own. Append-only with fsync on every write, as a broker should run
    (README: `appendonly yes`): a restart keeps the queued messages, FLUSHALL does not."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_connect_timeout=1,
                           socket_timeout=2)

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed")
        self.root.mkdir(parents=True, exist_ok=True)
        log = (self.root / "redis.log").open("ab")
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.root),
             "--appendonly", "yes", "--appendfsync", "always", "--save", "",
             "--protected-mode", "no", "--daemonize", "no"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        wait_until(self.answers, 20, f"redis on port {self.port}")

    def answers(self) -> bool:
        try:
            with contextlib.closing(self.client()) as client:
                return bool(client.ping())
        except redis.RedisError:
            return False

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """SIGTERM: a clean shutdown (it writes its files); SIGKILL: a crash."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def flushall(self) -> None:
        with contextlib.closing(self.client()) as client:
            client.flushall()

    def close(self) -> None:
        self.stop(signal.SIGKILL)
        shutil.rmtree(self.root, ignore_errors=True)


# -- PostgreSQL -----------------------------------------------------------------------------------


def _stat(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return []
    return raw[raw.rindex(")") + 2:].split()  # state, ppid, ...


def _running(pid: int) -> bool:
    fields = _stat(pid)
    return bool(fields) and fields[0] not in ("Z", "X")


def _children(pid: int) -> list[int]:
    return [int(entry.name) for entry in Path("/proc").iterdir()
            if entry.name.isdigit() and (fields := _stat(int(entry.name)))
            and int(fields[1]) == pid]


def _pg_bindir() -> Path | None:
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    found = shutil.which("pg_ctl")
    if found:
        candidates.insert(0, str(Path(found).parent))
    for candidate in candidates:
        if (Path(candidate) / "initdb").exists() and (Path(candidate) / "pg_ctl").exists():
            return Path(candidate)
    return None


class PrivatePostgres:
    """A PostgreSQL cluster of its own (initdb in a temporary folder), fsync off: the tests
    restart or kill the server, they do not pull the power."""

    DATABASE = "gradlab"

    def __init__(self) -> None:
        bindir = _pg_bindir()
        if bindir is None:
            raise RuntimeError("PostgreSQL's initdb and pg_ctl are not installed")
        self.bindir = bindir
        self.port = free_port()
        # Not under pytest's tmp_path: as root the cluster runs as `postgres`, which cannot
        # enter pytest's root-only folder.
        self.root = Path(tempfile.mkdtemp(prefix="gradlab-chaos-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "postgres.log"
        self._as_postgres = os.geteuid() == 0
        if self._as_postgres:
            shutil.chown(self.root, user="postgres")
        self.user = "postgres" if self._as_postgres else getpass.getuser()

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://{self.user}@127.0.0.1:{self.port}/{self.DATABASE}"

    def _run(self, *args: str, timeout: float = 60) -> None:
        command = [str(self.bindir / args[0]), *args[1:]]
        if self._as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, timeout=timeout, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE)

    def _options(self) -> str:
        # fsync off: the OS survives every fault here. synchronous_commit stays on, as in
        # production: with it off, a commit is acknowledged before its WAL leaves the server's
        # memory, and a SIGKILL of the cluster loses it (the crash test measured 8 snapshots).
        return (f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off "
                "-c full_page_writes=off -c max_connections=100")

    def create(self) -> None:
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", self.user, "--no-sync",
                  "-E", "UTF8")
        self.start()
        with psycopg.connect(self._dsn("postgres"), autocommit=True) as connection:
            connection.execute(f'CREATE DATABASE "{self.DATABASE}"')

    def _dsn(self, database: str) -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-o", self._options(), "-l", str(self.log),
                  "-w", "-t", "60", "start")

    def stop(self, mode: str = "fast") -> None:
        """fast: roll back open transactions and disconnect everyone (as `docker stop` does)."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")

    def crash(self) -> None:
        """SIGKILL the postmaster and every process of the cluster at once, as the OOM killer
        or a pulled container does: nothing is rolled back or written on the way out; the next
        start runs crash recovery."""
        postmaster = int((self.data / "postmaster.pid").read_text().split()[0])
        group = [postmaster, *_children(postmaster)]
        for pid in group:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        wait_until(lambda: not any(_running(pid) for pid in group), 20, "the killed cluster")

    def answers(self) -> bool:
        try:
            with psycopg.connect(self._dsn(self.DATABASE), connect_timeout=1):
                return True
        except psycopg.OperationalError:
            return False

    def close(self) -> None:
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            if (self.data / "postmaster.pid").exists():
                self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)
