"""Under CI a PostgreSQL that cannot be reached fails the run; elsewhere its tests skip."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from subprocesses import clean_env, free_port

TESTS = Path(__file__).resolve().parent

#: One test of each fixture that needs PostgreSQL: conftest's ``postgres_url``, test_store's ``pg_database``.
POSTGRES_TESTS = [
    "test_postgres_e2e.py::test_thread_history_and_turns_live_in_postgres",
    "test_store.py::test_downgrade_removes_the_schema_and_upgrade_restores_it[postgresql]",
]


def _pytest(ci: str | None) -> subprocess.CompletedProcess[str]:
    """Those tests in another pytest, against a port where nothing listens."""
    env = clean_env(BOTKIT_TEST_POSTGRES_DSN=f"postgresql://postgres@127.0.0.1:{free_port()}/test")
    env.pop("CI", None)
    if ci is not None:
        env["CI"] = ci
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rfEs", *POSTGRES_TESTS],
        cwd=TESTS, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("ci", "outcome"), [("true", "ERROR"), ("1", "ERROR"), (None, "SKIPPED"), ("false", "SKIPPED")]
)
def test_unreachable_postgres_fails_under_ci_and_skips_elsewhere(ci: str | None, outcome: str) -> None:
    result = _pytest(ci)
    assert result.returncode == (1 if outcome == "ERROR" else 0), result.stdout
    lines = [line for line in result.stdout.splitlines() if line.startswith(outcome + " ")]
    assert len(lines) == 2, result.stdout
    for line in lines:
        assert "PostgreSQL unreachable at postgresql://postgres@127.0.0.1:" in line
    said = "CI is set, so this fails instead of skipping (start PostgreSQL)" in result.stdout
    assert said == (outcome == "ERROR")
