"""Journey: `echo 'What is 2+2?' | botkit chat` in a script while the model server is down.

The question waits for the server (up to ``llm.queue_timeout``, 300 s by default) before the
apology; piped, only final answers reach stdout, so the script sat in silence all that time. The
first "⏳ queued" notice now goes to stderr at once; stdout still holds only the answer.
"""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(120)


def _dead_port() -> int:
    with socket.socket() as sock:  # bound, never listening: connections are refused
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_a_piped_question_waiting_for_a_down_server_says_so_on_stderr(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOTKIT_")}
    env |= {
        "BOTKIT_LLM__BACKEND": "external",
        "BOTKIT_LLM__BASE_URL": f"http://127.0.0.1:{_dead_port()}/v1",
        "BOTKIT_LLM__QUEUE_TIMEOUT": "3",
        "XDG_STATE_HOME": str(tmp_path / "state"),
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "botkit.cli", "chat",
        cwd=tmp_path, env=env,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(b"What is 2+2?\n"), 100)
    assert process.returncode == 0, err.decode()
    assert out.decode() == "The model server is not reachable right now; please ask again in a minute.\n"
    assert err.decode().splitlines()[1:] == [
        "botkit: ⏳ The model server is not answering right now; your question is queued (#1 in line) "
        "and will be answered here when it is back."
    ]
