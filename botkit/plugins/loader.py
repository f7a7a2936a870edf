"""Finding plugins and adapters through entry points, and validating their configuration.

Plugins are installed with pip like any package and switched on by name; nothing is fetched or
installed at run time (opsdroid's run-time installer is the cautionary tale).
"""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import Any

from pydantic import ValidationError

from botkit.adapter import Adapter
from botkit.config import ConfigError, Settings, _format_validation_error
from botkit.plugins.api import Plugin

PLUGIN_GROUP = "botkit.plugins"
ADAPTER_GROUP = "botkit.adapters"


def available_plugins() -> dict[str, Any]:
    return {ep.name: ep for ep in entry_points(group=PLUGIN_GROUP)}


def available_adapters() -> dict[str, Any]:
    return {ep.name: ep for ep in entry_points(group=ADAPTER_GROUP)}


def load_plugins(settings: Settings, extra: list[Plugin[Any]] | None = None) -> list[Plugin[Any]]:
    """The enabled plugins, in configuration order, plus ``extra`` ones handed in directly (tests)."""
    found = available_plugins()
    plugins: list[Plugin[Any]] = []
    for name in settings.plugins.enabled:
        ep = found.get(name)
        if ep is None:
            known = ", ".join(sorted(found)) or "none"
            raise ConfigError(
                f"plugin {name!r} is enabled in [plugins] enabled but not installed "
                f"(installed plugins: {known}); pip install the package that provides it"
            )
        plugin = ep.load()
        if not isinstance(plugin, Plugin):
            raise ConfigError(f"entry point {name!r} ({ep.value}) is not a botkit Plugin object")
        plugins.append(plugin)
    plugins.extend(extra or [])
    names = [p.name for p in plugins]
    dupes = {n for n in names if names.count(n) > 1}
    if dupes:
        raise ConfigError(f"plugin(s) enabled twice: {', '.join(sorted(dupes))}")
    return plugins


def plugin_config(settings: Settings, plugin: Plugin[Any]) -> Any:
    """Validate ``[plugins.settings.NAME]`` against the plugin's model (None if it has none)."""
    raw = settings.plugins.settings.get(plugin.name, {})
    if plugin.config_model is None:
        if raw:
            raise ConfigError(
                f"plugin {plugin.name!r} takes no settings, but [plugins.settings.{plugin.name}] is set"
            )
        return None
    try:
        return plugin.config_model.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(
            _format_validation_error(
                err, f"[plugins.settings.{plugin.name}]", prefix=f"plugins.settings.{plugin.name}"
            )
        ) from None


def load_adapter_class(name: str) -> type[Adapter]:
    found = available_adapters()
    ep = found.get(name)
    if ep is None:
        known = ", ".join(sorted(found)) or "none"
        hint = f" (pip install 'botkit[{name}]')" if name in ("slack", "discord") else ""
        raise ConfigError(
            f"adapter {name!r} is configured in [bot] adapters but not installed{hint}; installed: {known}"
        )
    cls = ep.load()
    if not (isinstance(cls, type) and issubclass(cls, Adapter)):
        raise ConfigError(f"entry point {name!r} ({ep.value}) is not a botkit Adapter class")
    return cls
