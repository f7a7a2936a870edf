"""The CLI's non-chat commands, as an admin runs them, and what any command prints on stderr."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from importlib.metadata import version
from pathlib import Path

import pytest
from subprocesses import clean_env, free_port

import botkit
from botkit.personas import shipped_personas_dir
from botkit.store import head_revision
from botkit.testing.fake_discord import FakeDiscord

#: A log line as ``botkit`` writes them: time, level, logger.
LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d [\d:,]+ (?P<level>[A-Z]+) (?P<logger>\S+): ", re.MULTILINE)


def _botkit(
    cwd: Path, *args: str, env: dict[str, str] | None = None, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "botkit.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
        input=stdin,
    )


def test_personas_check_passes_on_the_shipped_personas(tmp_path: Path) -> None:
    result = _botkit(tmp_path, "personas", "check")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "4 persona(s) ok, 0 error(s)" in result.stdout


def test_personas_check_names_file_and_line_and_fails(tmp_path: Path) -> None:
    folder = tmp_path / "personas"
    shutil.copytree(shipped_personas_dir(), folder)
    (folder / "math.md").write_text("---\nname: math\ndescription: x\ntemprature: 0.6\n---\n{{ question }}\n")
    (folder / "broken.md").write_text("---\nname: broken\ndescription: x\n---\n{% if question %}\n")
    result = _botkit(tmp_path, "personas", "check", str(folder))
    assert result.returncode == 1
    assert f"{folder / 'math.md'}:4: unknown key 'temprature'" in result.stdout
    assert str(folder / "broken.md") in result.stdout
    assert "3 persona(s) ok, 2 error(s)" in result.stdout


def test_db_upgrade_and_current(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'data' / 'bot.db'}"
    upgraded = _botkit(tmp_path, "db", "upgrade", "--url", url)
    assert upgraded.returncode == 0, upgraded.stderr
    current = _botkit(tmp_path, "db", "current", "--url", url)
    head = head_revision()
    assert f"database revision: {head} (newest: {head})" in current.stdout


def test_configuration_mistakes_exit_2_with_the_key_and_no_traceback(tmp_path: Path) -> None:
    (tmp_path / "botkit.toml").write_text('[databse]\nurl = "sqlite+aiosqlite:///x.db"\n')
    result = _botkit(tmp_path, "personas", "check")
    assert result.returncode == 2, result.stdout + result.stderr
    assert "unknown section [databse]; did you mean [database]?" in result.stderr
    assert "Traceback" not in result.stderr


def test_version_is_the_packages(tmp_path: Path) -> None:
    result = _botkit(tmp_path, "--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"botkit {botkit.__version__}\n"
    assert botkit.__version__ == version("botkit")


def test_db_current_without_a_database_says_so_and_creates_nothing(tmp_path: Path) -> None:
    result = _botkit(tmp_path, "db", "current", env=clean_env())
    assert result.returncode == 1
    assert result.stderr == (
        "botkit: no database at botkit.db yet; `botkit db upgrade` creates it "
        "(so do `botkit chat` and `botkit run`)\n"
    )
    assert list(tmp_path.iterdir()) == []


def _without_slack_sdk(tmp_path: Path) -> dict[str, str]:
    """An environment where ``import slack_bolt`` fails as after a plain ``pip install -e .``: a
    directory first on PYTHONPATH whose ``slack_bolt`` raises what a missing package raises."""
    shim = tmp_path / "shim" / "slack_bolt"
    shim.mkdir(parents=True)
    (shim / "__init__.py").write_text(
        "raise ModuleNotFoundError(\"No module named 'slack_bolt'\", name='slack_bolt')\n"
    )
    path = os.pathsep.join([str(shim.parent), os.environ.get("PYTHONPATH", "")])
    return clean_env(PYTHONPATH=path)


def test_adapter_without_its_extra_stops_before_anything_starts(tmp_path: Path) -> None:
    env = _without_slack_sdk(tmp_path)
    (tmp_path / "botkit.toml").write_text('[bot]\nadapters = ["slack"]\n')
    result = _botkit(tmp_path, "run", env=env)
    assert result.returncode == 2
    assert result.stderr == "botkit: error: the slack adapter needs its extra: pip install -e '.[slack]'\n"
    assert not (tmp_path / "botkit.db").exists()  # no migrations, no model server before the check


def test_unknown_adapter_lists_only_adapters_that_can_be_imported(tmp_path: Path) -> None:
    env = _without_slack_sdk(tmp_path)
    (tmp_path / "botkit.toml").write_text('[bot]\nadapters = ["slakc"]\n')
    result = _botkit(tmp_path, "run", env=env)
    assert result.returncode == 2
    assert result.stderr == (
        "botkit: error: adapter 'slakc' is configured in [bot] adapters but not installed "
        "(installed: console, discord)\n"
    )


def test_importing_the_cli_leaves_the_heavy_libraries_for_later(tmp_path: Path) -> None:
    heavy = ["openai", "sqlalchemy", "alembic", "aiohttp", "rich", "watchfiles", "discord", "slack_bolt"]
    code = f"import sys, botkit.cli; print([m for m in {heavy!r} if m in sys.modules])"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout == "[]\n"


def test_piped_chat_prints_only_the_backend_line_on_stderr(tmp_path: Path) -> None:
    result = _botkit(tmp_path, "chat", env=clean_env(), stdin="What is 2+2?\n")
    assert result.returncode == 0, result.stderr
    assert "\\boxed{4}" in result.stdout
    assert result.stderr.splitlines() == [
        "botkit: model backend: built-in vLLM stand-in (no GPU/vLLM here): canned answers, not a real model"
    ]


def test_debug_shows_the_libraries_log_lines(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}"
    quiet = _botkit(tmp_path, "--log-level", "info", "db", "upgrade", "--url", url, env=clean_env())
    assert quiet.returncode == 0, quiet.stderr
    assert "alembic" not in quiet.stderr
    (tmp_path / "bot.db").unlink()
    debug = _botkit(tmp_path, "--log-level", "debug", "db", "upgrade", "--url", url, env=clean_env())
    assert "INFO alembic.runtime.migration: Running upgrade  -> 0001" in debug.stderr


async def test_botkit_run_on_discord_logs_botkits_lines_and_no_library_noise(tmp_path: Path) -> None:
    async with FakeDiscord() as fake:
        env = clean_env(
            BOTKIT_BOT__ADAPTERS='["discord"]',
            BOTKIT_DISCORD__TOKEN=fake.token,
            BOTKIT_DISCORD__API_URL=fake.api_url,
            BOTKIT_DISCORD__GATEWAY_URL=fake.gateway_url,
            BOTKIT_DISCORD__GUILD_IDS=json.dumps([fake.guild_id]),
            BOTKIT_DISCORD__GUILD_READY_TIMEOUT="0.1",
            BOTKIT_SERVER__PORT=str(free_port()),
        )
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "botkit.cli", "run", cwd=tmp_path, env=env,
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
        try:
            await fake.wait_until_connected(timeout=60)
        finally:
            process.send_signal(signal.SIGTERM)
            _, err = await asyncio.wait_for(process.communicate(), 60)
    stderr = err.decode()
    assert process.returncode in (0, 130), stderr
    assert "PyNaCl" not in stderr and "davey" not in stderr
    lines = list(LOG_LINE.finditer(stderr))
    assert any(line["logger"] == "botkit.app" and line["level"] == "INFO" for line in lines), stderr
    others = [line.group(0) for line in lines if not line["logger"].startswith(("botkit.", "botkit_"))]
    assert all(" WARNING " in line or " ERROR " in line for line in others), others


def _status_until(cwd: Path, env: dict[str, str], done: str) -> subprocess.CompletedProcess[str]:
    """``botkit status`` until its output contains ``done`` (the server may still be starting)."""
    deadline = time.monotonic() + 60
    while True:
        result = _botkit(cwd, "status", env=env)
        if done in result.stdout or time.monotonic() > deadline:
            return result
        time.sleep(0.3)


@pytest.mark.parametrize("server", ["runs", "cannot start"])
def test_status_shows_the_process_only_when_there_is_one(tmp_path: Path, server: str) -> None:
    command = [sys.executable, "-m", "botkit.llm.standin"] if server == "runs" else ["false"]
    env = clean_env(
        BOTKIT_LLM__BACKEND="vllm",
        BOTKIT_LLM__VLLM__COMMAND=json.dumps(command),
        BOTKIT_LLM__VLLM__PORT=str(free_port()),
        BOTKIT_LLM__VLLM__MAX_RESTARTS="0",
        BOTKIT_SERVER__PORT=str(free_port()),
    )
    run = subprocess.Popen(
        [sys.executable, "-m", "botkit.cli", "run"], cwd=tmp_path, env=env,
        stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        result = _status_until(tmp_path, env, "ready" if server == "runs" else "failed")
    finally:
        run.send_signal(signal.SIGTERM)
        run.communicate(timeout=60)
    (line,) = [line for line in result.stdout.splitlines() if "/v1:" in line]
    if server == "runs":
        assert result.returncode == 0, result.stdout + result.stderr
        assert re.search(r": ready, 0/64 in flight, 0 served, pid \d+, up [\d.]+s, 0 restart\(s\)$", line)
    else:
        assert result.returncode == 1, result.stdout + result.stderr
        assert line.endswith(": failed, 0/64 in flight, 0 served, 0 restart(s)")
        assert "pid" not in result.stdout
