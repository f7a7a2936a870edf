"""The plugin API (:mod:`botkit.plugins.api`) and the built-in plugins (math, ask, persona admin)."""

from botkit.adapter import OptionSpec
from botkit.plugins.api import (
    CommandContext,
    EventKind,
    Middleware,
    NextStep,
    Plugin,
    PluginContext,
    Refusal,
    Request,
    TextFilter,
    Turn,
    TurnResult,
)

__all__ = [
    "CommandContext",
    "EventKind",
    "Middleware",
    "NextStep",
    "OptionSpec",
    "Plugin",
    "PluginContext",
    "Refusal",
    "Request",
    "TextFilter",
    "Turn",
    "TurnResult",
]
