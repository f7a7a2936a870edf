"""The core's plugin commands on Slack: slash commands, and a keyword form in messages.

Every top-level name in ``host.commands`` (a command's name, or its group) is one Slack slash
command: ``/math 2+2``, ``/ask persona=legal Can I...``, ``/persona list``, ``/botkit status``.
The same commands can be written in a mention, a DM or a thread follow-up with the keyword
prefix (``slack.command_prefix``, default ``!``): ``@botkit !math 2+2``.

The text after the command is parsed like the console's ``:name`` lines: a group's first word
picks the subcommand, leading ``key=value`` tokens fill options by name, and the rest fills the
first option not given that way.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from botkit.adapter import CommandSpec
from botkit.commands import ParsedCommand, parse_command, top_level_names
from botkit.events import IncomingMessage

__all__ = [
    "ParsedCommand",
    "keyword_command",
    "parse_command",
    "parse_slash",
    "top_level_names",
    "with_command",
]


def parse_slash(command: str, text: str, specs: Sequence[CommandSpec]) -> ParsedCommand:
    """A slash command payload's ``command`` (``/math``) and ``text``."""
    return parse_command(command.lstrip("/").strip(), text, specs)


def keyword_command(text: str, specs: Sequence[CommandSpec], prefix: str) -> ParsedCommand | None:
    """``!math 2+2`` (with ``prefix`` "!") -> the command; None if ``text`` is not one.

    Only a known top-level name counts, so ``!!! it broke`` stays an ordinary question.
    """
    if not prefix or not text.startswith(prefix):
        return None
    parts = text[len(prefix) :].split(None, 1)
    if not parts or parts[0].lower() not in top_level_names(specs):
        return None
    return parse_command(parts[0].lower(), parts[1] if len(parts) > 1 else "", specs)


def with_command(message: IncomingMessage, parsed: ParsedCommand) -> IncomingMessage:
    """``message`` as a command invocation (``command``, ``args``, free ``text``)."""
    return dataclasses.replace(message, command=parsed.name, args=parsed.args, text=parsed.text)
