"""What a starting model server is doing, from its log, as a queued question is told."""

from __future__ import annotations

import re
import socket
import sys
from contextlib import AsyncExitStack
from pathlib import Path

import pytest

from botkit.config import LLMSettings
from botkit.llm.backends import start_backends
from botkit.llm.pool import Startup, WaitReason
from botkit.llm.startup_phase import (
    API_SERVER,
    COMPILING,
    CUDA_GRAPHS,
    DOWNLOADING,
    INITIALIZING,
    LOADING,
    PROFILING,
    phase_of,
)
from botkit.testing import TestBot

STANDIN = [sys.executable, "-m", "botkit.llm.standin"]
ENGINE = "(EngineCore_DP0 pid=1462) INFO 04-07 02:44:26 "
API = "(APIServer pid=291) INFO 09-21 23:16:28 "


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# Lines as vLLM (0.8 to 0.26) prints them, prefixes and all, in the order of a cold start.
@pytest.mark.parametrize(
    ("line", "phase"),
    [
        (API + "[api_server.py:1885] vLLM API server version 0.11.0", INITIALIZING),
        (
            ENGINE + "[core.py:77] Initializing a V1 LLM engine (v0.11.0) with config: model='/tmp/m'",
            INITIALIZING,
        ),
        (ENGINE + "[gpu_model_runner.py:4735] Starting to load model Qwen/Qwen3.5-9B...", LOADING),
        (
            "INFO 03-26 14:46:43 [weight_utils.py:265] Using model weights format ['*.safetensors']",
            DOWNLOADING,
        ),
        ("model.safetensors:  45%|████▌     | 1.60G/3.55G [00:21<00:26, 74.1MB/s]", DOWNLOADING),
        ("Fetching 2 files:  50%|█████     | 1/2 [00:19<00:19, 19.62s/it]", DOWNLOADING),
        (
            ENGINE
            + "[weight_utils.py:530] Time spent downloading weights for google/gemma: 64.511670 seconds",
            LOADING,
        ),
        ("Loading safetensors checkpoint shards:  25% Completed | 1/4 [00:07<00:21,  7.16s/it]", LOADING),
        (ENGINE + "[default_loader.py:384] Loading weights took 26.10 seconds", LOADING),
        (
            ENGINE + "[gpu_model_runner.py:4820] Model loading took 17.66 GiB memory and 26.884630 seconds",
            LOADING,
        ),
        (
            ENGINE
            + "[backends.py:1051] Using cache directory: /root/.cache/vllm/torch_compile_cache/1776bb5122"
            "/rank_0_0/backbone for vLLM's torch.compile",
            COMPILING,
        ),
        (ENGINE + "[backends.py:1111] Dynamo bytecode transform time: 4.61 s", COMPILING),
        (ENGINE + "[backends.py:390] Compiling a graph for compile range (1, 8192) takes 25.35 s", COMPILING),
        (ENGINE + "[monitor.py:48] torch.compile took 31.11 s in total", COMPILING),
        (ENGINE + "[monitor.py:76] Initial profiling/warmup run took 73.16 s", PROFILING),
        (ENGINE + "[gpu_worker.py:436] Available KV cache memory: 20.27 GiB", PROFILING),
        (ENGINE + "[kv_cache_utils.py:1319] GPU KV cache size: 165,792 tokens", PROFILING),
        (
            "Capturing CUDA graphs (mixed prefill-decode, PIECEWISE): 100%|██████████| 51/51 [00:02<00:00]",
            CUDA_GRAPHS,
        ),
        (
            ENGINE + "[gpu_model_runner.py:6046] Graph capturing finished in 5 secs, took 0.65 GiB",
            CUDA_GRAPHS,
        ),
        (
            ENGINE + "[core.py:283] init engine (profile, create kv cache, warmup model) took 120.47 seconds",
            API_SERVER,
        ),
        (
            "\x1b[1;36m(APIServer pid=15)\x1b[0;0m INFO 08-27 21:03:30 [api_server.py:1880] "
            "Starting vLLM API server 0 on http://0.0.0.0:8010",
            API_SERVER,
        ),
        (
            "INFO 08-13 17:18:34 [api_server.py:1818] Starting vLLM API server on http://0.0.0.0:8080",
            API_SERVER,
        ),
        (API + "[api_server.py:946] Starting vLLM server on http://0.0.0.0:8000", API_SERVER),
        # lines that say nothing about the phase change nothing
        (ENGINE + "[cuda.py:334] Using FLASH_ATTN attention backend out of potential backends", None),
        (
            "(EngineCore pid=1462) <frozen importlib._bootstrap_external>:1297: FutureWarning: deprecated",
            None,
        ),
        (API + "[launcher.py:44] Route: /v1/chat/completions, Methods: POST", None),
    ],
)
def test_vllm_log_lines_name_the_phase(line: str, phase: str | None) -> None:
    assert phase_of(line) == phase


async def test_the_queued_notice_says_what_the_server_is_doing_and_moves_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BOTKIT_STANDIN_STARTUP_DELAY", "3")  # the stand-in prints vLLM's phases meanwhile
    vllm = {
        "command": STANDIN,
        "port": _free_port(),
        "health_interval": 0.2,
        "log_dir": str(tmp_path / "logs"),
    }
    settings = {"llm": {"backend": "vllm", "vllm": vllm}}
    async with TestBot(tmp_path, settings=settings) as bot:
        reply = await bot.ask("What is 2+2?")
    notices = [c.text for c in reply.calls if "The model is starting" in c.text]
    shown = re.compile(
        r"⏳ _The model is starting \((?:(.+), )?(\d+) s\); your question is queued \(#1 in line\)"
    )
    matches = [shown.search(text) for text in notices]
    assert all(matches), notices
    phases = [m.group(1) for m in matches if m is not None]
    assert len(set(notices)) >= 3, notices  # it moves on while the user waits
    for phase in (LOADING, COMPILING, CUDA_GRAPHS):
        assert phase in phases, notices
    assert phases.index(LOADING) < phases.index(COMPILING) < phases.index(CUDA_GRAPHS)
    assert "The final answer is 4." in reply.text and "starting" not in reply.text  # then answered in place


async def test_a_waiting_question_is_told_again_every_few_seconds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BOTKIT_STANDIN_STARTUP_DELAY", "1.5")
    settings = LLMSettings.model_validate(
        {
            "backend": "vllm",
            "vllm": {
                "command": STANDIN,
                "port": _free_port(),
                "health_interval": 0.2,
                "log_dir": str(tmp_path),
            },
        }
    )
    told: list[tuple[WaitReason, Startup | None]] = []
    async with AsyncExitStack() as stack:
        pool, _ = await start_backends(settings, stack)
        pool.wait_refresh = 0.1
        async with pool.slot("alice", lambda _, reason: told.append((reason, pool.startup()))):
            ready_phase = pool.backends[0].supervisor.phase  # type: ignore[union-attr]
    assert len(told) >= 8  # about every 0.1 s of the 1.5 s, not only when the phase changed
    assert {reason for reason, _ in told} == {"starting"}
    starts = {startup.since for _, startup in told if startup is not None}
    assert len(starts) == 1  # one start, counted from its beginning
    assert ready_phase is None  # ready: no phase any more
