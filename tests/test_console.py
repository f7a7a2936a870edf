"""`botkit chat` as a user (or a script) runs it: real processes, real SQLite file."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from botkit.testing import Standin

pytestmark = pytest.mark.timeout(180)

STANDIN = [sys.executable, "-m", "botkit.llm.standin"]


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
    assert "The final answer is 42." in out
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
    assert (
        out.index("The final answer is 4.") < out.index("The final answer is 9.") < out.index("**Personas**")
    )
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
    assert "The final answer is 2.\n\n_(answered by botkit; check important facts)_" in out
    assert "House rules: please don't post anything containing 'password'" in out


def _supervised(tmp_path: Path, command: list[str], **env: str) -> dict[str, str]:
    """`llm.backend = "vllm"` with ``command`` as the server; restarts fast, so a crash loop ends soon."""
    return {
        "BOTKIT_LLM__BACKEND": "vllm",
        "BOTKIT_LLM__VLLM__COMMAND": json.dumps(command),
        "BOTKIT_LLM__VLLM__PORT": str(_free_port()),
        "BOTKIT_LLM__VLLM__LOG_DIR": str(tmp_path / "logs"),
        "BOTKIT_LLM__VLLM__BACKOFF_INITIAL": "0.05",
        "BOTKIT_LLM__VLLM__BACKOFF_MAX": "0.1",
        "BOTKIT_LLM__VLLM__MAX_RESTARTS": "1",
        **env,
    }


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_chat_exits_3_with_the_cause_when_the_model_server_keeps_crashing(tmp_path: Path) -> None:
    env = _supervised(tmp_path, STANDIN, BOTKIT_STANDIN_EXIT_AT_START="1")
    code, _, err = await _chat(tmp_path, "What is 2+2?\n", env=env)
    assert code == 3, err
    last = err.strip().split("botkit: error: ")[-1]  # the last thing the user reads
    assert last.startswith("the model server could not be started: stopped restarting after 2 crashes")
    assert "exited with code 1 while starting" in last
    assert f"Last lines of {tmp_path / 'logs' / 'vllm.log'}" in last
    assert "Exiting at start with code 1 (BOTKIT_STANDIN_EXIT_AT_START)" in last  # the server's own words
    assert "Traceback" not in err


async def test_chat_without_vllm_exits_3_and_says_how_to_install_it_or_use_the_stand_in(
    tmp_path: Path,
) -> None:
    env = _supervised(tmp_path, ["no-such-vllm", "serve"])
    code, out, err = await _chat(tmp_path, "What is 2+2?\n", env=env)
    assert code == 3, err
    assert "could not be started: cannot run 'no-such-vllm' (llm.vllm.command" in err
    assert "pip install -e '.[vllm]'" in err and 'llm.backend = "standin"' in err
    assert "Traceback" not in err
    assert out == ""  # no prompt, no answer: nothing to chat with


async def test_run_keeps_serving_and_reports_a_server_that_cannot_start_at_healthz(tmp_path: Path) -> None:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOTKIT_")}
    env.update(
        _supervised(tmp_path, STANDIN, BOTKIT_STANDIN_EXIT_AT_START="1"),
        BOTKIT_SERVER__PORT=str(port),
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "botkit.cli", "run",
        cwd=tmp_path, env=env,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        health = await _healthz_until(port, lambda report: report["backends"][0]["state"] == "failed")
        assert process.returncode is None  # still serving
    finally:
        process.terminate()
        await asyncio.wait_for(process.communicate(), 60)
    assert health["ready"] is False
    error = health["backends"][0]["supervisor"]["last_error"]
    assert "stopped restarting after 2 crashes" in error and "BOTKIT_STANDIN_EXIT_AT_START" in error


async def _healthz_until(port: int, predicate: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    async with aiohttp.ClientSession() as http:
        for _ in range(600):
            try:
                async with http.get(f"http://127.0.0.1:{port}/healthz") as response:
                    report: dict[str, Any] = await response.json()
                if predicate(report):
                    return report
            except aiohttp.ClientError:
                pass  # not listening yet
            await asyncio.sleep(0.1)
    raise AssertionError("/healthz never reported it")


def test_the_history_file_is_where_the_configuration_and_xdg_say(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from botkit_console.repl import history_path

    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    assert history_path(None) == tmp_path / "state" / "botkit" / "console_history"
    monkeypatch.setenv("XDG_STATE_HOME", "relative/ignored")  # the XDG rule: absolute paths only
    assert history_path(None) == Path("~/.local/state/botkit/console_history").expanduser()
    assert history_path("~/h") == Path("~/h").expanduser()
    assert history_path("") is None  # keep no history
