"""`botkit chat` in a real terminal: a pseudo-terminal read through a terminal emulator (pyte).

What is asserted is what a user sees on that screen (and what reached the model, and what is
stored): line editing, history across runs, bracketed paste, Ctrl-C stopping an answer without
ending the chat, Ctrl-D and a double Ctrl-C leaving with exit code 0.
"""

from __future__ import annotations

import asyncio
import codecs
import fcntl
import os
import pty
import re
import select
import sqlite3
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Callable
from pathlib import Path

import pyte
import pytest

from botkit.mathtext.directive import MATH_DIRECTIVE
from botkit.testing import Standin

pytestmark = pytest.mark.timeout(180)

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07|\r")
ROWS, COLUMNS = 100, 100  # tall enough that nothing in these conversations scrolls off
UP, LEFT, CTRL_C, CTRL_D = "\x1b[A", "\x1b[D", "\x03", "\x04"
PASTE_START, PASTE_END = "\x1b[200~", "\x1b[201~"


class _Screen(pyte.Screen):  # type: ignore[misc]
    """A screen that answers the terminal's reports (prompt_toolkit asks where the cursor is)."""

    def __init__(self, answer: Callable[[str], None]) -> None:
        super().__init__(COLUMNS, ROWS)
        self.answer = answer

    def write_process_input(self, data: str) -> None:
        self.answer(data)


class Terminal:
    """``botkit chat`` running in a pseudo-terminal, as a terminal emulator shows it."""

    def __init__(self, cwd: Path, *args: str, env: dict[str, str] | None = None) -> None:
        self.leader, follower = pty.openpty()
        fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLUMNS, 0, 0))
        environment = {k: v for k, v in os.environ.items() if not k.startswith("BOTKIT_")}
        environment.update(
            {"TERM": "xterm-256color", "COLUMNS": str(COLUMNS), "LINES": str(ROWS)},
            XDG_STATE_HOME=str(cwd / "state"),  # the history file stays in the test's folder
        )
        environment.update(env or {})
        self.process = subprocess.Popen(
            [sys.executable, "-m", "botkit.cli", "chat", *args],
            stdin=follower, stdout=follower, stderr=follower, cwd=cwd, env=environment, close_fds=True,
        )  # fmt: skip
        os.close(follower)
        self.screen = _Screen(lambda data: os.write(self.leader, data.encode()))
        self._stream = pyte.ByteStream(self.screen)
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.transcript = ""  # everything written, escape sequences removed
        self._mark = 0
        self._eof = False

    def _pump(self, timeout: float) -> None:
        ready, _, _ = select.select([self.leader], [], [], timeout)
        if not ready:
            return
        try:
            chunk = os.read(self.leader, 65536)
        except OSError:  # EIO: the program has exited and closed the terminal
            chunk = b""
        if not chunk:
            self._eof = True
            return
        self._stream.feed(chunk)
        self.transcript += ANSI.sub("", self._decoder.decode(chunk))

    def wait_for(self, needle: str, seconds: float = 60) -> str:
        """Until ``needle`` is written after the previous match; returns the text up to it."""
        deadline = time.monotonic() + seconds
        while True:
            found = self.transcript.find(needle, self._mark)
            if found >= 0:
                text = self.transcript[self._mark : found + len(needle)]
                self._mark = found + len(needle)
                return text
            if self._eof or time.monotonic() > deadline:
                raise AssertionError(f"{needle!r} never appeared; screen:\n{self.shown()}")
            self._pump(0.2)

    async def until(self, needle: str, seconds: float = 60) -> str:
        return await asyncio.to_thread(self.wait_for, needle, seconds)

    def type(self, keys: str) -> None:
        os.write(self.leader, keys.encode())

    def exit_code(self, seconds: float = 60) -> int:
        """Everything the program writes until it exits, then its exit status."""
        deadline = time.monotonic() + seconds
        while not self._eof and time.monotonic() < deadline:
            self._pump(0.2)
        return self.process.wait(timeout=max(1.0, deadline - time.monotonic()))

    async def leave(self, keys: str) -> int:
        """Type ``keys`` (Ctrl-D, :quit...) and return the exit status once the program is gone."""
        self.type(keys)
        return await asyncio.to_thread(self.exit_code)

    def lines(self) -> list[str]:
        """The screen's lines, without the blank ones at the bottom."""
        lines = [line.rstrip() for line in self.screen.display]
        while lines and not lines[-1]:
            lines.pop()
        return lines

    def shown(self) -> str:
        return "\n".join(self.lines())

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        os.close(self.leader)


