"""LLMClient (real openai client) against the real vLLM stand-in on loopback."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest

from botkit.llm.client import Delta, Finished, LLMClient, StreamEvent
from botkit.llm.errors import BackendError
from botkit.llm.standin import Standin

QUESTION = [{"role": "user", "content": "What is 17*23?"}]
PARAMS: dict[str, Any] = {"temperature": 0.6, "top_p": 0.95, "max_tokens": 1024}


@pytest.fixture
async def standin() -> AsyncIterator[Standin]:
    async with Standin() as server:
        yield server


@pytest.fixture
async def client(standin: Standin) -> AsyncIterator[LLMClient]:
    llm = LLMClient(standin.base_url, standin.model_name, first_token_timeout=5, idle_timeout=5)
    yield llm
    await llm.aclose()


async def collect(client: LLMClient, messages: list[dict[str, str]] = QUESTION) -> tuple[str, str, Finished]:
    reasoning: list[str] = []
    answer: list[str] = []
    finished: Finished | None = None
    async for event in client.stream(messages, **PARAMS):
        assert finished is None, "Finished must be the last event"
        if isinstance(event, Delta):
            (reasoning if event.kind == "reasoning" else answer).append(event.text)
        else:
            finished = event
    assert finished is not None
    if finished.reasoning_was_answer:
        reasoning = []
    return "".join(reasoning), "".join(answer), finished


SERVER_SHAPES = [
    pytest.param({"reasoning_field": "reasoning"}, id="reasoning-field"),
    pytest.param({"reasoning_field": "reasoning_content"}, id="reasoning_content-field"),
    pytest.param({"reasoning_field": None}, id="think-tags"),
    pytest.param({"reasoning_field": None, "omit_open_think": True}, id="think-tags-no-open"),
    pytest.param({"reasoning_field": "reasoning", "tokens_per_chunk": 8}, id="field-8-per-chunk"),
    pytest.param({"reasoning_field": None, "tokens_per_chunk": 8}, id="tags-8-per-chunk"),
    pytest.param({"reasoning_field": None, "omit_open_think": True, "tokens_per_chunk": 8}, id="no-open-8"),
]


@pytest.mark.parametrize("shape", SERVER_SHAPES)
async def test_every_server_shape_gives_the_same_reasoning_and_answer(
    standin: Standin, client: LLMClient, shape: dict[str, Any]
) -> None:
    reference = await collect(client)
    for name, value in shape.items():
        setattr(standin, name, value)
    reasoning, answer, finished = await collect(client)
    assert (reasoning, answer) == reference[:2]
    assert reasoning.startswith('Okay, so the question is "What is 17*23?"')
    assert answer.endswith("The final answer is $\\boxed{391}$.")
    assert finished.finish_reason == "stop"
    assert not finished.reasoning_was_answer


async def test_usage_is_reported(standin: Standin, client: LLMClient) -> None:
    _, _, finished = await collect(client)
    assert finished.prompt_tokens == await client.count_prompt_tokens(QUESTION)
    assert finished.completion_tokens is not None
    assert finished.completion_tokens > 10
    assert standin.generation_tokens_total == finished.completion_tokens


async def test_request_carries_the_parameters(standin: Standin, client: LLMClient) -> None:
    events = [e async for e in client.stream(QUESTION, temperature=0.5, top_p=0.9, max_tokens=700)]
    assert isinstance(events[-1], Finished)
    sent = standin.requests[-1]
    assert sent["messages"] == QUESTION
    assert sent["model"] == standin.model_name
    assert (sent["temperature"], sent["top_p"], sent["max_tokens"]) == (0.5, 0.9, 700)
    assert sent["stream"] is True
    assert sent["stream_options"] == {"include_usage": True}


async def test_extra_body_is_sent(standin: Standin, client: LLMClient) -> None:
    async for _ in client.stream(QUESTION, **PARAMS, extra_body={"repetition_penalty": 1.05}):
        pass
    assert standin.requests[-1]["repetition_penalty"] == 1.05


async def test_scripted_reply_and_length_finish(standin: Standin, client: LLMClient) -> None:
    standin.script_reply("Forty-two.", reasoning="Deep thought.")
    reasoning, answer, finished = await collect(client)
    assert (reasoning, answer, finished.finish_reason) == ("Deep thought.\n", "Forty-two.", "stop")
    events = [e async for e in client.stream(QUESTION, temperature=0.6, top_p=0.95, max_tokens=5)]
    assert events[-1] == Finished("length", finished.prompt_tokens, 5)
    assert all(isinstance(e, Delta) and e.kind == "reasoning" for e in events[:-1])


async def test_text_without_think_tags_is_reclassified_as_answer(standin: Standin, client: LLMClient) -> None:
    standin.reasoning_field = None
    standin.script_reply("Just an answer.", reasoning=None)
    events = [e async for e in client.stream(QUESTION, **PARAMS)]
    assert events[0] == Delta("reasoning", "Just")  # tentative until the end
    assert events[-2:] == [Delta("answer", "Just an answer."), Finished("stop", 9, 4, True)]


async def test_empty_reasoning_is_not_reclassified(standin: Standin, client: LLMClient) -> None:
    standin.reasoning_field = None
    standin.omit_open_think = True
    standin.script_reply("Just an answer.", reasoning="")
    reasoning, answer, finished = await collect(client)
    assert (reasoning, answer) == ("", "Just an answer.")
    assert not finished.reasoning_was_answer


async def test_no_tags_with_a_reasoning_parser_is_all_reasoning(standin: Standin, client: LLMClient) -> None:
    standin.script_reply("Just an answer.", reasoning=None)  # like vLLM's deepseek_r1 parser
    reasoning, answer, finished = await collect(client)
    assert (reasoning, answer, finished.reasoning_was_answer) == ("Just an answer.", "", False)


async def test_empty_answer_trap_gives_an_empty_answer(standin: Standin, client: LLMClient) -> None:
    standin.inject_failure("empty")
    reasoning, answer, finished = await collect(client)
    assert reasoning
    assert answer == ""
    assert finished.finish_reason == "stop"


async def test_http_500_is_an_http_error(standin: Standin, client: LLMClient) -> None:
    standin.inject_failure("http500")
    with pytest.raises(BackendError) as caught:
        await collect(client)
    assert (caught.value.kind, caught.value.status) == ("http", 500)
    assert "HTTP 500" in caught.value.user_message
    assert (await collect(client))[1].endswith("\\boxed{391}$.")  # one failure only


async def test_unknown_model_is_http_404(standin: Standin) -> None:
    async with LLMClient(standin.base_url, "no-such-model") as llm:
        with pytest.raises(BackendError) as caught:
            await collect(llm)
    assert (caught.value.kind, caught.value.status) == ("http", 404)


async def test_cut_stream_is_cut(standin: Standin, client: LLMClient) -> None:
    standin.inject_failure("cut")
    seen: list[StreamEvent] = []

    async def consume() -> None:
        async for event in client.stream(QUESTION, **PARAMS):
            seen.append(event)

    with pytest.raises(BackendError) as caught:
        await consume()
    assert caught.value.kind == "cut"
    assert seen, "some text arrived before the cut"
    assert "cut off" in caught.value.user_message


async def test_hang_is_a_first_token_timeout(standin: Standin) -> None:
    standin.inject_failure("hang")
    async with LLMClient(standin.base_url, standin.model_name, first_token_timeout=0.3) as llm:
        with pytest.raises(BackendError) as caught:
            await collect(llm)
    assert caught.value.kind == "timeout"
    await standin.wait_for(lambda: standin.running == 0 and standin.disconnects == 1)


async def test_stalled_stream_is_an_idle_timeout(standin: Standin) -> None:
    standin.tokens_per_second = 2  # 0.5 s between chunks
    async with LLMClient(standin.base_url, standin.model_name, idle_timeout=0.2) as llm:
        with pytest.raises(BackendError) as caught:
            await collect(llm)
    assert caught.value.kind == "timeout"
    assert "no data" in caught.value.detail or "no first token" in caught.value.detail
    await standin.wait_for(lambda: standin.running == 0)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def test_nothing_listening_is_unavailable() -> None:
    async with LLMClient(f"http://127.0.0.1:{free_port()}/v1", "m", api_key="sk-secret-123") as llm:
        with pytest.raises(BackendError) as caught:
            await collect(llm)
        assert caught.value.kind == "unavailable"
        assert "sk-secret-123" not in str(caught.value) + caught.value.user_message
        assert await llm.health() is False
        with pytest.raises(BackendError) as tokenize_error:
            await llm.count_prompt_tokens(QUESTION)
        assert tokenize_error.value.kind == "unavailable"


async def test_cancelling_the_consumer_disconnects(standin: Standin, client: LLMClient) -> None:
    standin.tokens_per_second = 200
    got_text = asyncio.Event()

    async def consume() -> None:
        async for event in client.stream(QUESTION, **PARAMS):
            if isinstance(event, Delta):
                got_text.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(got_text.wait(), 5)
    assert standin.running == 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await standin.wait_for(lambda: standin.running == 0 and standin.disconnects == 1)
    assert standin.generation_tokens_total < 90  # generation stopped early


async def test_closing_the_generator_disconnects(standin: Standin, client: LLMClient) -> None:
    standin.tokens_per_second = 200
    stream = client.stream(QUESTION, **PARAMS)
    async for event in stream:
        if isinstance(event, Delta):
            break
    await stream.aclose()  # type: ignore[attr-defined]
    await standin.wait_for(lambda: standin.running == 0 and standin.disconnects == 1)


async def test_count_prompt_tokens_and_health(standin: Standin, client: LLMClient) -> None:
    short = await client.count_prompt_tokens([{"role": "user", "content": "Hi"}])
    long = await client.count_prompt_tokens([{"role": "user", "content": "Hi there, how are you today?"}])
    assert short is not None
    assert long is not None
    assert 0 < short < long
    assert await client.health() is True


async def test_count_prompt_tokens_without_the_endpoint_is_none(standin: Standin) -> None:
    # A server root that has no /tokenize: point the root one level too deep.
    async with LLMClient(standin.root_url + "/nothing/v1", standin.model_name) as llm:
        assert await llm.count_prompt_tokens(QUESTION) is None
        assert await llm.health() is False


async def test_probes_and_tokenize_share_one_connection_pool(standin: Standin, client: LLMClient) -> None:
    assert await client.health() is True
    metrics = await client.metrics()
    assert metrics is not None and metrics["vllm:num_requests_running"] == 0
    assert await client.served_models() == [standin.model_name]
    assert await client.count_prompt_tokens(QUESTION)
    routes = ["GET /health", "GET /metrics", "GET /v1/models", "POST /tokenize"]
    assert list(standin.connections.values()) == [routes]  # one session, one kept-alive connection


async def test_a_hung_server_does_not_look_healthy() -> None:
    accepted: list[asyncio.StreamWriter] = []

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)  # reads nothing, answers nothing: a hung server

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with LLMClient(f"http://127.0.0.1:{port}/v1", "m", probe_timeout=0.2) as llm:
            assert await llm.health() is False
            assert await llm.metrics() is None
            assert await llm.served_models() is None
        assert accepted  # the requests did reach it
    finally:
        for writer in accepted:
            writer.close()
        server.close()
        await server.wait_closed()


async def test_a_closed_client_opens_no_new_session(standin: Standin) -> None:
    llm = LLMClient(standin.base_url, standin.model_name)
    assert await llm.health() is True
    await llm.aclose()
    assert await llm.health() is False
    with pytest.raises(BackendError) as caught:
        await llm.count_prompt_tokens(QUESTION)
    assert caught.value.kind == "unavailable"
    assert standin.hits == {"GET /health": 1}
