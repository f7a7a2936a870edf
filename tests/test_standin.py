"""The vLLM stand-in's own contract: routes, error shapes, replies, metrics and command line."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import openai
import pytest

from botkit.llm.standin import DEFAULT_MODEL, find_arithmetic, make_reply, render_chat, tokenize
from botkit.testing import Standin

QUESTION = [{"role": "user", "content": "What is 17*23?"}]


@pytest.fixture
async def standin() -> AsyncIterator[Standin]:
    async with Standin() as server:
        yield server


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def oai(standin: Standin) -> AsyncIterator[openai.AsyncOpenAI]:
    client = openai.AsyncOpenAI(base_url=standin.base_url, api_key="EMPTY", max_retries=0)
    yield client
    await client.close()


async def post(http: aiohttp.ClientSession, url: str, body: dict[str, Any]) -> tuple[int, Any]:
    async with http.post(url, json=body) as response:
        return response.status, await response.json()


async def test_urls(standin: Standin) -> None:
    assert standin.root_url == f"http://127.0.0.1:{standin.port}"
    assert standin.base_url == standin.root_url + "/v1"


async def test_models_lists_the_served_model(oai: openai.AsyncOpenAI) -> None:
    models = await oai.models.list()
    assert [m.id for m in models.data] == [DEFAULT_MODEL]
    assert models.data[0].model_extra is not None
    assert models.data[0].model_extra["max_model_len"] == 4096


async def test_non_streaming_with_reasoning_field(standin: Standin, oai: openai.AsyncOpenAI) -> None:
    result = await oai.chat.completions.create(model=DEFAULT_MODEL, messages=QUESTION)  # type: ignore[arg-type]
    message = result.choices[0].message
    assert message.model_extra is not None
    assert message.model_extra["reasoning"].startswith("\nOkay, so the question is")
    assert message.content is not None
    assert message.content.startswith("\n\nTo compute $17*23$")
    assert "\\boxed{391}" in message.content
    assert result.choices[0].finish_reason == "stop"
    assert result.usage is not None
    assert result.usage.completion_tokens == standin.generation_tokens_total


async def test_non_streaming_with_think_tags(standin: Standin, oai: openai.AsyncOpenAI) -> None:
    standin.reasoning_field = None
    standin.omit_open_think = True
    result = await oai.chat.completions.create(model=DEFAULT_MODEL, messages=QUESTION)  # type: ignore[arg-type]
    content = result.choices[0].message.content
    assert content is not None
    assert content.startswith("Okay, so the question is")
    assert "\n</think>\n\nTo compute" in content


async def test_stream_wire_format(standin: Standin, http: aiohttp.ClientSession) -> None:
    standin.tokens_per_chunk = 4
    body = {
        "model": DEFAULT_MODEL,
        "messages": QUESTION,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    async with http.post(standin.base_url + "/chat/completions", json=body) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/event-stream")
        raw = (await response.read()).decode()
    events = raw.split("\n\n")
    assert events[-2:] == ["data: [DONE]", ""]
    chunks = [json.loads(e.removeprefix("data: ")) for e in events[:-2]]
    assert all(c["object"] == "chat.completion.chunk" and c["model"] == DEFAULT_MODEL for c in chunks)
    assert len({c["id"] for c in chunks}) == 1
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert chunks[-1]["choices"] == []
    usage = chunks[-1]["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert all(c["choices"][0]["finish_reason"] is None for c in chunks[:-2])
    deltas = [c["choices"][0]["delta"] for c in chunks[1:-1]]
    reasoning = "".join(d.get("reasoning", "") for d in deltas)
    content = "".join(d.get("content", "") for d in deltas)
    assert "<think>" not in reasoning + content
    assert content.startswith("\n\nTo compute")
    assert any("reasoning" in d and "content" in d for d in deltas), "a chunk straddles </think>"


async def test_tokenize_prompt_and_messages(standin: Standin, http: aiohttp.ClientSession) -> None:
    status, data = await post(http, standin.root_url + "/tokenize", {"prompt": "Hello world"})
    assert status == 200
    assert data["count"] == 3  # BOS, "Hello", " world"
    assert data["max_model_len"] == 4096
    assert len(data["tokens"]) == 3
    status, data = await post(
        http, standin.root_url + "/tokenize", {"model": DEFAULT_MODEL, "messages": QUESTION}
    )
    assert status == 200
    assert data["count"] == len(tokenize(render_chat(QUESTION)))


def test_chat_template_and_tokenizer() -> None:
    messages = [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "<think>\nhmm\n</think>\n\nHello!"},
        {"role": "user", "content": "Bye"},
    ]
    rendered = render_chat(messages)
    assert rendered == (
        "<｜begin▁of▁sentence｜><｜User｜>Hi<｜Assistant｜>\n\nHello!<｜end▁of▁sentence｜>"
        "<｜User｜>Bye<｜Assistant｜>"
    )
    assert render_chat(messages[:1], omit_open_think=True).endswith("<｜Assistant｜><think>\n")
    text = "<think>\nLet's see: 3 + 4 = 7.\n</think>\n\nDone!"
    assert "".join(tokenize(text)) == text
    assert tokenize(text)[:3] == ["<think>", "\n", "Let"]


async def test_prefilled_think_is_continued(standin: Standin, oai: openai.AsyncOpenAI) -> None:
    standin.reasoning_field = None
    messages = [*QUESTION, {"role": "assistant", "content": "<think>\n"}]
    result = await oai.chat.completions.create(
        model=DEFAULT_MODEL,
        messages=messages,  # type: ignore[arg-type]
        extra_body={"continue_final_message": True, "add_generation_prompt": False},
    )
    content = result.choices[0].message.content
    assert content is not None
    assert content.startswith("Okay, so the question is")
    assert "\\boxed{391}" in content


async def test_unknown_model_is_404(standin: Standin, oai: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        await oai.chat.completions.create(model="gpt-4", messages=QUESTION)  # type: ignore[arg-type]
    assert "The model `gpt-4` does not exist." in str(caught.value)


async def test_too_long_prompt_is_400(standin: Standin, oai: openai.AsyncOpenAI) -> None:
    standin.max_model_len = 64
    long = [{"role": "user", "content": "word " * 100}]
    with pytest.raises(openai.BadRequestError) as caught:
        await oai.chat.completions.create(model=DEFAULT_MODEL, messages=long)  # type: ignore[arg-type]
    assert "maximum context length is 64 tokens" in str(caught.value)
    with pytest.raises(openai.BadRequestError) as caught:
        await oai.chat.completions.create(model=DEFAULT_MODEL, messages=QUESTION, max_tokens=60)  # type: ignore[arg-type]
    assert "in the completion" in str(caught.value)


async def test_boxed_answer_for_arithmetic() -> None:
    assert "\\boxed{391}" in make_reply("What is 17*23?").answer
    found = find_arithmetic("Compute (2 + 3) * 4 - 10 / 4, please.")
    assert found is not None
    assert found[0] == "(2 + 3) * 4 - 10 / 4"
    assert "\\boxed{17.5}" in make_reply("Compute (2 + 3) * 4 - 10 / 4, please.").answer
    assert "\\boxed{\\frac{1}{3}}" in make_reply("what is 1/3").answer
    assert "\\boxed{1024}" in make_reply("2 ** 10 = ?").answer
    assert find_arithmetic("__import__('os') 1/0 and 9**9**9") is None


async def test_other_questions_are_echoed() -> None:
    reply = make_reply("What is the capital of France?")
    assert reply.answer.startswith('You asked: "What is the capital of France?"')
    assert "What is the capital of France?" in (reply.reasoning or "")


async def test_failures_and_scripts_are_consumed_in_order(standin: Standin, oai: openai.AsyncOpenAI) -> None:
    standin.inject_failure("http500", count=2)
    standin.script_reply("Scripted.")
    for _ in range(2):
        with pytest.raises(openai.InternalServerError):
            await oai.chat.completions.create(model=DEFAULT_MODEL, messages=QUESTION)  # type: ignore[arg-type]
    result = await oai.chat.completions.create(model=DEFAULT_MODEL, messages=QUESTION)  # type: ignore[arg-type]
    assert result.choices[0].message.content == "\n\nScripted."
    assert len(standin.requests) == 3
    with pytest.raises(ValueError, match="unknown failure"):
        standin.inject_failure("explode")  # type: ignore[arg-type]


async def test_metrics_use_vllm_names(
    standin: Standin, oai: openai.AsyncOpenAI, http: aiohttp.ClientSession
) -> None:
    await oai.chat.completions.create(model=DEFAULT_MODEL, messages=QUESTION)  # type: ignore[arg-type]
    async with http.get(standin.root_url + "/metrics") as response:
        text = await response.text()
    sample = re.compile(r'^(vllm:\w+)\{[^}]*model_name="([^"]+)"[^}]*\} (\S+)$', re.M)
    samples = {name: float(value) for name, model, value in sample.findall(text) if model == DEFAULT_MODEL}
    assert samples["vllm:num_requests_running"] == 0
    assert samples["vllm:num_requests_waiting"] == 0
    assert 0 <= samples["vllm:kv_cache_usage_perc"] <= 1
    assert samples["vllm:prompt_tokens_total"] > 0
    assert samples["vllm:generation_tokens_total"] == standin.generation_tokens_total
    assert "# TYPE vllm:prompt_tokens counter" in text


async def test_startup_delay_and_api_key(http: aiohttp.ClientSession) -> None:
    async with Standin(startup_delay=0.3, api_key="sk-test") as server:
        async with http.get(server.root_url + "/health") as response:
            assert response.status == 503
        async with http.get(server.base_url + "/models") as response:
            assert response.status == 401
        async with http.get(
            server.base_url + "/models", headers={"Authorization": "Bearer sk-test"}
        ) as response:
            assert response.status == 200
        await asyncio.sleep(0.35)
        async with http.get(server.root_url + "/health") as response:
            assert response.status == 200


async def test_more_requests_than_slots_wait(standin: Standin, oai: openai.AsyncOpenAI) -> None:
    standin.max_num_seqs = 1
    standin.tokens_per_second = 500
    calls = [oai.chat.completions.create(model=DEFAULT_MODEL, messages=QUESTION) for _ in range(2)]  # type: ignore[arg-type]
    tasks = [asyncio.ensure_future(c) for c in calls]
    await standin.wait_for(lambda: standin.waiting == 1)
    assert standin.running == 1
    await asyncio.gather(*tasks)
    assert (standin.running, standin.waiting) == (0, 0)


# -- command line ---------------------------------------------------------------------------

VLLM_ARGS = [
    "serve",
    DEFAULT_MODEL,
    "--served-model-name",
    "r1",
    "--dtype",
    "half",
    "--max-model-len",
    "2048",
    "--gpu-memory-utilization",
    "0.8",
    "--tensor-parallel-size",
    "1",
    "--reasoning-parser",
    "deepseek_r1",
    "--stream-interval",
    "4",
    "--api-server-count",
    "1",
    "--load-format",
    "dummy",
    "--enforce-eager",
    "--some-future-flag",
    "value",
    "--host",
    "127.0.0.1",
    "--port",
    "0",
]


async def start_cli(args: list[str], env: dict[str, str] | None = None) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "botkit.llm.standin",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, **(env or {})},
    )


async def test_cli_runs_in_place_of_vllm_serve(http: aiohttp.ClientSession) -> None:
    process = await start_cli(VLLM_ARGS)
    assert process.stdout is not None
    try:
        async with asyncio.timeout(15):
            lines: list[str] = []
            while not lines or "Starting vLLM API server on" not in lines[-1]:
                lines.append((await process.stdout.readline()).decode())
                assert lines[-1], f"the stand-in exited: {lines}"
        match = re.search(r"http://127\.0\.0\.1:(\d+)", lines[-1])
        assert match is not None
        root = f"http://127.0.0.1:{match.group(1)}"
        async with http.get(root + "/health") as response:
            assert response.status == 200
        async with http.get(root + "/v1/models") as response:
            model = (await response.json())["data"][0]
        assert (model["id"], model["max_model_len"]) == ("r1", 2048)
        process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(10):
            assert await process.wait() == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_cli_exit_at_start() -> None:
    process = await start_cli(["--port", "0"], env={"BOTKIT_STANDIN_EXIT_AT_START": "3"})
    async with asyncio.timeout(15):
        output, _ = await process.communicate()
    assert process.returncode == 3
    assert b"BOTKIT_STANDIN_EXIT_AT_START" in output


async def test_streams_route_times_each_streamed_reply_by_the_shared_monotonic_clock(
    standin: Standin, oai: openai.AsyncOpenAI, http: aiohttp.ClientSession
) -> None:
    """A benchmark in another process sets the model's last token beside a fake platform's call
    times: each ended stream is listed with what was asked and when its first and last token's
    chunks went out (time.monotonic(), one clock for the host)."""
    standin.tokens_per_chunk = 4
    before = time.monotonic()
    for question in ("Q1 first question", "Q2 second question"):
        stream = await oai.chat.completions.create(
            model=DEFAULT_MODEL, messages=[{"role": "user", "content": question}], stream=True
        )
        async for _ in stream:
            pass
    after = time.monotonic()
    async with http.get(standin.root_url + "/standin/streams") as response:
        streams = await response.json()
    assert [s["asked"] for s in streams] == ["Q1 first question", "Q2 second question"]
    for entry in streams:
        assert before <= entry["first_token_at"] < entry["last_token_at"] <= after
        assert entry["tokens"] > len(tokenize(make_reply(entry["asked"]).answer))  # reasoning + answer
    assert streams[0]["last_token_at"] <= streams[1]["first_token_at"]
    async with http.get(standin.root_url + "/standin/requests") as response:
        hits = (await response.json())["hits"]
    assert "GET /standin/streams" not in hits