def _external(standin: Standin) -> dict[str, str]:
    return {"BOTKIT_LLM__BACKEND": "external", "BOTKIT_LLM__BASE_URL": standin.base_url}


def _asked(standin: Standin) -> list[str]:
    """The question in each request the model got (the persona renders it last, on its own line,
    before the math directive that a math question gets)."""
    return [
        request["messages"][-1]["content"].removesuffix("\n\n" + MATH_DIRECTIVE).rsplit("\n", 1)[-1]
        for request in standin.requests
    ]


def _assistant_rows(folder: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(folder / "botkit.db") as db:
        rows = db.execute("SELECT status, content FROM messages WHERE role = 'assistant' ORDER BY id")
        return [(str(status), str(content)) for status, content in rows]


def test_interactive_chat_in_a_terminal(tmp_path: Path) -> None:
    term = Terminal(tmp_path, "--thread", "tty")
    try:
        banner = term.wait_for("you>")
        assert "built-in vLLM stand-in" in banner.splitlines()[0]
        assert "thread tty" in banner
        term.type("What is 12*12?\n")
        screen = term.wait_for("answer is 144.")
        assert "To compute 12*12" in screen  # a math answer: its LaTeX shown as text
        term.wait_for("you>")
        term.type(":quit\n")
        assert term.exit_code() == 0
    finally:
        term.close()


async def test_ctrl_c_cancels_the_answer_and_the_chat_goes_on(tmp_path: Path) -> None:
    story = " ".join(f"word{i}" for i in range(400))
    async with Standin(tokens_per_second=20) as standin:
        standin.script_reply(story, reasoning="A long story, then.")
        term = Terminal(tmp_path, env=_external(standin))
        try:
            await term.until("you>")
            term.type("Tell me a long story\r")
            await term.until("word5 ")  # the answer is streaming
            term.type(CTRL_C)
            await term.until("Cancelled.")
            await term.until("you>")
            await standin.wait_for(lambda: standin.disconnects == 1 and standin.running == 0, timeout=30)
            screen = term.lines()
            term.type("What is 2+2?\r")
            await term.until("answer is 4.")
            await term.until("you>")
            code = await term.leave(CTRL_D)
        finally:
            term.close()
    assert code == 0
    started = [i for i, line in enumerate(screen) if "word0 " in line]
    assert len(started) == 1, screen  # the reply is drawn once, not once more per redraw
    notes = [i for i, line in enumerate(screen) if line == "⏹ Cancelled."]
    assert len(notes) == 1 and notes[0] > started[0], screen  # under what was written
    assert all(re.fullmatch(r"(word\d+ ?)*", line) for line in screen[started[0] : notes[0]]), screen
    assert screen[-1] == "you>"  # still chatting
    rows = _assistant_rows(tmp_path)
    assert [status for status, _ in rows] == ["cancelled", "complete"]
    partial = rows[0][1]
    assert partial.startswith("word0 word1") and story.startswith(partial) and len(partial) < len(story)
    assert len(standin.requests) == 2  # the cancelled request was abandoned, not retried


async def test_ctrl_d_leaves_with_the_shell_prompt_on_a_line_of_its_own(tmp_path: Path) -> None:
    term = Terminal(tmp_path)
    try:
        await term.until("you>")
        code = await term.leave(CTRL_D)
        lines, cursor = term.lines(), term.screen.cursor
    finally:
        term.close()
    assert code == 0
    assert lines[-1] == "you>"
    assert (cursor.y, cursor.x) == (len(lines), 0)  # the next line, at its start


async def test_ctrl_c_clears_a_typed_line_and_twice_on_an_empty_prompt_leaves(tmp_path: Path) -> None:
    async with Standin() as standin:
        term = Terminal(tmp_path, env=_external(standin))
        try:
            await term.until("you>")
            term.type("half a questi")
            await term.until("half a questi")
            term.type(CTRL_C)  # drops the line, like a shell
            await term.until("you>")
            term.type(CTRL_C)
            await term.until("Ctrl-C again or Ctrl-D to leave")
            code = await term.leave(CTRL_C)
        finally:
            term.close()
    assert code == 0
    assert standin.requests == []  # the dropped line was never asked


async def _ask_once(tmp_path: Path, standin: Standin, keys: str, echoed: str, answered: str) -> list[str]:
    """One chat run: type ``keys`` at the prompt, see ``echoed``, press Enter, see ``answered``,
    then leave with Ctrl-D (exit code 0). Returns the screen as it was before leaving."""
    term = Terminal(tmp_path, env=_external(standin))
    try:
        await term.until("you>")
        term.type(keys)
        await term.until(echoed)
        term.type("\r")
        await term.until(answered)
        await term.until("you>")
        screen = term.lines()
        assert await term.leave(CTRL_D) == 0
    finally:
        term.close()
    return screen


async def test_left_arrow_edits_the_question_that_reaches_the_model(tmp_path: Path) -> None:
    async with Standin() as standin:
        edit = "What is 2+2" + LEFT + LEFT + "0"  # before "+2": "What is 20+2"
        await _ask_once(tmp_path, standin, edit, echoed="0+2", answered="answer is 22.")
    assert _asked(standin) == ["What is 20+2"]


async def test_history_is_recalled_with_up_in_the_next_run(tmp_path: Path) -> None:
    async with Standin() as standin:
        await _ask_once(tmp_path, standin, "What is 3*3?", echoed="3*3?", answered="answer is 9.")
        await _ask_once(tmp_path, standin, UP, echoed="What is 3*3?", answered="answer is 9.")
    assert _asked(standin) == ["What is 3*3?", "What is 3*3?"]
    history = tmp_path / "state" / "botkit" / "console_history"
    assert "What is 3*3?" in history.read_text()
    assert history.stat().st_mode & 0o077 == 0  # questions can be private: only its owner reads it


async def test_up_pressed_while_the_chat_starts_recalls_the_last_question(tmp_path: Path) -> None:
    """Up typed before the first prompt is drawn (waiting in the terminal when it starts) recalls
    the last question of the previous run: the prompt reads no key before its history is loaded.
    (On uvloop, the default where it is installed, it read the waiting key first: Up found no
    history and did nothing.)"""
    async with Standin() as standin:
        await _ask_once(tmp_path, standin, "What is 3*3?", echoed="3*3?", answered="answer is 9.")
        term = Terminal(tmp_path, env=_external(standin))
        try:
            term.type(UP)  # the chat has not drawn anything yet
            await term.until("you>")
            await term.until("What is 3*3?")  # recalled at the prompt
            term.type("\r")
            await term.until("answer is 9.")
            await term.until("you>")
            assert await term.leave(CTRL_D) == 0
        finally:
            term.close()
    assert _asked(standin) == ["What is 3*3?", "What is 3*3?"]


async def test_a_pasted_block_of_lines_is_one_question(tmp_path: Path) -> None:
    async with Standin() as standin:
        paste = f"{PASTE_START}Summarise this:\nfirst line\nsecond line{PASTE_END}"
        screen = await _ask_once(
            tmp_path, standin, paste, echoed="second line", answered="deterministic reply from the botkit"
        )
    asked = screen.index("you> Summarise this:")
    assert screen[asked + 1 : asked + 3] == ["     first line", "     second line"]  # shown as typed
    assert len(standin.requests) == 1
    assert "Summarise this:\nfirst line\nsecond line" in standin.requests[0]["messages"][-1]["content"]
