"""Finding plugins and adapters through entry points, and validating their configuration.

Plugins are installed with pip like any package and switched on by name; nothing is fetched or
installed at run time (opsdroid's run-time installer is the cautionary tale).

Which plugins run: the built-ins (:data:`BUILTIN_PLUGINS`) unless ``[plugins] disabled`` lists
them, then those ``[plugins] enabled`` adds, in its order. Listing a built-in in ``enabled`` is
allowed and changes nothing.
"""

from __future__ import annotations

import difflib
import json
import logging
import re
from collections.abc import Collection, Sequence
from importlib.metadata import EntryPoint, PackageNotFoundError, distribution, entry_points
from typing import Any

from botkit.adapter import Adapter
from botkit.config import ConfigError, PluginSettings, Settings, section
from botkit.plugins.api import Plugin

log = logging.getLogger(__name__)

PLUGIN_GROUP = "botkit.plugins"
ADAPTER_GROUP = "botkit.adapters"

#: The plugins botkit ships (its ``botkit.plugins`` entry points), on unless ``[plugins] disabled``.
BUILTIN_PLUGINS = ("math", "ask", "persona_admin", "status")


def available_plugins() -> dict[str, EntryPoint]:
    return {ep.name: ep for ep in entry_points(group=PLUGIN_GROUP)}


def available_adapters() -> dict[str, EntryPoint]:
    return {ep.name: ep for ep in entry_points(group=ADAPTER_GROUP)}


def _extra_command(ep: EntryPoint) -> str | None:
    """How to install the extra named like the adapter (``[slack]``), if its distribution has one.

    A checkout installed with ``pip install -e .`` needs ``-e '.[slack]'`` (plain ``botkit[slack]``
    would fetch a second botkit from the package index); an installed wheel needs ``botkit[slack]``.
    """
    dist = ep.dist
    if dist is None or not _extra_requirements(ep):
        return None
    name = dist.metadata["Name"]
    if name == "botkit" and _editable(ep):
        return f"pip install -e '.[{ep.name}]'"
    return f"pip install '{name}[{ep.name}]'"


def _extra_requirements(ep: EntryPoint) -> list[str]:
    """The distribution names the adapter's extra requires (``slack-bolt``, ``slack-sdk``)."""
    extra = re.compile(rf"extra\s*==\s*['\"]{re.escape(ep.name)}['\"]")
    names = []
    for requirement in (ep.dist.requires if ep.dist is not None else None) or []:
        spec, _, marker = requirement.partition(";")
        package = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", spec)
        if extra.search(marker) and package is not None:
            names.append(package.group(1))
    return names


def _editable(ep: EntryPoint) -> bool:
    """Whether the adapter's distribution is an editable install of a checkout (PEP 660)."""
    try:
        direct = json.loads((ep.dist.read_text("direct_url.json") if ep.dist else None) or "{}")
    except ValueError:
        return False
    return bool(direct.get("dir_info", {}).get("editable"))


def _install_hint(ep: EntryPoint) -> str | None:
    """None if the packages of the adapter's extra (``[slack]``) are installed, else the command."""
    for package in _extra_requirements(ep):
        try:
            distribution(package)
        except PackageNotFoundError:
            return _extra_command(ep)
    return None


def adapter_install_hints() -> dict[str, str | None]:
    """Every adapter an entry point names: None if it can run, else how to install what it needs."""
    return {name: _install_hint(ep) for name, ep in available_adapters().items()}


def enabled_plugin_names(config: PluginSettings, found: dict[str, EntryPoint]) -> list[str]:
    """The built-ins not disabled, then what ``enabled`` adds (see the module's doc)."""
    for name in config.disabled:
        if name in config.enabled:
            raise ConfigError(f"plugin {name!r} is in both [plugins] enabled and [plugins] disabled")
        if name not in found:
            raise ConfigError(
                f"[plugins] disabled names {name!r}, which is not installed{_nearest(name, found)}"
            )
    names = [n for n in BUILTIN_PLUGINS if n not in config.disabled]
    kept = [n for n in names if n not in config.enabled]
    old_style = any(n in BUILTIN_PLUGINS for n in config.enabled)  # a list from before: some built-ins
    if old_style and kept and "disabled" not in config.model_fields_set:
        log.warning(
            "[plugins] enabled adds to the built-in plugins, so %s stay on although not listed; "
            "list them in [plugins] disabled to turn them off (disabled = [] hides this notice)",
            ", ".join(kept),
        )
    return names + [n for n in config.enabled if n not in BUILTIN_PLUGINS]


def _nearest(name: str, known: Collection[str], otherwise: str = "") -> str:
    """``; did you mean 'x'?`` for a near miss, else the installed names (and ``otherwise``)."""
    close = difflib.get_close_matches(name, sorted(known), n=1)
    if close:
        return f"; did you mean {close[0]!r}?"
    return f" (installed: {', '.join(sorted(known)) or 'none'}){otherwise}"


