"""Every configuration key is documented, and every documented key exists, with its real default.

The settings models are the truth: ``botkit.config.Settings`` and its sections, the console's
``ConsoleSettings`` (both in README.md's "All keys with their defaults" block), and each adapter's
model (``SlackSettings``, ``DiscordSettings``: the settings table of the adapter's README). A key
added, renamed or re-defaulted in code without the docs, or the other way round, fails here.

README block conventions: ``key = value`` is the default (parsed as TOML and compared);
``# key = value`` is an example for a key whose default is not a plain value; ``# key: text``
describes such a default in words. Adapter tables: key, default (a TOML value, ``required`` or
``–`` for none), environment variable, what it does.
"""

from __future__ import annotations

import re
import tomllib
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, get_origin

import pytest
from botkit_console import ConsoleSettings
from botkit_discord.settings import DiscordSettings
from botkit_slack.settings import SlackSettings
from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo

from botkit.config import Settings, env_name, load_settings, section

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
ADAPTER_READMES = {
    "slack": (REPO / "adapters" / "botkit_slack" / "README.md", SlackSettings),
    "discord": (REPO / "adapters" / "botkit_discord" / "README.md", DiscordSettings),
}

_HEADER = re.compile(r"^\s*\[([a-z_.]+)\]")
_KEY = re.compile(r"^\s*(?P<comment>#\s*)?(?P<key>[a-z_]+)\s*(?P<sep>[=:])")
_MISSING = object()


def _section_model(field: FieldInfo) -> type[BaseModel] | None:
    annotation = field.annotation
    return annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None


def model_keys(model: type[BaseModel], prefix: str) -> dict[str, FieldInfo]:
    """Every leaf key of a settings model, dotted (``llm.vllm.port``); nested models are walked."""
    keys: dict[str, FieldInfo] = {}
    for name, field in model.model_fields.items():
        nested = _section_model(field)
        if nested is not None:
            keys |= model_keys(nested, f"{prefix}{name}.")
        else:
            keys[prefix + name] = field
    return keys


def core_keys() -> dict[str, FieldInfo]:
    return model_keys(Settings, "") | model_keys(ConsoleSettings, "console.")


def _default(field: FieldInfo) -> Any:
    if field.is_required():
        return _MISSING
    value = field.get_default(call_default_factory=True)
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    return str(value) if isinstance(value, Path) else value


def readme_block() -> str:
    """The TOML block under "All keys with their defaults"."""
    text = README.read_text()
    after = text[text.index("All keys with their defaults") :]
    match = re.search(r"```toml\n(.*?)```", after, re.DOTALL)
    assert match, "README.md: no ```toml block after 'All keys with their defaults'"
    return match.group(1)


def documented_core_keys() -> tuple[dict[str, Any], set[str]]:
    """(key -> default as written, or _MISSING when only described; table headers seen)."""
    keys: dict[str, Any] = {}
    headers: set[str] = set()
    section = ""
    for line in readme_block().splitlines():
        header = _HEADER.match(line)
        if header:
            section = header.group(1)
            headers.add(section)
            continue
        match = _KEY.match(line)
        if not match:
            continue
        key = f"{section}.{match['key']}"
        assert key not in keys, f"README.md documents {key} twice"
        plain = not match["comment"] and match["sep"] == "="
        keys[key] = tomllib.loads(line)[match["key"]] if plain else _MISSING
    return keys, headers


def _is_table(field: FieldInfo) -> bool:
    """A key whose value is a table of free names (``personas.bindings``, ``plugins.settings``)."""
    return get_origin(field.annotation) is dict


def _documented_table(key: str, headers: set[str]) -> bool:
    """A table key is documented by its header, or a sub-table's (``[plugins.settings.NAME]``)."""
    return key in headers or any(h.startswith(key + ".") for h in headers)


