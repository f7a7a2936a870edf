"""`botkit chat` as a user (or a script) runs it: real processes, real SQLite file."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

from botkit.testing import Standin

pytestmark = pytest.mark.timeout(180)


async def _chat(cwd: Path, stdin: str, *args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("BOTKIT_")}
    environment.update(env or {})
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "botkit.cli", "chat", *args,
        cwd=cwd, env=environment,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(stdin.encode()), 120)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_embedded_default_says_stand_in_on_its_first_line_and_answers(tmp_path: Path) -> None:
    code, out, err = await _chat(tmp_path, "What is 6*7?\n")
    assert code == 0, err
    assert err.splitlines()[0].startswith("botkit: model backend: built-in vLLM stand-in")
    assert "\\boxed{42}" in out
    assert (tmp_path / "botkit.db").exists()


async def test_second_process_continues_the_thread_from_sqlite(tmp_path: Path) -> None:
    async with Standin() as standin:
        env = {"BOTKIT_LLM__BACKEND": "external", "BOTKIT_LLM__BASE_URL": standin.base_url}
        standin.script_reply("The capital of Australia is Canberra.", reasoning="SECRET-THOUGHTS")
        code, out1, err = await _chat(
            tmp_path, "What is the capital of Australia?\n", "--thread", "geo", env=env
        )
        assert code == 0, err
        assert out1.strip() == "The capital of Australia is Canberra."
        code, _, err = await _chat(tmp_path, "And its population?\n", "--thread", "geo", env=env)
        assert code == 0, err
        code, _, err = await _chat(tmp_path, "Unrelated\n", "--thread", "other", env=env)
        assert code == 0, err
        second, third = standin.requests[1], standin.requests[2]
    assert second["messages"][0] == {"role": "user", "content": "What is the capital of Australia?"}
    assert second["messages"][1] == {"role": "assistant", "content": "The capital of Australia is Canberra."}
    assert "SECRET-THOUGHTS" not in str(second)
    assert len(third["messages"]) == 1, "another thread starts fresh"


async def test_piped_lines_are_answered_in_order_and_commands_work(tmp_path: Path) -> None:
    code, out, err = await _chat(tmp_path, "What is 2+2?\n\n:math What is 3*3?\n:persona list\n")
    assert code == 0, err
    assert out.index("\\boxed{4}") < out.index("\\boxed{9}") < out.index("**Personas**")
    assert "**Final answer:** `9`" in out


async def test_bad_configuration_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "botkit.toml").write_text("[llm]\ntemperture = 0.6\n")
    code, out, err = await _chat(tmp_path, "hi\n")
    assert code == 2
    assert "llm.temperture" in err and "Extra inputs are not permitted" in err
    assert out == ""


async def test_installed_plugin_adds_a_command_and_middleware_seen_through_the_console(
    tmp_path: Path,
) -> None:
    pytest.importorskip("botkit_house_rules", reason="pip install -e examples/house_rules (.ci/run does)")
    env = {"BOTKIT_PLUGINS__ENABLED": '["math", "ask", "persona_admin", "status", "house_rules"]'}
    code, out, err = await _chat(tmp_path, ":rules\nWhat is 1+1?\nmy password is hunter2\n", env=env)
    assert code == 0, err
    assert "**House rules**" in out
    assert "\\boxed{2}$.\n\n_(answered by botkit; check important facts)_" in out
    assert "House rules: please don't post anything containing 'password'" in out
