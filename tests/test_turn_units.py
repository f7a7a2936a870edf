"""The units a model turn is made of, each on its own: the thread gate, context fitting, stream
consumption, the middleware chain's order, and turn recording with filters."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from botkit.events import ConversationKey, IncomingMessage
from botkit.llm.client import Delta, Finished, StreamEvent
from botkit.llm.prompt import build_prompt, estimate_tokens
from botkit.personas import PersonaRegistry, shipped_personas_dir
from botkit.pipeline.chain import MiddlewareChain
from botkit.pipeline.context import ContextOverflow, fit_history
from botkit.pipeline.filters import WITHHELD, TextFilters
from botkit.pipeline.gate import Place, ThreadGates
from botkit.pipeline.generation import Attempt, consume
from botkit.pipeline.recorder import FinalWrites, TurnRecorder, Usage
from botkit.plugins import NextStep, Plugin, PluginContext, Request, TurnResult
from botkit.plugins.api import TextFilter
from botkit.store import ConversationStore, HistoryTurn
from botkit.store.spool import WriteSpool
from botkit.streaming.budget import EditBudget
from botkit.streaming.streamer import ReplyStreamer
from botkit.testing import RecordingReply

KEY = ConversationKey("test", "w", "c", "t")


async def test_gate_lets_one_turn_per_thread_in_order_and_forgets_idle_threads() -> None:
    gates = ThreadGates()
    first, second = gates.reserve(KEY), gates.reserve(KEY)
    other = gates.reserve(ConversationKey("test", "w", "c", "other"))
    await first.acquire()
    waiting = asyncio.create_task(second.acquire())
    await other.acquire()  # another thread is not held up
    await asyncio.sleep(0)
    assert not waiting.done()
    first.release()
    first.release()  # idempotent
    await asyncio.wait_for(waiting, 1)
    second.release()
    other.release()
    assert len(gates) == 0


async def test_gate_serves_in_reservation_order_whatever_order_they_wait_in() -> None:
    gates = ThreadGates()
    first, second, third = gates.reserve(KEY), gates.reserve(KEY), gates.reserve(KEY)
    await first.acquire()
    order: list[str] = []

    async def take(place: Place, name: str) -> None:
        await place.acquire()
        order.append(name)
        place.release()

    late = asyncio.create_task(take(third, "third"))  # the third waits before the second does
    await asyncio.sleep(0)
    early = asyncio.create_task(take(second, "second"))
    await asyncio.sleep(0)
    assert order == []
    first.release()
    await asyncio.wait_for(asyncio.gather(late, early), 1)
    assert order == ["second", "third"]
    assert len(gates) == 0


async def test_gate_a_place_that_leaves_early_keeps_the_order_behind_it() -> None:
    gates = ThreadGates()
    first, second, third = gates.reserve(KEY), gates.reserve(KEY), gates.reserve(KEY)
    await first.acquire()
    second.release()  # refused while waiting: it never had its turn
    fourth = gates.reserve(KEY)  # arrives after the second left: still behind the first
    waiting = asyncio.create_task(third.acquire())
    behind = asyncio.create_task(fourth.acquire())
    await asyncio.sleep(0)
    assert not waiting.done() and not behind.done()  # the first is still answering
    first.release()
    await asyncio.wait_for(waiting, 1)
    assert not behind.done()
    third.release()
    await asyncio.wait_for(behind, 1)
    fourth.release()
    assert len(gates) == 0


async def test_gate_place_released_without_acquiring_frees_the_thread() -> None:
    gates = ThreadGates()
    gates.reserve(KEY).release()
    assert len(gates) == 0


def _history(n: int) -> list[HistoryTurn]:
    return [HistoryTurn(f"question {i} " + "word " * 30, f"answer {i} " + "word " * 30) for i in range(n)]


async def test_fit_keeps_the_whole_history_when_it_fits() -> None:
    history = _history(3)
    fitted = await fit_history(history, "now?", room=10_000, counter=None)
    assert list(fitted.kept) == history and not fitted.trimmed(history)
    assert fitted.tokens == estimate_tokens(fitted.prompt.messages)


async def test_fit_keeps_the_longest_recent_suffix_that_fits() -> None:
    history = _history(10)
    room = estimate_tokens(build_prompt(history[-4:], "now?").messages)
    fitted = await fit_history(history, "now?", room=room, counter=None)
    assert list(fitted.kept) == history[-4:]
    assert fitted.trimmed(history) and fitted.tokens <= room


async def test_fit_uses_the_server_count_when_it_answers() -> None:
    class Counter:
        async def count_prompt_tokens(self, messages: list[dict[str, str]]) -> int | None:
            return 2 * len(messages)  # k exchanges and the question: 2 * (2k + 1) "tokens"

    history = _history(10)
    fitted = await fit_history(history, "now?", room=18, counter=Counter())
    assert (len(fitted.kept), fitted.tokens) == (4, 18)  # 4k + 2 <= 18


async def test_fit_refuses_a_question_that_alone_is_too_long() -> None:
    with pytest.raises(ContextOverflow, match="too long for the model"):
        await fit_history([], "word " * 400, room=50, counter=None)


async def _events(*events: StreamEvent) -> AsyncIterator[StreamEvent]:
    for event in events:
        yield event


async def test_consume_splits_reasoning_from_answer_and_records_usage() -> None:
    reply = RecordingReply()
    streamer = ReplyStreamer(reply, EditBudget(None), edit_interval=0)
    await streamer.start()
    attempt, usage = Attempt(), Usage()
    await consume(
        _events(
            Delta("reasoning", "hmm "),
            Delta("reasoning", "ok"),
            Delta("answer", "42"),
            Finished("stop", 10, 5),
        ),
        streamer,
        attempt,
        usage,
    )
    assert (attempt.reasoning, attempt.answer, attempt.finish_reason) == ("hmm ok", "42", "stop")
    assert (usage.prompt_tokens, usage.completion_tokens) == (10, 5)
    assert usage.first_token_at is not None
    assert streamer.partial_answer == "42"
    await streamer.finish("42")


async def test_consume_drops_reasoning_that_was_the_answer() -> None:
    streamer = ReplyStreamer(RecordingReply(), EditBudget(None), edit_interval=0)
    await streamer.start()
    attempt = Attempt()
    await consume(
        _events(Delta("reasoning", "Paris."), Delta("answer", "Paris."), Finished("stop", 1, 1, True)),
        streamer,
        attempt,
        Usage(),
    )
    assert (attempt.reasoning, attempt.answer) == ("", "Paris.")
    await streamer.finish("Paris.")


async def test_chain_runs_middleware_in_order_and_skips_other_kinds() -> None:
    order: list[str] = []
    plugin: Plugin[Any] = Plugin("order")

    @plugin.middleware
    async def outer(request: Request, next_step: NextStep, ctx: PluginContext[Any]) -> TurnResult:
        order.append("outer>")
        result = await next_step(request)
        order.append("<outer")
        return result

    @plugin.middleware(kinds={"turn"})
    async def turns_only(request: Request, next_step: NextStep, ctx: PluginContext[Any]) -> TurnResult:
        order.append("turn")
        return await next_step(request)

    personas = PersonaRegistry(shipped_personas_dir())
    chain = MiddlewareChain.of([PluginContext(plugin, None, personas)])
    message = IncomingMessage("test", "w", "c", "t", "u", "hi", "d1")

    async def handler(request: Request) -> TurnResult:
        order.append(f"handler:{request.kind}")
        return TurnResult("complete")

    await chain.run(Request(message, "command", "hi", command="x"), handler)
    await chain.run(Request(message, "turn", "hi"), handler)
    assert order == ["outer>", "handler:command", "<outer", "outer>", "turn", "handler:turn", "<outer"]


async def test_recorder_stores_filtered_text(tmp_path: Path) -> None:
    filters = TextFilters(
        [
            TextFilter(lambda t: t.replace("secret", "[x]"), question=True),
            TextFilter(lambda t: t.replace("hidden", "[y]"), reasoning=True),
        ]
    )
    store = await ConversationStore.open(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}", migrate=True)
    try:
        personas = PersonaRegistry(shipped_personas_dir())
        personas.load()
        persona = personas.get("general")
        assert persona is not None
        recorder = TurnRecorder(store, filters, "model")
        message = IncomingMessage("test", "w", "c", "t", "u", "a secret hidden", "d1")
        await recorder.enqueue(Request(message, "turn", "a secret hidden", persona=persona), persona, ["m1"])
        assert recorder.conversation is not None
        queued = [m.status for m in await store.unfinished_turns()]
        await recorder.streaming()
        assert await recorder.history() == []  # its own rows are not a completed exchange
        await recorder.finish("complete", answer="the secret", reasoning="hidden secret", error=None)
        question, answer = await store.messages(recorder.conversation)
    finally:
        await store.close()
    assert question.content == "a [x] hidden"  # only the filter that asked for the question
    assert answer.content == "the [x]"
    assert answer.reasoning == "[y] secret"  # only the filter that asked for reasoning
    assert answer.platform_message_ids == ["m1"]
    assert queued == ["queued"]  # on record, with its placeholder, before it got the thread


async def test_an_intent_is_anew_unless_its_first_message_is_one_the_row_holds(tmp_path: Path) -> None:
    """The final view's intent is ``anew`` (the restart may look for its first message by its
    text) where that message is posted by the view (no id), or edits one whose id the row does
    not hold yet (the placeholder's id still on its way to the database: a restart would not
    know it); not once the row holds it."""
    store = await ConversationStore.open(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}", migrate=True)
    spool = WriteSpool(tmp_path / "pending", "sqlite+aiosqlite:///db.sqlite")
    try:
        personas = PersonaRegistry(shipped_personas_dir())
        personas.load()
        persona = personas.get("general")
        assert persona is not None
        recorder = TurnRecorder(store, TextFilters(), "model")
        recorder.writes = FinalWrites(store, retry_timeout=5, spool=spool)
        message = IncomingMessage("test", "w", "c", "t", "u", "hi", "d1")
        await recorder.enqueue(Request(message, "turn", "hi", persona=persona), persona, [])
        seen: list[bool] = []
        for first, recorded in (("m1", False), ("m1", True), (None, True)):
            if recorded:
                await recorder.record_message_ids(["m1"])
            await recorder.intend([["a"]], first, status="complete", answer="a", reasoning="", error=None)
            seen += [e.anew for e in spool.entries()]
    finally:
        await store.close()
    assert seen == [True, False, True]


def test_a_raising_filter_withholds() -> None:
    def boom(text: str) -> str:
        raise ValueError(text)

    assert TextFilters([TextFilter(boom)]).shown("anything") == WITHHELD
    assert TextFilters().for_display() is None