def test_every_core_and_console_key_is_in_the_readme() -> None:
    documented, headers = documented_core_keys()
    missing = [
        key
        for key, field in core_keys().items()
        if key not in documented and not (_is_table(field) and _documented_table(key, headers))
    ]
    assert not missing, f"README.md's 'All keys with their defaults' block lacks: {', '.join(missing)}"


def _plugin_keys() -> dict[str, dict[str, FieldInfo]]:
    """``plugins.settings.NAME`` -> the installed plugin's config model fields."""
    found: dict[str, dict[str, FieldInfo]] = {}
    for ep in entry_points(group="botkit.plugins"):
        model = ep.load().config_model
        found[f"plugins.settings.{ep.name}"] = dict(model.model_fields) if model else {}
    return found


def test_every_key_in_the_readme_exists_with_that_default() -> None:
    documented, headers = documented_core_keys()
    known = core_keys()
    plugins = _plugin_keys()
    sections = {key.rpartition(".")[0] for key in known}
    for header in headers:
        table = header in known and _is_table(known[header])
        assert header in sections or table or header in plugins, f"README.md: no section [{header}]"
    for key, value in documented.items():
        section, _, name = key.rpartition(".")
        if section in plugins:
            assert name in plugins[section], f"README.md documents {key}, which plugin has no such key"
            continue
        assert key in known, f"README.md documents {key}, which is not a configuration key"
        if value is not _MISSING:
            assert value == _default(known[key]), (
                f"README.md: {key} = {value!r}, but the default is {_default(known[key])!r}"
            )


def test_readme_defaults_block_is_a_valid_configuration(tmp_path: Path) -> None:
    """Copied into botkit.toml as it stands, the block loads (and its [console] table validates)."""
    config = tmp_path / "botkit.toml"
    config.write_text(readme_block())
    settings = load_settings(config)
    assert section(settings, "console", ConsoleSettings).thread == "default"


# -- adapters ------------------------------------------------------------------------------------


def settings_table(readme: Path) -> list[dict[str, str]]:
    """The rows of the table under the README's "## Settings" heading, by column name."""
    text = readme.read_text()
    match = re.search(r"^## Settings.*?\n(\|.*?)\n\n", text, re.MULTILINE | re.DOTALL)
    assert match, f"{readme}: no table under a '## Settings' heading"
    lines = [line for line in match.group(1).splitlines() if line.startswith("|")]
    columns = [cell.strip().lower() for cell in lines[0].strip("|").split("|")]
    rows = []
    for line in lines[2:]:
        cells = [cell.strip() for cell in re.split(r"(?<!\\)\|", line.strip().strip("|"))]
        rows.append(dict(zip(columns, cells, strict=True)))
    return rows


def _written_default(cell: str) -> Any:
    cell = cell.strip()
    if cell == "required":
        return _MISSING
    if cell in ("–", "-", "none"):
        return None
    return tomllib.loads(f"v = {cell.strip('`')}")["v"]


@pytest.mark.parametrize("adapter", sorted(ADAPTER_READMES))
def test_adapter_readme_settings_table_matches_the_model(adapter: str) -> None:
    readme, model = ADAPTER_READMES[adapter]
    rows = settings_table(readme)
    columns = {"key", "default", "environment variable", "what it does"}
    assert columns <= set(rows[0]), f"{readme}: columns {sorted(rows[0])}"
    documented: dict[str, dict[str, str]] = {}
    for row in rows:
        (key,) = re.findall(r"`([a-z_]+)`", row["key"])
        documented[key] = row
    fields = model.model_fields
    assert sorted(documented) == sorted(fields), f"{readme}: table keys differ from {model.__name__}"
    for key, row in documented.items():
        assert row["environment variable"] == f"`{env_name(f'{adapter}.{key}')}`", (
            f"{readme}: {key}'s variable"
        )
        assert _written_default(row["default"]) == _default(fields[key]), f"{readme}: {key}'s default"
        assert row["what it does"], f"{readme}: {key} is not explained"
