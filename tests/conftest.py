"""Shared fixtures. Tests talk to real servers on loopback only."""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
from db_faults import PrivatePostgres, find_binaries, scratch_root
from services import unreachable
from sqlalchemy.engine import URL, make_url

PG_DSN = os.environ.get("BOTKIT_TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test")


async def _admin() -> asyncpg.Connection:
    try:
        return await asyncpg.connect(PG_DSN, timeout=5)
    except asyncpg.InvalidCatalogNameError:
        return await asyncpg.connect(str(make_url(PG_DSN).set(database="postgres")), timeout=5)


def _run_sql(statement: str) -> None:
    async def run() -> None:
        admin = await _admin()
        try:
            await admin.execute(statement)
        finally:
            await admin.close()

    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(run())
    finally:
        loop.close()


#: The spool's directory for a database that is not a SQLite file, where the test does not set one.
PENDING_ENV = "BOTKIT_DATABASE__PENDING_WRITES_DIR"


@pytest.fixture
def _pending_in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``database.pending_writes_dir`` under ``tmp_path`` for a test on a database server, unless
    it sets one itself (its settings win over the environment). Without this a bot on PostgreSQL
    spools into ``./botkit-pending`` of the directory pytest runs in (the default, kept for
    deployments), littering the checkout. A bot the test starts in a process of its own gets
    it where the test passes on its environment; bots of one test share it, as they would share
    the default."""
    directory = tmp_path / "botkit-pending"
    monkeypatch.setenv(PENDING_ENV, str(directory))
    return directory


@pytest.fixture
def postgres_url(_pending_in_tmp: Path) -> Iterator[str]:
    """A fresh, empty PostgreSQL database (``postgresql+asyncpg://``), dropped after the test;
    the bots on it spool under the test's ``tmp_path`` (:func:`_pending_in_tmp`).

    Skips with the reason when the server (127.0.0.1:5432, or $BOTKIT_TEST_POSTGRES_DSN) is down,
    and fails under CI (see tests/services.py); `.ci/run` starts it.
    """
    name = f"botkit_e2e_{secrets.token_hex(6)}"
    try:
        _run_sql(f'CREATE DATABASE "{name}"')
    except (OSError, TimeoutError, asyncpg.CannotConnectNowError) as err:
        unreachable("PostgreSQL", make_url(PG_DSN).render_as_string(), err)
    base = make_url(PG_DSN)
    url = URL.create(
        "postgresql+asyncpg", username=base.username, host=base.host, port=base.port, database=name
    )
    yield url.render_as_string(hide_password=False)
    _run_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def _postgres_template() -> Iterator[tuple[Path, Path, Path]]:
    """One ``initdb`` per session: (binaries, template cluster, scratch directory)."""
    bin_dir = find_binaries()
    if bin_dir is None:
        reason = "PostgreSQL server binaries (initdb, pg_ctl) not found in /usr/lib/postgresql/15/bin"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}; CI must run the database drills")
        pytest.skip(reason)
    root = scratch_root()
    try:
        yield bin_dir, PrivatePostgres.initdb(bin_dir, root), root
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def private_postgres(
    _postgres_template: tuple[Path, Path, Path], _pending_in_tmp: Path
) -> Iterator[PrivatePostgres]:
    """A PostgreSQL server of this test alone, running on a free port (never the shared one on
    5432), which the test may :meth:`~PrivatePostgres.stop` and :meth:`~PrivatePostgres.start`;
    ``.url`` is its botkit URL (an empty database: migrate it, e.g. ``auto_migrate = true``);
    its bots spool under the test's ``tmp_path`` (:func:`_pending_in_tmp`).
    Skips when the server binaries are missing, and fails instead under ``CI=true``."""
    bin_dir, template, root = _postgres_template
    server = PrivatePostgres.from_template(bin_dir, template, root)
    server.start_sync()
    try:
        yield server
    finally:
        server.close()
