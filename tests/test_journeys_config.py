"""Journey: a bad configuration, as a user starting botkit meets it.

One clear message saying what is wrong and how to fix it, exit 2, no traceback, and nothing
started first: the README promises `botkit run` checks its adapters "before it starts anything",
so a missing token or a plugin's bad setting must not wait for the model server (minutes on a
GPU) and the database to come up.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from botkit.cli import main


def _start(tmp_path: Path, toml: str, command: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    config = tmp_path / "botkit.toml"
    config.write_text('[llm]\nbackend = "standin"\n' + toml, encoding="utf-8")
    code = main(["--config", str(config), *command.split()])
    return code, capsys.readouterr().err


@pytest.fixture(autouse=True)
def _clean(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # the default SQLite file would land here
    for name in ("BOTKIT_SLACK__BOT_TOKEN", "BOTKIT_SLACK__APP_TOKEN", "BOTKIT_DISCORD__TOKEN"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize(
    ("adapter", "line"),
    [
        (
            "slack",
            "slack.bot_token: Field required  [file key 'slack.bot_token' or env BOTKIT_SLACK__BOT_TOKEN]",
        ),
        ("discord", "discord.token: Field required  [file key 'discord.token' or env BOTKIT_DISCORD__TOKEN]"),
    ],
)
def test_a_missing_token_is_said_before_anything_starts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], adapter: str, line: str
) -> None:
    code, err = _start(tmp_path, f'[bot]\nadapters = ["{adapter}"]\n', "run", capsys)
    assert code == 2
    assert err == f"botkit: error: invalid configuration ([{adapter}]):\n  {line}\n"
    assert not (tmp_path / "botkit.db").exists()  # no database opened, no model backend announced


def test_a_plugins_bad_setting_is_said_before_anything_starts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    toml = '[plugins]\nenabled = ["house_rules"]\n[plugins.settings.house_rules]\nfooter = 3\n'
    code, err = _start(tmp_path, toml, "chat", capsys)
    assert code == 2
    assert err.startswith("botkit: error: invalid configuration ([plugins.settings.house_rules]):\n")
    assert "env BOTKIT_PLUGINS__SETTINGS__HOUSE_RULES__FOOTER" in err
    assert "model backend" not in err and "Traceback" not in err
    assert not (tmp_path / "botkit.db").exists()


@pytest.mark.parametrize(
    ("toml", "command", "message"),
    [
        (
            '[plugins]\nenabled = ["house_rulez"]\n',
            "chat",
            "plugin 'house_rulez' is enabled in [plugins] enabled but not installed; did you mean 'house_rules'?",
        ),
        (
            '[database]\nurl = "botkit.db"\n',
            "chat",
            "[database] url (BOTKIT_DATABASE__URL): invalid database URL (expected e.g. sqlite+aiosqlite:///botkit.db)",
        ),
        (
            '[database]\nurl = "not a url"\n',
            "audit",
            "[database] url (BOTKIT_DATABASE__URL): invalid database URL (expected e.g. sqlite+aiosqlite:///botkit.db)",
        ),
        (
            "[bot]\nadapters = []\n",
            "run",
            "[bot] adapters (BOTKIT_BOT__ADAPTERS) is empty, so `botkit run` would serve nothing; list the "
            'adapters to run, e.g. adapters = ["slack"] (installed: console, discord, slack)',
        ),
        (
            '[database]\nurl = "not a url"\n',
            "db current",
            "[database] url (BOTKIT_DATABASE__URL): invalid database URL (expected e.g. sqlite+aiosqlite:///botkit.db)",
        ),
        (
            '[database]\nurl = "not a url"\n',
            "eval report",
            "[database] url (BOTKIT_DATABASE__URL): invalid database URL (expected e.g. sqlite+aiosqlite:///botkit.db)",
        ),
        (
            '[database]\nurl = "postgresql://botkit@db/botkit"\n',
            "chat",
            "[database] url (BOTKIT_DATABASE__URL): botkit talks to postgresql through asyncpg, not psycopg: "
            "write the URL as postgresql+asyncpg://… (e.g. postgresql+asyncpg://user@host/dbname)",
        ),
        (
            '[database]\nurl = "sqlite:///botkit.db"\n',
            "run",
            "[database] url (BOTKIT_DATABASE__URL): botkit talks to sqlite through aiosqlite, not pysqlite: "
            "write the URL as sqlite+aiosqlite://… (e.g. sqlite+aiosqlite:///botkit.db)",
        ),
        (
            '[database]\nurl = "mysql://botkit@db/botkit"\n',
            "db current",
            "[database] url (BOTKIT_DATABASE__URL): botkit runs on SQLite and PostgreSQL, not mysql: set "
            "[database] url to sqlite+aiosqlite:///botkit.db or postgresql+asyncpg://user@host/dbname",
        ),
    ],
    ids=[
        "misspelt-plugin",
        "unparsable-url",
        "audit-unparsable-url",
        "no-adapters",
        "db-current",
        "eval-report",
        "postgres-sync-driver",
        "sqlite-sync-driver",
        "unsupported-database",
    ],
)
def test_one_line_before_anything_starts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], toml: str, command: str, message: str
) -> None:
    code, err = _start(tmp_path, toml, command, capsys)
    assert (code, err) == (2, f"botkit: error: {message}\n")
    assert not (tmp_path / "botkit.db").exists()


def test_an_unreachable_database_names_the_key_and_hides_the_password(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = "postgresql+asyncpg://botkit:s3cret@127.0.0.1:1/botkit"  # nothing listens on port 1
    code, err = _start(tmp_path, f'[database]\nurl = "{url}"\n', "chat", capsys)
    assert code == 2
    last = err.splitlines()[-1]
    assert last.startswith(
        "botkit: error: [database] url (BOTKIT_DATABASE__URL): cannot connect to database at "
        "postgresql+asyncpg://botkit:***@127.0.0.1:1/botkit: "
    )
    assert "s3cret" not in err and "Traceback" not in err
