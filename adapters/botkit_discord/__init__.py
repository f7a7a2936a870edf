"""The Discord adapter: slash commands (``/math``, ``/ask``, ``/persona ...``) and @mentions,
answered by streaming edits within Discord's limits. See README.md for the setup."""

import warnings

# discord.py's voice player imports the deprecated ``audioop`` module (Python 3.11-3.12); botkit
# uses no voice, and the warning must not break runs with warnings as errors (pytest, -W error).
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", "'audioop' is deprecated", DeprecationWarning)
    import discord  # noqa: F401

from botkit_discord.adapter import DiscordAdapter, minimal_intents
from botkit_discord.reply import DiscordInteractionReply, DiscordMessageReply
from botkit_discord.settings import DiscordSettings

__all__ = [
    "DiscordAdapter",
    "DiscordInteractionReply",
    "DiscordMessageReply",
    "DiscordSettings",
    "minimal_intents",
]
