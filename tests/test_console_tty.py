"""`botkit chat` in a real terminal (a pseudo-terminal): prompt, reply drawn in place, :quit."""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import sys
import time
from pathlib import Path

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07|\r")


def _read_until(fd: int, needle: str, seconds: float = 60) -> str:
    seen = ""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(fd, 65536).decode(errors="replace")
            except OSError:
                break
            seen += chunk
            if needle in ANSI.sub("", seen):
                return ANSI.sub("", seen)
    raise AssertionError(f"{needle!r} never appeared; screen so far:\n{ANSI.sub('', seen)[-2000:]}")


def test_interactive_chat_in_a_terminal(tmp_path: Path) -> None:
    leader, follower = pty.openpty()
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOTKIT_")}
    env.update({"TERM": "xterm-256color", "COLUMNS": "100", "LINES": "40"})
    process = subprocess.Popen(
        [sys.executable, "-m", "botkit.cli", "chat", "--thread", "tty"],
        stdin=follower, stdout=follower, stderr=follower, cwd=tmp_path, env=env, close_fds=True,
    )  # fmt: skip
    os.close(follower)
    try:
        banner = _read_until(leader, "you>")
        assert "built-in vLLM stand-in" in banner.splitlines()[0]
        assert "thread tty" in banner
        os.write(leader, b"What is 12*12?\n")
        screen = _read_until(leader, "boxed{144}$.")
        assert "To compute $12*12$" in screen
        _read_until(leader, "you>")
        os.write(leader, b":quit\n")
        assert process.wait(timeout=60) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(leader)
