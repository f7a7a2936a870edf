"""Database faults for the drills: a SQLite file locked by another connection, and a private
PostgreSQL server that a test may stop and start at will.

The server is the test's own: its own data directory and a free port, never the shared server on
5432. ``initdb`` runs once per test session (a pristine cluster, trust authentication, no fsync) and
each test gets a copy of it, so a drill costs a server start (~0.3 s), not an ``initdb``.
PostgreSQL refuses to run as root; as root, the server runs as the ``postgres`` user.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import shutil
import socket
import sqlite3
import subprocess
import tempfile
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

BIN_DIRS = (Path("/usr/lib/postgresql/15/bin"),)


def find_binaries() -> Path | None:
    """The directory with ``initdb``, ``pg_ctl`` and ``postgres``, or None."""
    for directory in BIN_DIRS:
        if all((directory / name).is_file() for name in ("initdb", "pg_ctl", "postgres")):
            return directory
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class PrivatePostgres:
    """One server on ``127.0.0.1:port`` with its data in ``data``; :attr:`url` is botkit's URL."""

    def __init__(self, bin_dir: Path, data: Path, port: int, owner: str | None) -> None:
        self.bin_dir, self.data, self.port, self.owner = bin_dir, data, port, owner
        self.url = f"postgresql+asyncpg://postgres@127.0.0.1:{port}/postgres"
        self.running = False

    @classmethod
    def initdb(cls, bin_dir: Path, root: Path) -> Path:
        """A pristine cluster in ``root/template`` (the test copies it)."""
        owner = _owner()
        template = root / "template"
        _run_as(owner, [str(bin_dir / "initdb"), "-D", str(template), "-A", "trust", "-U", "postgres",
                        "--no-sync", "-E", "UTF8", "--locale=C"])  # fmt: skip
        return template

    @classmethod
    def from_template(cls, bin_dir: Path, template: Path, root: Path) -> PrivatePostgres:
        owner = _owner()
        data = root / f"data-{os.getpid()}-{free_port()}"
        shutil.copytree(template, data, symlinks=True)
        data.chmod(0o700)
        if owner is not None:
            entry = pwd.getpwnam(owner)
            for path in [data, *data.rglob("*")]:
                os.lchown(path, entry.pw_uid, entry.pw_gid)
        return cls(bin_dir, data, free_port(), owner)

    def _pg_ctl(self, *args: str) -> None:
        _run_as(self.owner, [str(self.bin_dir / "pg_ctl"), "-D", str(self.data), *args])

    def start_sync(self) -> None:
        options = f"-p {self.port} -h 127.0.0.1 -k '' -c fsync=off -c full_page_writes=off"
        self._pg_ctl("-w", "-t", "30", "-l", str(self.data / "server.log"), "-o", options, "start")
        self.running = True

    def stop_sync(self) -> None:
        """A fast shutdown: open connections are cut, new ones refused (as when a server dies)."""
        self._pg_ctl("-w", "-t", "30", "-m", "fast", "stop")
        self.running = False

    async def start(self) -> None:
        await asyncio.to_thread(self.start_sync)

    async def stop(self) -> None:
        await asyncio.to_thread(self.stop_sync)

    def close(self) -> None:
        if self.running:
            try:
                self._pg_ctl("-w", "-t", "30", "-m", "immediate", "stop")
            finally:
                self.running = False
        shutil.rmtree(self.data, ignore_errors=True)


def _owner() -> str | None:
    """PostgreSQL will not run as root: then it runs as ``postgres``."""
    return "postgres" if os.geteuid() == 0 else None


def _run_as(owner: str | None, argv: Sequence[str]) -> None:
    command = [*(["runuser", "-u", owner, "--"] if owner else []), *argv]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:1])} failed ({done.returncode}): {done.stderr or done.stdout}")


def scratch_root() -> Path:
    """A directory the server's user owns (pytest's tmp_path is private to root)."""
    root = Path(tempfile.mkdtemp(prefix="botkit-pg-"))
    owner = _owner()
    if owner is not None:
        entry = pwd.getpwnam(owner)
        os.chown(root, entry.pw_uid, entry.pw_gid)
    return root


@contextlib.contextmanager
def exclusive_lock(database: Path) -> Iterator[threading.Event]:
    """Another connection holds ``BEGIN EXCLUSIVE`` on the SQLite file (every writer waits; in WAL
    mode readers go on) until the event is set or the block ends. It runs in a thread of its own,
    so the event loop of the bot under test never waits for it."""
    release, locked = threading.Event(), threading.Event()

    def hold() -> None:
        with contextlib.closing(sqlite3.connect(database, timeout=30, isolation_level=None)) as db:
            db.execute("BEGIN EXCLUSIVE")
            locked.set()
            release.wait(120)
            db.execute("ROLLBACK")

    holder = threading.Thread(target=hold, name="exclusive-lock")
    holder.start()
    try:
        assert locked.wait(30), f"could not lock {database}"
        yield release
    finally:
        release.set()
        holder.join(30)
