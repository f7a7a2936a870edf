"""Console adapter implementation."""

from __future__ import annotations

import asyncio
import getpass
import io
import sys
import threading
import uuid
from typing import TYPE_CHECKING, ClassVar, TextIO

from pydantic import BaseModel, Field
from pydantic_settings import SettingsConfigDict
from rich.console import Console
from rich.live import Live
from rich.markdown import Markdown

from botkit.adapter import Adapter, AdapterHost, Submission
from botkit.config import SectionSettings
from botkit.events import IncomingMessage, LiveReply
from botkit_console.commands import parse_command_line

if TYPE_CHECKING:
    from botkit_console.repl import Repl


def _default_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "console"


class ConsoleSettings(SectionSettings):
    """``[console]``: which thread this terminal continues, and as whom (env ``BOTKIT_CONSOLE__<KEY>``)."""

    model_config = SettingsConfigDict(extra="forbid", env_prefix="BOTKIT_CONSOLE__")

    thread: str = "default"
    user: str = Field(default_factory=_default_user)
    roles: list[str] = Field(default_factory=lambda: ["admin"])
    # The console user is the operator running botkit here: access rules do not apply to them
    # (false: judge them by user and roles, e.g. to try rules out).
    operator: bool = True
    interactive: bool | None = None  # None: interactive when stdin is a terminal
    history_file: str | None = None  # None: $XDG_STATE_HOME/botkit/console_history; "": keep none


class ConsoleReply(LiveReply):
    """A reply shown in the terminal: redrawn in place when interactive, printed once when piped."""

    max_chars = 20_000
    rate_key = "console"

    def __init__(self, out: TextIO, console: Console | None, notices: TextIO | None = None) -> None:
        self.out = out
        self.console = console
        self.messages: list[str] = []
        self._live: Live | None = None
        self._notices = notices
        self._told = False

    def _tell_waiting(self, text: str) -> None:
        """Piped, only the final answer reaches stdout, so a question that waits for the model
        (starting, or not answering: up to ``llm.queue_timeout``) would wait in silence; its
        first "⏳ queued" notice goes to ``notices`` (stderr), once, and stdout stays answers."""
        if self._notices is None or self._told or not text.startswith("⏳"):
            return
        self._told = True
        plain = text.replace("⏳ _", "⏳ ", 1).rstrip().removesuffix("_")
        self._notices.write(f"botkit: {plain}\n")
        self._notices.flush()

    def _redraw(self) -> None:
        if self.console is None:
            return
        view = Markdown("\n\n".join(self.messages))
        if self._live is None:
            self._live = Live(view, console=self.console, refresh_per_second=8, transient=False)
            self._live.start()
        else:
            self._live.update(view)

    async def post_placeholder(self, text: str) -> str:
        self.messages.append(text)
        self._tell_waiting(text)
        self._redraw()
        return "0"

    async def edit(self, message_id: str, text: str) -> None:
        self.messages[int(message_id)] = text
        self._tell_waiting(text)
        self._redraw()

    async def post_continuation(self, text: str) -> str:
        self.messages.append(text)
        self._redraw()
        return str(len(self.messages) - 1)

    async def finish(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None
        else:
            self.out.write("\n".join(self.messages) + "\n")
            self.out.flush()


def _start_reader(stream: TextIO) -> asyncio.Queue[str]:
    """Read lines in a daemon thread: a blocked ``readline`` must never keep botkit from exiting
    on SIGTERM (``asyncio.to_thread`` would, because the loop joins its executor at shutdown)."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[str] = asyncio.Queue()
    if isinstance(stream, io.TextIOWrapper) and stream.errors == "strict":
        # Invalid UTF-8 on a strict stdin would raise in readline and end the chat as if at EOF.
        stream.reconfigure(errors="replace")

    def pump() -> None:
        while True:
            try:
                line = stream.readline()
            except (OSError, ValueError):
                line = ""
            try:
                loop.call_soon_threadsafe(queue.put_nowait, line)
            except RuntimeError:  # the loop is closed: botkit is exiting
                return
            if not line:
                return

    threading.Thread(target=pump, name="botkit-console-stdin", daemon=True).start()
    return queue


class ConsoleAdapter(Adapter):
    name: ClassVar[str] = "console"
    settings_model: ClassVar[type[BaseModel] | None] = ConsoleSettings

    def __init__(
        self,
        host: AdapterHost,
        settings: BaseModel | None,
        *,
        stdin: TextIO | None = None,
        stdout: TextIO | None = None,
        stderr: TextIO | None = None,
    ) -> None:
        super().__init__(host, settings)
        self.config = settings if isinstance(settings, ConsoleSettings) else ConsoleSettings()
        self.stdin = stdin or sys.stdin
        self.stdout = stdout or sys.stdout
        self.stderr = stderr or sys.stderr
        interactive = self.config.interactive
        self.interactive = self.stdin.isatty() if interactive is None else interactive
        self.console = Console(file=self.stdout) if self.interactive else None
        self._lines: asyncio.Queue[str] | None = None
        self._repl: Repl | None = None  # a terminal: prompt_toolkit reads the lines

    async def run(self) -> None:
        if self.console is not None:
            self.console.print(
                f"[bold]botkit[/] console — thread [cyan]{self.config.thread}[/]. "
                "Type a question; :help lists commands, :quit leaves."
            )
            if self.stdin.isatty():
                from botkit_console.repl import Repl, history_path, open_history  # ~0.1 s: a TTY only

                history = open_history(history_path(self.config.history_file))
                with Repl(self.stdin, self.stdout, history) as self._repl:
                    await self._chat()
                return
        await self._chat()

    async def _chat(self) -> None:
        while True:
            line = await self._read_line()
            if line is None:
                return
            line = line.strip()
            if not line:
                continue
            if line in (":quit", ":exit", ":q"):
                return
            if line == ":help":
                self._help()
                continue
            await self._ask(line)

    async def _read_line(self) -> str | None:
        if self._repl is not None:
            return await self._repl.read()
        if self.console is not None:
            self.stdout.write("\nyou> ")
            self.stdout.flush()
        if self._lines is None:
            self._lines = _start_reader(self.stdin)
        line = await self._lines.get()
        return line if line else None

    def _help(self) -> None:
        lines = [f":{spec.qualified_name} — {spec.description}" for spec in self.host.commands]
        lines.append(":quit — leave")
        if self._repl is not None:
            lines.append(
                "Ctrl-C stops an answer; Ctrl-D leaves; Up recalls earlier questions; Esc Enter: new line"
            )
        self.stdout.write("\n".join(lines) + "\n")
        self.stdout.flush()

    async def _ask(self, line: str) -> None:
        command: str | None = None
        args: dict[str, str] = {}
        text = line
        if line.startswith(":"):
            command, args, text = parse_command_line(line, self.host.commands)
        message = IncomingMessage(
            platform="console",
            workspace="",
            channel="local",
            thread=self.config.thread,
            user=self.config.user,
            text=text,
            delivery_id=uuid.uuid4().hex,
            command=command,
            args=args,
            user_name=self.config.user,
            user_roles=frozenset(self.config.roles),
            is_direct=True,
            is_operator=self.config.operator,
        )
        reply = ConsoleReply(self.stdout, self.console, None if self.interactive else self.stderr)
        submission = await self.host.submit(message, reply)
        await self._answered(submission, reply)

    async def _answered(self, submission: Submission, reply: ConsoleReply) -> None:
        if self._repl is None:
            await submission.wait()
            return
        if await self._repl.answer(submission) and not reply.messages and self.console is not None:
            self.console.print("⏹ [italic]Cancelled.[/]")  # stopped before anything was shown
