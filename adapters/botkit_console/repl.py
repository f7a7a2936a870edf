"""The terminal side of ``botkit chat``: a prompt_toolkit prompt, and Ctrl-C while an answer streams.

At the prompt prompt_toolkit owns the terminal: line editing (arrows, Home/End, Ctrl-A/E/K/W...),
history kept in a file across runs (Up recalls, also when pressed before the prompt is drawn:
:class:`_HeldInput`), and bracketed paste, so a pasted block of several
lines arrives as one question (Esc Enter types a newline by hand). The terminal stays in raw mode
for the whole chat, not only at the prompt: keys typed while an answer streams are not echoed into
the reply being drawn, and Ctrl-C is always a key press, never a SIGINT that would end the chat
(even one pressed in the instant between an answer and the next prompt). While an answer streams
we read the keys: Ctrl-C cancels that answer (:meth:`Submission.cancel
<botkit.adapter.Submission.cancel>`). At the prompt, Ctrl-C
clears a typed line; on an empty line, a second Ctrl-C in a row (the first may be the one that
cancelled an answer) leaves, and so does Ctrl-D.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from types import TracebackType
from typing import Any, TextIO

from prompt_toolkit import PromptSession
from prompt_toolkit.history import FileHistory, History, InMemoryHistory
from prompt_toolkit.input import Input, create_input
from prompt_toolkit.key_binding import KeyBindings, KeyPress, KeyPressEvent
from prompt_toolkit.keys import Keys
from prompt_toolkit.output import create_output

from botkit.adapter import Submission

log = logging.getLogger("botkit.console")

PROMPT = "you> "
LEAVE_HINT = "(Press Ctrl-C again or Ctrl-D to leave the chat, or type :quit.)"


def history_path(setting: str | None) -> Path | None:
    """Where the prompt's history lives: ``[console] history_file``; by default the XDG state
    folder (``$XDG_STATE_HOME/botkit/console_history``, else ``~/.local/state/botkit/...``);
    ``""`` keeps none."""
    if setting == "":
        return None
    if setting:
        return Path(setting).expanduser()
    state = os.environ.get("XDG_STATE_HOME", "")
    base = Path(state) if os.path.isabs(state) else Path("~/.local/state").expanduser()  # the XDG rule
    return base / "botkit" / "console_history"


def open_history(path: Path | None) -> History:
    """The history file, created private (questions can be sensitive); in memory if it cannot be."""
    if path is None:
        return InMemoryHistory()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600))
    except OSError as err:
        log.warning("console history not kept: cannot write %s (%s); set [console] history_file", path, err)
        return InMemoryHistory()
    return FileHistory(path)


class _HeldInput(Input):
    """The terminal's input, whose keys wait while :attr:`held` (reads return nothing and leave
    them in the terminal, whose reader fires again on the next loop iteration).

    Why: prompt_toolkit loads a prompt's history (what Up recalls) in a task it creates when it
    first draws the prompt, and reads keys as soon as they are there. Keys already waiting when
    the prompt starts (Up pressed while the chat was starting, or as an answer ended) are read
    in the same loop iteration, before that task ran, on uvloop (which runs the I/O callbacks of
    an iteration before the callbacks scheduled in it): Up then found no history and did
    nothing. :class:`Repl` holds the keys from each prompt's start until one loop iteration
    after its first drawing, so the history task (one step for a file's history) runs first."""

    def __init__(self, base: Input) -> None:
        self.base = base
        self.held = False

    def fileno(self) -> int:
        return self.base.fileno()

    def typeahead_hash(self) -> str:
        return self.base.typeahead_hash()

    def read_keys(self) -> list[KeyPress]:
        return [] if self.held else self.base.read_keys()

    def flush_keys(self) -> list[KeyPress]:
        return [] if self.held else self.base.flush_keys()

    def flush(self) -> None:
        self.base.flush()

    @property
    def closed(self) -> bool:
        return self.base.closed

    def raw_mode(self) -> AbstractContextManager[None]:
        return self.base.raw_mode()

    def cooked_mode(self) -> AbstractContextManager[None]:
        return self.base.cooked_mode()

    def attach(self, input_ready_callback: Callable[[], None]) -> AbstractContextManager[None]:
        return self.base.attach(input_ready_callback)

    def detach(self) -> AbstractContextManager[None]:
        return self.base.detach()

    def close(self) -> None:
        self.base.close()


class _CtrlC(Exception):
    """Ctrl-C at the prompt; ``typed``: the line had text (which Ctrl-C discards)."""

    def __init__(self, typed: bool) -> None:
        super().__init__("Ctrl-C")
        self.typed = typed


def _bindings() -> KeyBindings:
    bindings = KeyBindings()

    @bindings.add("c-c")
    def _interrupt(event: KeyPressEvent) -> None:
        event.app.exit(exception=_CtrlC(bool(event.current_buffer.text)))

    @bindings.add("escape", "enter")
    def _newline(event: KeyPressEvent) -> None:
        event.current_buffer.insert_text("\n")

    return bindings


class Repl:
    """Reads questions at a prompt and watches for Ctrl-C while each one is answered."""

    def __init__(self, stdin: TextIO, stdout: TextIO, history: History) -> None:
        self.stdout = stdout
        self.input = _HeldInput(create_input(stdin))
        self.session: PromptSession[str] = PromptSession(
            history=history,
            input=self.input,
            output=create_output(stdout=stdout),
            key_bindings=_bindings(),
            prompt_continuation=" " * len(PROMPT),
            reserve_space_for_menu=0,  # no completion menu to make room for
        )
        self.armed = False  # the last Ctrl-C (at the prompt, or cancelling an answer) was just now
        self._raw = contextlib.ExitStack()
        self.session.app.after_render += self._drawn

    def _drawn(self, _: Any) -> None:
        """After a drawing of the prompt: its history task exists (created while drawing, see
        :class:`_HeldInput`), so its keys go once the callbacks scheduled before this one ran."""
        if self.input.held:
            asyncio.get_running_loop().call_soon(self._release)

    def _release(self) -> None:
        self.input.held = False

    async def _prompt(self) -> str:
        """One prompt, its keys held until its history is loaded (:class:`_HeldInput`)."""
        self.input.held = True
        try:
            return await self.session.prompt_async(PROMPT)
        finally:
            self.input.held = False

    def __enter__(self) -> Repl:
        """Raw mode until :meth:`__exit__` (prompt_toolkit's own, at each prompt, nests in it)."""
        self._raw.enter_context(self.input.raw_mode())
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._raw.close()

    async def read(self) -> str | None:
        """The next question; None when the user leaves (Ctrl-D, or Ctrl-C twice)."""
        while True:
            self._write("\n")
            try:
                line = await self._prompt()
            except _CtrlC as ctrl_c:
                if ctrl_c.typed:  # like a shell: Ctrl-C drops the line
                    self.armed = False
                    continue
                if self.armed:
                    return None
                self.armed = True
                self._write(LEAVE_HINT + "\n")
                continue
            except EOFError:  # Ctrl-D: prompt_toolkit has ended the line, the shell starts on its own
                return None
            except asyncio.CancelledError:  # botkit is stopping (SIGTERM, a model server that failed)
                self._write("\n")
                raise
            self.armed = False
            return line

    async def answer(self, submission: Submission) -> bool:
        """Wait for ``submission``'s answer; Ctrl-C meanwhile cancels it. True if it did."""
        cancelled = False

        def keys_ready() -> None:
            nonlocal cancelled
            for press in self.input.read_keys():  # typed ahead during an answer: dropped
                if press.key == Keys.ControlC and submission.cancel():
                    cancelled = True

        with self.input.attach(keys_ready):
            await submission.wait()
        with contextlib.suppress(OSError):
            self.input.flush_keys()
        if cancelled:
            self.armed = True
        return cancelled

    def _write(self, text: str) -> None:
        self.stdout.write(text)
        self.stdout.flush()