def load_plugins(settings: Settings, extra: list[Plugin[Any]] | None = None) -> list[Plugin[Any]]:
    """The enabled plugins, in configuration order, plus ``extra`` ones handed in directly (tests)."""
    found = available_plugins()
    plugins: list[Plugin[Any]] = []
    for name in enabled_plugin_names(settings.plugins, found):
        ep = found.get(name)
        if ep is None:
            raise ConfigError(
                f"plugin {name!r} is enabled in [plugins] enabled but not installed"
                + _nearest(name, found, "; pip install the package that provides it")
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
    for name in settings.plugins.settings:
        if name not in names and name not in found:
            raise ConfigError(
                f"[plugins.settings.{name}] is set, but no plugin {name!r} is installed{_nearest(name, found)}"
            )
    return plugins


def plugin_config(settings: Settings, plugin: Plugin[Any]) -> Any:
    """Validate ``[plugins.settings.NAME]`` (and ``BOTKIT_PLUGINS__SETTINGS__NAME__<KEY>``) against
    the plugin's model: always an instance when it declares one, defaults for an absent table;
    None when it declares none."""
    key = f"plugins.settings.{plugin.name}"
    if plugin.config_model is None:
        if settings.table(key):
            raise ConfigError(f"plugin {plugin.name!r} takes no settings, but [{key}] is set")
        return None
    return section(settings, key, plugin.config_model)


def _import_adapter(ep: EntryPoint) -> type[Adapter]:
    """The adapter class an entry point names; :class:`ConfigError` when a package it needs is missing.

    An :class:`ImportError` of a third-party module (``slack_bolt``) means the adapter's extra is not
    installed; one inside the adapter's own package or botkit is a bug and propagates as it is.
    """
    try:
        cls = ep.load()
    except ImportError as err:
        missing = (err.name or "").partition(".")[0]
        if missing in {"botkit", ep.module.partition(".")[0]}:
            raise
        how = _extra_command(ep)
        if how is None:
            raise ConfigError(
                f"the {ep.name} adapter ({ep.value}) cannot be imported: {err}; "
                "install the package that provides it"
            ) from None
        raise ConfigError(f"the {ep.name} adapter needs its extra: {how}") from None
    if not (isinstance(cls, type) and issubclass(cls, Adapter)):
        raise ConfigError(f"entry point {ep.name!r} ({ep.value}) is not a botkit Adapter class")
    return cls


def _importable_adapters() -> list[str]:
    """The adapters that can run here: their extra's packages installed and their module importable."""
    names = []
    for name, ep in available_adapters().items():
        if _install_hint(ep) is None:
            try:
                _import_adapter(ep)
            except ConfigError:
                continue
            names.append(name)
    return names


def _unknown_adapter(name: str) -> ConfigError:
    return ConfigError(
        f"adapter {name!r} is configured in [bot] adapters but not installed"
        + _nearest(name, _importable_adapters())
    )


def load_adapter_class(name: str) -> type[Adapter]:
    found = available_adapters()
    if name not in found:
        raise _unknown_adapter(name)
    hint = _install_hint(found[name])
    if hint is not None:
        raise ConfigError(f"adapter {name!r} is configured in [bot] adapters but not installed: {hint}")
    return _import_adapter(found[name])


def check_adapters(names: Sequence[str]) -> None:
    """Fail before anything starts (model server, migrations) unless every adapter can be imported.

    Each problem is one line: an unknown name (with the nearest importable one), or
    ``the slack adapter needs its extra: pip install -e '.[slack]'``.
    """
    found = available_adapters()
    problems = []
    for name in names:
        ep = found.get(name)
        if ep is None:
            problems.append(str(_unknown_adapter(name)))
            continue
        hint = _install_hint(ep)
        if hint is not None:
            problems.append(f"the {name} adapter needs its extra: {hint}")
            continue
        try:
            _import_adapter(ep)
        except ConfigError as err:
            problems.append(str(err))
    if problems:
        raise ConfigError("\n  ".join(problems))


def check_configuration(settings: Settings, adapters: Sequence[str]) -> None:
    """Everything a start would refuse in its configuration, checked before anything starts.

    The adapters can be imported (:func:`check_adapters`), their sections validate (a missing
    ``slack.bot_token`` is said at once, not after the model server and the database came up),
    and so do the plugins and their ``[plugins.settings.NAME]`` tables. No adapter at all would
    serve nothing (and used to end in a traceback): that is said too.
    """
    if not adapters:
        raise ConfigError(
            "[bot] adapters (BOTKIT_BOT__ADAPTERS) is empty, so `botkit run` would serve nothing; list "
            f'the adapters to run, e.g. adapters = ["slack"] (installed: {", ".join(sorted(available_adapters()))})'
        )
    check_adapters(adapters)
    for name in adapters:
        model = load_adapter_class(name).settings_model
        if model is not None:
            section(settings, name, model)
    for plugin in load_plugins(settings):
        plugin_config(settings, plugin)
