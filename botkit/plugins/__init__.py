"""The plugin API (:mod:`botkit.plugins.api`) and the built-in plugins (math, ask, persona admin)."""

from botkit.plugins.api import (
    CommandContext,
    Middleware,
    NextStep,
    Plugin,
    PluginContext,
    Refusal,
    Turn,
    TurnResult,
)

__all__ = [
    "CommandContext",
    "Middleware",
    "NextStep",
    "Plugin",
    "PluginContext",
    "Refusal",
    "Turn",
    "TurnResult",
]
