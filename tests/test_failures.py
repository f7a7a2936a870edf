"""Every accepted message ends in a final reply or a visible, specific error, and a stored status."""

from __future__ import annotations

import socket
from pathlib import Path

from botkit.testing import Standin, TestBot


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _assistant_rows(bot: TestBot) -> list[tuple[str, str | None]]:
    conversation = await bot.store.conversation_id("test", "workspace-1", "channel-1", "thread-1")
    return [(m.status, m.error) for m in await bot.store.messages(conversation) if m.role == "assistant"]


async def test_backend_down(tmp_path: Path) -> None:
    port = _free_port()
    standin = Standin()
    settings = {"llm": {"base_url": f"http://127.0.0.1:{port}/v1", "queue_timeout": 0.5}}
    async with TestBot(tmp_path, standin=standin, settings=settings) as bot:
        reply = await bot.ask("hello?")
        rows = await _assistant_rows(bot)
    shown = [c.text for c in reply.calls]
    assert any("not answering right now; your question is queued (#1 in line)" in text for text in shown)
    assert "not reachable" in reply.text
    assert reply.error is not None
    assert rows[0][0] == "failed"


async def test_http_500(tmp_path: Path) -> None:
    async with TestBot(tmp_path) as bot:
        bot.standin.inject_failure("http500")
        reply = await bot.ask("hello?")
        rows = await _assistant_rows(bot)
    assert "500" in reply.text
    assert rows == [("failed", reply.error)]


async def test_stream_cut_midway_keeps_partial_answer_and_says_so(tmp_path: Path) -> None:
    settings = {"llm": {"retry_interrupted": False}}
    async with TestBot(tmp_path, standin=Standin(reasoning_field=None), settings=settings) as bot:
        bot.standin.script_reply("alpha beta gamma delta epsilon zeta eta theta", reasoning="r")
        bot.standin.inject_failure("cut")
        reply = await bot.ask("hello?")
        rows = await _assistant_rows(bot)
    assert "cut off" in reply.text or "broke" in reply.text
    assert rows[0][0] == "interrupted"


async def test_stream_cut_is_retried_once_in_the_same_message(tmp_path: Path) -> None:
    async with TestBot(tmp_path, standin=Standin(tokens_per_second=300)) as bot:
        bot.standin.inject_failure("cut")
        bot.standin.script_reply("The complete answer, second time round.")
        reply = await bot.ask("hello?")
        rows = await _assistant_rows(bot)
        requests = len(bot.standin.requests)
    shown = [c.text for c in reply.calls]
    assert any("Interrupted: the model server stopped" in text for text in shown)
    assert reply.messages == ["The complete answer, second time round."]
    assert [c.method for c in reply.calls].count("post_placeholder") == 1  # edited in place
    assert requests == 2
    assert rows == [("complete", None)]


async def test_empty_answer_is_retried_once_with_the_think_prefill(tmp_path: Path) -> None:
    async with TestBot(tmp_path) as bot:
        bot.standin.inject_failure("empty")
        bot.standin.script_reply("Recovered answer.")  # the empty reply does not consume scripted replies
        reply = await bot.ask("hello?")
        requests = list(bot.standin.requests)
        rows = await _assistant_rows(bot)
    assert len(requests) == 2
    retry = requests[1]
    assert retry["messages"][-1] == {"role": "assistant", "content": "<think>\n"}
    assert retry["continue_final_message"] is True and retry["add_generation_prompt"] is False
    assert reply.text == "Recovered answer."
    assert rows == [("complete", None)]


async def test_empty_answer_twice_is_a_visible_error(tmp_path: Path) -> None:
    async with TestBot(tmp_path) as bot:
        bot.standin.inject_failure("empty", count=2)
        reply = await bot.ask("hello?")
        rows = await _assistant_rows(bot)
    assert "empty" in reply.text.lower()
    assert rows[0][0] == "failed"


async def test_hung_backend_times_out_visibly(tmp_path: Path) -> None:
    settings = {"llm": {"first_token_timeout": 0.5, "idle_timeout": 0.5}}
    async with TestBot(tmp_path, settings=settings) as bot:
        bot.standin.inject_failure("hang")
        reply = await bot.ask("hello?")
        rows = await _assistant_rows(bot)
    assert reply.error is not None and reply.error in reply.text
    assert rows[0][0] == "failed"
