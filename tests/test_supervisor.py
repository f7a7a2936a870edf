"""The supervised model server, with the stand-in playing `vllm serve` (everything but the GPU)."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import aiohttp
import pytest
from polling import until

from botkit.config import LLMSettings
from botkit.llm.client import client_for
from botkit.llm.standin import forked_workers
from botkit.llm.supervisor import BackendStartError, VLLMSupervisor, build_command, served_base_url

STANDIN = [sys.executable, "-m", "botkit.llm.standin"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _settings(port: int, **vllm: object) -> LLMSettings:
    fast = {"startup_timeout": 60, "backoff_initial": 0.05, "backoff_max": 0.2, "health_interval": 0.2}
    return LLMSettings.model_validate(
        {"backend": "vllm", "vllm": {"command": STANDIN, "port": port, **fast, **vllm}}
    )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is dead for our purposes
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


async def _wait_gone(pid: int, seconds: float = 20) -> bool:
    for _ in range(int(seconds * 10)):
        if not _alive(pid):
            return True
        await asyncio.sleep(0.1)
    return False


def test_command_line_has_the_serving_defaults() -> None:
    command = build_command(LLMSettings())
    joined = " ".join(command)
    assert command[:3] == ["vllm", "serve", "deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B"]
    for flag in (
        "--served-model-name deepseek-ai/DeepSeek-R1-Distill-Qwen-1.5B",
        "--max-model-len 4096",
        "--gpu-memory-utilization 0.8",
        "--reasoning-parser deepseek_r1",
        "--host 127.0.0.1",
        "--port 8000",
        "--stream-interval 8",
        "--api-server-count",
    ):
        assert flag in joined


async def test_starts_until_ready_serves_and_stops_the_whole_group(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BOTKIT_STANDIN_FORK_CHILDREN", "2")  # workers in its group, as vLLM has
    supervisor = VLLMSupervisor(_settings(_free_port()), log_dir=tmp_path)
    async with supervisor:
        assert supervisor.state == "ready"
        assert supervisor.process is not None
        group = [supervisor.process.pid, *forked_workers(supervisor.tail)]
        assert len(group) == 3 and all(_alive(pid) for pid in group)
        async with aiohttp.ClientSession() as http, http.get(f"{supervisor.base_url}/models") as response:
            assert response.status == 200
    assert supervisor.state == "stopped"
    assert [pid for pid in group if _alive(pid)] == []  # stop() returned only once all were gone
    assert "Starting vLLM API server" in (tmp_path / "vllm.log").read_text()


async def test_crash_loop_stops_restarting_and_reports_code_and_last_lines(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BOTKIT_STANDIN_EXIT_AT_START", "3")
    supervisor = VLLMSupervisor(_settings(_free_port(), max_restarts=2), log_dir=tmp_path)
    await supervisor.start()
    try:
        with pytest.raises(BackendStartError, match="stopped restarting after 3 crashes") as caught:
            await supervisor.wait_ready(timeout=60)
    finally:
        await supervisor.stop()
    assert "exited with code 3" in str(caught.value)
    assert "BOTKIT_STANDIN_EXIT_AT_START" in str(caught.value)  # the server's own last lines
    assert supervisor.restarts == 2


async def test_port_in_use_is_diagnosed(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        supervisor = VLLMSupervisor(_settings(port, max_restarts=0), log_dir=tmp_path)
        await supervisor.start()
        try:
            with pytest.raises(BackendStartError, match="the port is taken"):
                await supervisor.wait_ready(timeout=60)
        finally:
            await supervisor.stop()


async def test_missing_executable_says_what_to_do(tmp_path: Path) -> None:
    supervisor = VLLMSupervisor(_settings(_free_port(), command=["no-such-vllm", "serve"]), log_dir=tmp_path)
    await supervisor.start()
    try:
        with pytest.raises(BackendStartError, match=r"not found.*llm\.vllm\.command"):
            await supervisor.wait_ready(timeout=30)
    finally:
        await supervisor.stop()
    assert supervisor.restarts == 0


async def test_killed_server_is_restarted(tmp_path: Path) -> None:
    async with VLLMSupervisor(_settings(_free_port()), log_dir=tmp_path) as supervisor:
        first = supervisor.pid
        assert first is not None
        os.kill(first, signal.SIGKILL)
        await until(lambda: supervisor.state != "ready")
        await supervisor.wait_ready(timeout=60)
        assert supervisor.pid not in (None, first)
        assert supervisor.restarts == 1


async def test_hung_server_is_killed_and_restarted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOTKIT_STANDIN_FORK_CHILDREN", "2")
    settings = _settings(_free_port(), hang_checks=2, stop_timeout=1)
    async with VLLMSupervisor(settings, log_dir=tmp_path) as supervisor:
        hung = supervisor.pid
        assert hung is not None
        group = [hung, *forked_workers(supervisor.tail)]
        os.kill(hung, signal.SIGSTOP)  # alive, but answers nothing: hung
        await until(lambda: supervisor.state != "ready")
        await supervisor.wait_ready(timeout=60)
        assert supervisor.pid != hung
        assert [pid for pid in group if _alive(pid)] == []  # the whole group, before the restart
        assert supervisor.restarts == 1


async def test_a_supervisor_checks_through_the_client_it_is_given_and_leaves_it_open(tmp_path: Path) -> None:
    settings = _settings(_free_port())
    async with client_for(settings, served_base_url(settings)) as client:
        async with VLLMSupervisor(settings, log_dir=tmp_path, client=client) as supervisor:
            assert supervisor.client is client
            assert await client.count_prompt_tokens([{"role": "user", "content": "Hi"}])
            await _until_served(supervisor.root_url, lambda connections: any(
                "GET /health" in routes and "POST /tokenize" in routes for routes in connections
            ))  # fmt: skip
            assert supervisor.health_checks >= 1
        assert supervisor.client is client  # not closed: a second start checks through it again
        async with VLLMSupervisor(settings, log_dir=tmp_path, client=client) as again:
            assert again.state == "ready"


async def _until_served(root_url: str, predicate: Callable[[list[list[str]]], bool]) -> None:
    """Until the stand-in playing vLLM reports connections (routes carried) that satisfy it."""
    async with aiohttp.ClientSession() as http:
        for _ in range(100):
            async with http.get(root_url + "/standin/requests") as response:
                if predicate((await response.json())["connections"]):
                    return
            await asyncio.sleep(0.1)
    raise AssertionError("the stand-in never saw such connections")


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL])
async def test_killing_botkit_leaves_no_model_server(tmp_path: Path, how: signal.Signals) -> None:
    port = _free_port()
    script = tmp_path / "parent.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import asyncio, signal, sys
            from botkit.config import LLMSettings
            from botkit.llm.standin import forked_workers
            from botkit.llm.supervisor import VLLMSupervisor

            async def main():
                settings = LLMSettings.model_validate(
                    {{"backend": "vllm", "vllm": {{"command": {STANDIN!r}, "port": {port}}}}}
                )
                stop = asyncio.Event()
                asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
                async with VLLMSupervisor(settings, log_dir={str(tmp_path)!r}) as supervisor:
                    print(supervisor.process.pid, *forked_workers(supervisor.tail), flush=True)
                    await stop.wait()

            asyncio.run(main())
            """
        )
    )
    env = {**os.environ, "BOTKIT_STANDIN_FORK_CHILDREN": "2"}
    parent = await asyncio.create_subprocess_exec(
        sys.executable, str(script), stdout=asyncio.subprocess.PIPE, env=env
    )
    assert parent.stdout is not None
    line = await asyncio.wait_for(parent.stdout.readline(), 60)
    group = [int(pid) for pid in line.split()]  # the server, then its two workers
    assert len(group) == 3 and all(_alive(pid) for pid in group)
    parent.send_signal(how)
    await asyncio.wait_for(parent.wait(), 30)
    for pid in group:
        assert await _wait_gone(pid), f"model server process {pid} outlived botkit after {how.name}"


@pytest.mark.parametrize(
    ("line", "cause"),
    [
        ("torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB", "ran out of memory"),
        (
            "ValueError: Free memory on device (10.1/79.2 GiB) on startup is less than desired GPU memory "
            "utilization (0.8, 63.4 GiB).",
            "another process holds GPU memory",
        ),
        (
            "OSError: [Errno 98] error while attempting to bind on address: address already in use",
            "port is taken",
        ),
        (
            "huggingface_hub.errors.RepositoryNotFoundError: 401 Client Error. Repository Not Found for url",
            "model was not found",
        ),
        ("RuntimeError: No CUDA GPUs are available", "no usable GPU"),
        (
            "ValueError: Bfloat16 is only supported on GPUs with compute capability of at least 8.0.",
            "not supported",
        ),
    ],
)
def test_failure_causes_are_stated_plainly(line: str, cause: str) -> None:
    from botkit.llm.supervisor import diagnose

    found = diagnose(
        ["INFO starting", line, "RuntimeError: Engine core initialization failed. See root cause above."]
    )
    assert found is not None and cause in found
