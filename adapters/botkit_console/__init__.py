"""The console adapter: a terminal chat, and a line-per-question pipe for scripts and tests.

Interactive (a TTY on stdin): a prompt_toolkit prompt (editing, history, paste; see
:mod:`botkit_console.repl`), and the reply redrawn in place as it streams (rich Live); Ctrl-C
stops the answer in progress.
Piped: one question per input line; each final answer is written to stdout once complete, so
``echo 'What is 2+2?' | botkit chat`` prints just the answer.
"""

from botkit_console.adapter import ConsoleAdapter, ConsoleSettings
from botkit_console.commands import parse_command_line

__all__ = ["ConsoleAdapter", "ConsoleSettings", "parse_command_line"]
