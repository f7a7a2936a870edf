"""Configuration: file + environment, validated with messages that say what to change."""

from __future__ import annotations

import logging
import sys
import tomllib
from concurrent.futures import ThreadPoolExecutor
from importlib.metadata import PackageNotFoundError
from pathlib import Path
from typing import Any

import pytest
from botkit_console import ConsoleSettings
from pydantic import BaseModel, ConfigDict

import botkit.config as config_module
from botkit.config import ConfigError, PluginSettings, SectionSettings, Settings, load_settings, section
from botkit.plugins import Plugin, loader
from botkit.plugins.loader import (
    BUILTIN_PLUGINS,
    adapter_install_hints,
    enabled_plugin_names,
    load_adapter_class,
    load_plugins,
    plugin_config,
)
from botkit.store import StoreError
from botkit.store.database import create_engine


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


def _load_error(tmp_path: Path, toml: str) -> tuple[Path, str]:
    """Load a botkit.toml with ``toml`` in it; its path and the ConfigError's message."""
    config = tmp_path / "botkit.toml"
    config.write_text(toml)
    with pytest.raises(ConfigError) as caught:
        load_settings(config)
    return config, str(caught.value)


def test_unknown_key_names_the_key_and_its_variable(tmp_path: Path) -> None:
    config, message = _load_error(tmp_path, "[stream]\nedit_intervall = 2\n")
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


# -- one file per call, no module state --------------------------------------------------------


def test_each_call_reads_its_own_file(tmp_path: Path) -> None:
    files = []
    for n in range(2):
        path = tmp_path / f"bot{n}.toml"
        path.write_text(f'[llm]\nbase_url = "http://file{n}/v1"\n')
        files.append(path)
    with ThreadPoolExecutor(max_workers=4) as pool:
        got = list(pool.map(lambda n: load_settings(files[n % 2]).llm.base_url, range(40)))
    assert got == [f"http://file{n % 2}/v1" for n in range(40)]
    assert Settings().llm.base_url == "http://127.0.0.1:8000/v1"  # the class itself reads no file
    assert not any(name.startswith("_current") for name in vars(config_module))


# -- adapter and plugin sections: their own env prefix, env over file ----------------------------


def test_adapter_models_are_settings_with_their_own_prefix() -> None:
    for name in adapter_install_hints():
        model = load_adapter_class(name).settings_model
        assert model is not None and issubclass(model, SectionSettings), name
        assert model.model_config.get("env_prefix") == f"BOTKIT_{name.upper()}__"


