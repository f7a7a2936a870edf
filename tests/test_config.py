"""Configuration: file + environment, validated with messages that say what to change."""

from __future__ import annotations

from pathlib import Path

import pytest
from botkit_console import ConsoleSettings

from botkit.config import ConfigError, load_settings, section


def test_defaults_are_the_embedded_default(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings()
    assert settings.llm.backend == "auto"
    assert settings.llm.temperature == 0.6
    assert settings.llm.top_p == 0.95
    assert settings.llm.max_model_len == 4096
    assert settings.database.url == "sqlite+aiosqlite:///botkit.db"
    assert settings.bot.adapters == ["console"]


def test_environment_overrides_the_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = tmp_path / "botkit.toml"
    config.write_text('[llm]\nbase_url = "http://file/v1"\ntemperature = 0.5\n[console]\nthread = "t"\n')
    monkeypatch.setenv("BOTKIT_LLM__BASE_URL", "http://env/v1")
    monkeypatch.setenv("BOTKIT_CONSOLE__USER", "alice")
    settings = load_settings(config)
    assert settings.llm.base_url == "http://env/v1"
    assert settings.llm.temperature == 0.5
    console = section(settings, "console", ConsoleSettings)
    assert (console.thread, console.user) == ("t", "alice")


def test_unknown_key_names_the_key_and_its_variable(tmp_path: Path) -> None:
    config = tmp_path / "botkit.toml"
    config.write_text("[stream]\nedit_intervall = 2\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(config)
    message = str(caught.value)
    assert str(config) in message
    assert "stream.edit_intervall" in message
    assert "BOTKIT_STREAM__EDIT_INTERVALL" in message


def test_bad_value_says_what_was_given(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("BOTKIT_LLM__TEMPERATURE", "hot")
    with pytest.raises(ConfigError, match=r"llm\.temperature.*got 'hot'"):
        load_settings()


def test_broken_toml_and_missing_file(tmp_path: Path) -> None:
    config = tmp_path / "botkit.toml"
    config.write_text("[llm\n")
    with pytest.raises(ConfigError, match="cannot read configuration"):
        load_settings(config)
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "nope.toml")


def test_adapter_section_errors_name_the_section(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("BOTKIT_CONSOLE__THREAD_NAME", "x")
    with pytest.raises(ConfigError, match=r"console\.thread_name"):
        section(load_settings(), "console", ConsoleSettings)


def test_secrets_are_not_shown(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("BOTKIT_LLM__API_KEY", "sk-very-secret")
    settings = load_settings()
    assert "sk-very-secret" not in repr(settings)
    assert settings.llm.api_key.get_secret_value() == "sk-very-secret"
