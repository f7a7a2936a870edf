"""Journey: a user configures botkit from the environment, as README and docs/ show it.

tests/test_config_docs.py checks the keys and defaults of the TOML block and the adapter tables;
this checks what it does not: every ``BOTKIT_SECTION__KEY`` variable named anywhere in the docs
is the variable of a real key (a renamed key leaves no dead variable in the docs), and the
README's own examples of environment values load as it says.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from botkit_console import ConsoleSettings
from test_config_docs import ADAPTER_READMES, README, REPO, _plugin_keys, core_keys

from botkit.config import ConfigError, env_name, load_settings, section

#: Variables the docs name that are not configuration keys, each with why.
NOT_KEYS = {
    "BOTKIT_CONFIG": "the configuration file's path",
    "BOTKIT_DATABSE__URL": "README's example of a misspelt section, which is an error",
    "BOTKIT_EXPERIMENT_EARLY_POST": "docs/benchmarks.md: a reverted experiment, run from its commit",
    "BOTKIT_STANDIN_FORK_CHILDREN": "the stand-in's own test switch (docs/reliability.md)",
    "BOTKIT_TEST_POSTGRES_DSN": "the test suite's PostgreSQL",
}


def _documents() -> list[Path]:
    found = [README, *sorted((REPO / "docs").glob("*.md")), *(path for path, _ in ADAPTER_READMES.values())]
    found += sorted((REPO / "examples").rglob("*.md")) + sorted((REPO / "examples").rglob("*.toml"))
    return found + sorted((REPO / "benchmarks").glob("*.md"))


def _variables() -> set[str]:
    keys = set(core_keys())
    for adapter, (_, model) in ADAPTER_READMES.items():
        keys |= {f"{adapter}.{name}" for name in model.model_fields}
    for table, fields in _plugin_keys().items():
        keys |= {table} | {f"{table}.{name}" for name in fields}
    return {env_name(key) for key in keys}


def test_every_variable_the_docs_name_is_a_keys_variable() -> None:
    known = _variables()
    unknown = []
    for path in _documents():
        for name in sorted(set(re.findall(r"BOTKIT_[A-Z0-9_]+", path.read_text(encoding="utf-8")))):
            prefix = name.endswith("__") and any(v.startswith(name) for v in known)  # BOTKIT_SLACK__<KEY>
            if name not in known and name not in NOT_KEYS and not prefix:
                unknown.append(f"{path.relative_to(REPO)}: {name}")
    assert not unknown, "documented variables that no key has: " + ", ".join(unknown)


def test_the_readmes_environment_examples_load_as_it_says(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOTKIT_LLM__BASE_URL", "http://10.0.0.5:8000/v1")
    monkeypatch.setenv("BOTKIT_LLM__VLLM__COMMAND", '["vllm", "serve"]')
    monkeypatch.setenv("BOTKIT_CONSOLE__ROLES", '["admin","medical"]')
    monkeypatch.setenv("BOTKIT_PLUGINS__SETTINGS__HOUSE_RULES__FOOTER", "_(checked by a person)_")
    settings = load_settings(None)
    assert settings.llm.base_url == "http://10.0.0.5:8000/v1"
    assert settings.llm.vllm.command == ["vllm", "serve"]
    assert section(settings, "console", ConsoleSettings).roles == ["admin", "medical"]
    assert settings.table("plugins.settings.house_rules") == {"footer": "_(checked by a person)_"}


def test_a_misspelt_section_in_the_environment_is_an_error_as_the_readme_says(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("BOTKIT_DATABSE__URL", "sqlite+aiosqlite:///x.db")
    with pytest.raises(ConfigError) as caught:
        load_settings(None)
    assert "unknown section [databse] in env BOTKIT_DATABSE__URL; did you mean BOTKIT_DATABASE__URL?" in str(
        caught.value
    )
