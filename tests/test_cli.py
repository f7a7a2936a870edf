"""The CLI's non-chat commands, as an admin runs them."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from botkit.personas import shipped_personas_dir


def _botkit(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "botkit.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
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
    assert "database revision: 0002 (newest: 0002)" in current.stdout


def test_configuration_mistakes_exit_2_with_the_key_and_no_traceback(tmp_path: Path) -> None:
    (tmp_path / "botkit.toml").write_text('[databse]\nurl = "sqlite+aiosqlite:///x.db"\n')
    result = _botkit(tmp_path, "personas", "check")
    assert result.returncode == 2, result.stdout + result.stderr
    assert "unknown section [databse]; did you mean [database]?" in result.stderr
    assert "Traceback" not in result.stderr