def test_adapter_section_env_wins_over_the_file_key_by_key(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = tmp_path / "botkit.toml"
    config.write_text('[console]\nthread = "from-file"\nuser = "bob"\n')
    monkeypatch.setenv("BOTKIT_CONSOLE__THREAD", "from-env")
    monkeypatch.setenv("BOTKIT_CONSOLE__ROLES", '["staff", "admin"]')
    console = section(load_settings(config), "console", ConsoleSettings)
    assert (console.thread, console.user, console.roles) == ("from-env", "bob", ["staff", "admin"])
    assert ConsoleSettings().thread == "from-env"  # the model reads its own prefix on its own too


class Glossary(BaseModel):
    model_config = ConfigDict(extra="forbid")

    terms: dict[str, str] = {}
    footer: str = "-"


GLOSSARY: Plugin[Glossary] = Plugin("glossary", config=Glossary)


def test_plugin_section_reads_its_env_prefix(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = tmp_path / "botkit.toml"
    config.write_text('[plugins.settings.glossary]\nfooter = "file"\nterms = { KV = "file" }\n')
    monkeypatch.setenv("BOTKIT_PLUGINS__SETTINGS__GLOSSARY__TERMS", '{"KV": "key-value"}')
    got = plugin_config(load_settings(config), GLOSSARY)
    assert isinstance(got, Glossary)
    assert (got.terms, got.footer) == ({"KV": "key-value"}, "file")


def test_plugin_with_a_model_always_gets_an_instance(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    assert plugin_config(load_settings(), GLOSSARY) == Glossary()
    assert plugin_config(load_settings(), Plugin("bare")) is None


def test_unknown_plugin_env_key_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("BOTKIT_PLUGINS__SETTINGS__GLOSSARY__FOOTR", "x")
    with pytest.raises(ConfigError) as caught:
        plugin_config(load_settings(), GLOSSARY)
    assert "plugins.settings.glossary.footr" in str(caught.value)
    assert "BOTKIT_PLUGINS__SETTINGS__GLOSSARY__FOOTR" in str(caught.value)


def test_an_unknown_key_from_the_environment_does_not_show_its_value(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("BOTKIT_CONSOLE__PASWORD", "hunter2")
    with pytest.raises(ConfigError, match="BOTKIT_CONSOLE__PASWORD") as caught:
        section(load_settings(), "console", ConsoleSettings)
    assert "hunter2" not in str(caught.value)


# -- top-level sections --------------------------------------------------------------------------


def test_misspelled_section_is_an_error_with_a_suggestion(tmp_path: Path) -> None:
    config, message = _load_error(
        tmp_path, '[databse]\nurl = "sqlite+aiosqlite:///x.db"\n[console]\nthread = "t"\n'
    )
    assert str(config) in message
    assert "unknown section [databse]; did you mean [database]?" in message
    assert "console" not in message.replace("known sections", "")


def test_misspelled_section_in_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("BOTKIT_DATABSE__URL", "sqlite+aiosqlite:///x.db")
    with pytest.raises(
        ConfigError, match=r"\[databse\] in env BOTKIT_DATABSE__URL; did you mean BOTKIT_DATABASE__URL\?"
    ):
        load_settings()


def test_section_far_from_any_lists_the_known_ones(tmp_path: Path) -> None:
    _, message = _load_error(tmp_path, "[frobnicate]\nx = 1\n")
    assert "unknown section [frobnicate] (known sections: access, bot, console, " in message


def _slack_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    """As after a plain ``pip install -e .``: the slack extra's packages are absent."""
    real = loader.distribution

    def distribution(name: str) -> Any:
        if name.startswith("slack"):
            raise PackageNotFoundError(name)
        return real(name)

    monkeypatch.setattr(loader, "distribution", distribution)


def test_section_of_an_adapter_that_is_not_installed(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _slack_missing(monkeypatch)
    config, message = _load_error(tmp_path, '[slack]\nbot_token = "xoxb-1"\n')
    assert (
        "[slack] is configured but the slack adapter is not installed: pip install -e '.[slack]'" in message
    )
    monkeypatch.chdir(tmp_path)
    config.unlink()
    monkeypatch.setenv("BOTKIT_SLACK__BOT_TOKEN", "xoxb-1")
    with pytest.raises(
        ConfigError, match=r"env BOTKIT_SLACK__BOT_TOKEN configures \[slack\], but the slack adapter"
    ):
        load_settings()


def test_adapter_without_its_extra_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    _slack_missing(monkeypatch)
    assert adapter_install_hints()["slack"] == "pip install -e '.[slack]'"
    assert adapter_install_hints()["console"] is None
    with pytest.raises(ConfigError, match=r"adapter 'slack' .* not installed: pip install -e '\.\[slack\]'"):
        load_adapter_class("slack")
    with pytest.raises(ConfigError) as caught:
        load_adapter_class("slakc")
    assert "did you mean 'slack'" not in str(caught.value)  # not installed: no suggestion to use it
    assert "installed: console, discord)" in str(caught.value)


# -- [plugins] enabled adds to the built-ins, disabled removes them ----------------------------


def test_builtins_are_the_shipped_entry_points() -> None:
    project = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
    shipped = project["project"]["entry-points"]["botkit.plugins"]
    assert sorted(BUILTIN_PLUGINS) == sorted(shipped)


def _names(**plugins: Any) -> list[str]:
    return [p.name for p in load_plugins(load_settings(None, plugins=plugins))]


def test_enabled_adds_to_the_builtins(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    assert _names() == list(BUILTIN_PLUGINS)
    assert _names(enabled=["math", "ask"], disabled=[]) == list(BUILTIN_PLUGINS)  # a built-in: no-op
    assert _names(disabled=["status", "ask"]) == ["math", "persona_admin"]
    found = {name: None for name in (*BUILTIN_PLUGINS, "glossary")}
    settings = PluginSettings(enabled=["glossary"], disabled=["math"])
    assert enabled_plugin_names(settings, found) == ["ask", "persona_admin", "status", "glossary"]  # type: ignore[arg-type]


def test_an_old_partial_list_keeps_the_others_and_says_so(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.chdir(tmp_path)
    with caplog.at_level(logging.WARNING, logger="botkit.plugins.loader"):
        assert _names(enabled=["math"]) == list(BUILTIN_PLUGINS)
    (notice,) = [r.getMessage() for r in caplog.records]
    assert "ask, persona_admin, status stay on" in notice and "[plugins] disabled" in notice
    assert "\n" not in notice
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="botkit.plugins.loader"):
        assert _names(enabled=["math"], disabled=["ask"]) == ["math", "persona_admin", "status"]
        found = {name: None for name in (*BUILTIN_PLUGINS, "glossary")}
        recommended = PluginSettings(enabled=["glossary"])  # only additions: nothing to warn about
        assert enabled_plugin_names(recommended, found) == [*BUILTIN_PLUGINS, "glossary"]  # type: ignore[arg-type]
    assert caplog.records == []


def test_disabled_mistakes_are_errors(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=r"\[plugins\] disabled names 'stats'.*did you mean 'status'\?"):
        _names(disabled=["stats"])
    with pytest.raises(ConfigError, match="'math' is in both"):
        _names(enabled=["math"], disabled=["math"])
    with pytest.raises(ConfigError, match=r"\[plugins\.settings\.glosary\] is set, but no plugin"):
        _names(settings={"glosary": {}})


# -- errors that name the key (issue 13) --------------------------------------------------------


def test_socket_mode_without_app_token_names_the_key(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    pytest.importorskip("slack_bolt")
    from botkit_slack import SlackSettings

    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as caught:
        section(load_settings(None, slack={"bot_token": "xoxb-1"}), "slack", SlackSettings)
    message = str(caught.value)
    assert "slack.app_token: mode 'socket' needs app_token" in message
    assert "BOTKIT_SLACK__APP_TOKEN" in message
    assert "env BOTKIT_SLACK]" not in message


def test_env_value_of_the_wrong_shape_names_the_variable_and_the_shape(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("BOTKIT_LLM__VLLM__COMMAND", "/path/to/vllm")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    message = str(caught.value)
    assert "llm.vllm.command" in message and "got '/path/to/vllm'" in message
    assert """BOTKIT_LLM__VLLM__COMMAND='["vllm", "serve"]'""" in message
    assert "EnvSettingsSource" not in message


def test_postgres_without_asyncpg_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "asyncpg", None)  # as if asyncpg were not installed
    with pytest.raises(StoreError) as caught:
        create_engine("postgresql+asyncpg://bot:s3cret@db.example/bot")
    assert "pip install -e '.[postgres]'" in str(caught.value)
    assert "s3cret" not in str(caught.value)


def test_the_event_loop_is_chosen_and_validated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """``[bot] event_loop``: auto takes uvloop where installed; a wrong name or a missing uvloop
    stops the start with what to do."""
    import asyncio

    from botkit import eventloop

    async def loop_class() -> str:
        return type(asyncio.get_running_loop()).__module__

    assert eventloop.run(loop_class(), "asyncio").startswith("asyncio")
    if eventloop.uvloop_available():
        assert eventloop.run(loop_class(), "auto").startswith("uvloop")
    monkeypatch.chdir(tmp_path)
    assert load_settings().bot.event_loop == "auto"
    monkeypatch.setenv("BOTKIT_BOT__EVENT_LOOP", "fast")
    with pytest.raises(ConfigError, match=r"bot\.event_loop.*'auto', 'uvloop' or 'asyncio'.*got 'fast'"):
        load_settings()
    monkeypatch.setattr("importlib.util.find_spec", lambda name: None)
    monkeypatch.setattr(config_module, "uvloop_available", eventloop.uvloop_available)
    assert eventloop.run(loop_class(), "auto").startswith("asyncio")
    monkeypatch.setenv("BOTKIT_BOT__EVENT_LOOP", "uvloop")
    with pytest.raises(
        ConfigError, match=r"bot\.event_loop.*uvloop is not installed: pip install -e '\.\[speed\]'"
    ):
        load_settings()
