"""Reply streaming by edits: exact final text, bounded edits, continuations, shared budgets, 429s,
the one retry policy and the text filter."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from botkit.events import CallKind, RateLimited, RateScope, TransientPlatformError
from botkit.markers import ShownMessage
from botkit.streaming.budget import BudgetRegistry, EditBudget
from botkit.streaming.retry import RetryPolicy
from botkit.streaming.streamer import PLACEHOLDER, ReplyStreamer
from botkit.testing import RecordingReply, Standin, TestBot
from botkit.testing.recording import ReplyCall


def _squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


async def test_final_text_equals_the_answer_and_edits_are_bounded_by_the_interval(tmp_path: Path) -> None:
    answer = " ".join(f"word{i}" for i in range(300))
    standin = Standin(tokens_per_second=400, tokens_per_chunk=1)
    interval = 0.25
    async with TestBot(tmp_path, standin=standin, settings={"stream": {"edit_interval": interval}}) as bot:
        bot.standin.script_reply(answer, reasoning="thinking " * 50)
        started = time.monotonic()
        reply = await bot.ask("go")
        elapsed = time.monotonic() - started
    assert reply.text == answer
    assert reply.messages == [answer]
    # One edit per interval at most, plus the final edit (an upper bound that noise only loosens).
    assert 2 <= reply.edits <= elapsed / interval + 2
    # Hundreds of one-token SSE chunks arrived; they were coalesced into far fewer edits.
    assert reply.edits < bot.standin.generation_tokens_total / 5


async def test_answer_past_the_limit_continues_in_more_messages_with_nothing_lost(tmp_path: Path) -> None:
    lines = [f"Line {i}: " + "lorem ipsum " * 8 for i in range(60)]
    code = "```python\n" + "\n".join(f"value_{i} = {i} * 2" for i in range(80)) + "\n```"
    answer = "\n".join(lines[:30]) + "\n\n" + code + "\n\n" + "\n".join(lines[30:])
    async with TestBot(tmp_path) as bot:
        bot.standin.script_reply(answer)
        reply = await bot.ask("long please", reply=RecordingReply(max_chars=500))
    assert len(reply.messages) >= len(answer) // 500
    assert all(len(m) <= 500 for m in reply.messages)
    for message in reply.messages:
        assert message.count("```") % 2 == 0, "each message's code fences are balanced"
    shown = "".join(reply.messages).replace("```python", "").replace("```", "")
    assert _squash(shown) == _squash(answer.replace("```python", "").replace("```", ""))
    assert sum(1 for c in reply.calls if c.method == "post_continuation") == len(reply.messages) - 1


async def test_rate_limited_edit_is_waited_out_and_the_final_text_lands(tmp_path: Path) -> None:
    answer = "The final answer lands even after a 429."
    async with TestBot(tmp_path, standin=Standin(tokens_per_second=200)) as bot:
        bot.standin.script_reply(answer)
        reply = await bot.ask("go", reply=RecordingReply(rate_limit_edits={1: 0.2, 2: 0.2, 3: 0.2}))
    assert any(c.method == "rate_limited" for c in reply.calls)
    assert reply.text == answer
    assert reply.calls[-1].method == "finish"


async def test_concurrent_replies_share_one_budget_per_scope() -> None:
    rate, burst = 20.0, 2
    budget = EditBudget(rate, burst)
    replies = [RecordingReply(rate_key="workspace-A", edit_rate=rate, edit_burst=burst) for _ in range(20)]

    async def one(reply: RecordingReply, n: int) -> None:
        streamer = ReplyStreamer(reply, budget, edit_interval=0.0, display="hidden")
        await streamer.start()
        for i in range(15):
            streamer.add_answer(f"reply {n} token {i} ")
            await asyncio.sleep(0.01)
        await streamer.finish(f"reply {n} complete")

    started = time.monotonic()
    await asyncio.gather(*(one(r, n) for n, r in enumerate(replies)))
    elapsed = time.monotonic() - started
    edits = sum(r.edits for r in replies)
    calls = edits + len(replies)  # each reply's placeholder post draws from the bucket too
    # Every post and edit of every reply drew from the one bucket: never more than rate * time + burst.
    assert budget.granted == calls
    assert calls <= rate * elapsed + burst + 1
    assert all(r.text == f"reply {n} complete" for n, r in enumerate(replies))


async def test_stalest_reply_is_served_first() -> None:
    budget = EditBudget(per_second=1000.0, burst=1)
    order: list[str] = []
    budget.pause(0.05)  # nobody may edit for a moment: both wait

    async def wait(name: str, last_visible: float) -> None:
        await budget.acquire(last_visible)
        order.append(name)

    await asyncio.gather(wait("fresh", 10.0), wait("stale", 1.0))
    assert order == ["stale", "fresh"]


async def test_thinking_display_shows_elapsed_seconds_then_the_answer(tmp_path: Path) -> None:
    standin = Standin(time_to_first_token=0.0, tokens_per_second=20)
    settings = {"stream": {"edit_interval": 0.1, "thinking_update_interval": 0.5}}
    async with TestBot(tmp_path, standin=standin, settings=settings) as bot:
        bot.standin.script_reply("Done.", reasoning=" ".join(["hmm"] * 40))
        reply = await bot.ask("think hard")
    shown = [c.text for c in reply.calls if c.method in ("post_placeholder", "edit")]
    assert shown[0] == "_Thinking…_"
    assert any(re.fullmatch(r"_Thinking… \d+s_", text) for text in shown)
    assert not any("hmm" in text for text in shown), "general persona does not show raw reasoning"
    assert reply.text == "Done."


def _redact(seen: list[str]) -> Callable[[str], str]:
    def redact(text: str) -> str:
        seen.append(text)
        return text.replace("secret", "[redacted]")

    return redact


def _shown(reply: RecordingReply) -> list[str]:
    return [c.text for c in reply.calls if c.method in ("post_placeholder", "edit", "post_continuation")]


async def test_text_filter_sees_every_version_whole_before_it_is_split() -> None:
    seen: list[str] = []
    reply = RecordingReply(max_chars=200)
    streamer = ReplyStreamer(
        reply, EditBudget(None), edit_interval=0.0, display="hidden", text_filter=_redact(seen)
    )
    await streamer.start("_Thinking about the secret…_")
    for i in range(30):
        streamer.add_answer(f"the secret number {i} is {i * 7}. ")
        await asyncio.sleep(0.005)
    final = " ".join(f"secret{i}" for i in range(150))  # more messages (of at most 200) than streamed
    await streamer.finish(final)

    shown = _shown(reply)
    assert len([c for c in reply.calls if c.method == "edit"]) >= 3  # partial versions were shown
    assert any(c.method == "post_continuation" for c in reply.calls)
    assert not any("secret" in text for text in shown), "every version, partial and final, is filtered"
    assert _squash(reply.text) == _squash(final.replace("secret", "[redacted]"))
    assert final in seen  # the filter saw the final text whole, not message by message


async def test_text_filter_applies_to_the_failure_text() -> None:
    seen: list[str] = []
    reply = RecordingReply()
    streamer = ReplyStreamer(reply, EditBudget(None), edit_interval=0.0, text_filter=_redact(seen))
    await streamer.start()
    streamer.add_answer("a partial secret")
    await streamer.fail("⚠️ the secret backend failed")
    assert not any("secret" in text for text in _shown(reply))
    assert reply.text == "a partial [redacted]\n\n⚠️ the [redacted] backend failed"
    assert reply.error == "⚠️ the [redacted] backend failed"


class _Scripted:
    """A platform call that raises the given errors in turn (None: it lands)."""

    def __init__(self, *outcomes: Exception | None) -> None:
        self.outcomes = list(outcomes)
        self.attempts = 0

    async def __call__(self) -> str:
        self.attempts += 1
        error = self.outcomes.pop(0)
        if error is not None:
            raise error
        return "landed"


async def test_retry_policy_retries_transient_errors_and_429s_but_not_refusals() -> None:
    budget = EditBudget(None)
    policy = RetryPolicy(budget)
    flaky = _Scripted(TransientPlatformError("HTTP 503"), RateLimited(0.05), None)
    assert await policy.land(flaky) == "landed"
    assert flaky.attempts == 3
    assert budget.granted == 3  # every attempt drew on the budget

    refusals = 0

    async def refused() -> None:
        nonlocal refusals
        refusals += 1
        raise PermissionError("channel_not_found")

    with pytest.raises(PermissionError):
        await policy.land(refused)
    assert refusals == 1


async def test_a_429_past_the_deadline_is_raised_at_once_and_pauses_the_budget() -> None:
    budget = EditBudget(None)
    policy = RetryPolicy(budget, deadline=1.0)
    attempts = 0

    async def limited() -> None:
        nonlocal attempts
        attempts += 1
        raise RateLimited(60.0)

    with pytest.raises(RateLimited):
        await policy.land(limited)
    assert attempts == 1
    assert budget.paused_for() > 30  # every reply in the scope holds off for the Retry-After


async def test_a_call_that_lands_at_once_sets_up_no_retrying(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Nearly every platform call lands on its first attempt: tenacity is set up only after a
    retryable failure, which then counts as its first attempt (same stop, waits and log lines)."""
    import botkit.streaming.retry as retry

    built: list[object] = []

    class Counted(retry.AsyncRetrying):
        def __init__(self, *args: object, **kwargs: object) -> None:
            built.append(self)
            super().__init__(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(retry, "AsyncRetrying", Counted)
    budget = EditBudget(None)
    policy = RetryPolicy(budget)

    async def landed() -> str:
        return "landed"

    for _ in range(20):
        assert await policy.land(landed) == "landed"
    assert built == []  # main: one AsyncRetrying per call
    assert budget.granted == 20

    limited_twice = _Scripted(RateLimited(0.0), RateLimited(0.0), None)
    with caplog.at_level("INFO", logger="botkit.streaming.retry"):
        assert await policy.land(limited_twice) == "landed"
    assert limited_twice.attempts == 3 and len(built) == 1
    retried = [r.getMessage() for r in caplog.records if "retrying" in r.getMessage()]
    assert [m.split(":")[0] for m in retried] == [
        "platform call failed (attempt 1",
        "platform call failed (attempt 2",
    ]


class _ChannelReply(RecordingReply):
    """A reply whose posts and deletions draw on budgets of their own (unlimited here) and whose
    edits share one nearly empty workspace budget; it can delete, so text may be posted anew."""

    can_replace = True

    def __init__(self, channel: str) -> None:
        super().__init__(rate_key="workspace", edit_rate=0.01, edit_burst=1)
        self.channel = channel
        self.deleted: list[str] = []

    def rate_scope(self, kind: CallKind) -> RateScope:
        if kind == "edit":
            return RateScope(self.rate_key, self.edit_rate, self.edit_burst)
        return RateScope(f"workspace:{kind}:{self.channel}", None)

    async def delete(self, message_id: str) -> None:
        self.deleted.append(message_id)
        self.calls.append(ReplyCall("delete", message_id, ""))

    def posted(self) -> list[str]:
        return [c.text for c in self.calls if c.method == "post_continuation"]


async def _until(condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(5):
        while not condition():  # noqa: ASYNC110 - waiting for the streamer's background work
            await asyncio.sleep(0.01)


async def test_posts_never_wait_behind_edits_and_text_is_posted_anew_when_edits_are_backed_up() -> None:
    budgets = BudgetRegistry()

    def streamer(reply: _ChannelReply) -> ReplyStreamer:
        edits = budgets.for_scope(reply.rate_scope("edit"))
        return ReplyStreamer(reply, edits, budgets=budgets, edit_interval=0.0, display="hidden")

    first, second = _ChannelReply("A"), _ChannelReply("B")
    one = streamer(first)
    await one.start()
    one.add_answer("partial")
    await _until(lambda: first.edits == 1)  # the workspace's one edit token
    one.add_answer(" more")  # no edit token for 100 s, a post token free: posted anew, once
    await _until(lambda: first.posted() == ["partial more"])
    one.add_answer(" again")  # this one waits for an edit token
    two = streamer(second)
    async with asyncio.timeout(5):
        await two.start()  # the other channel's placeholder does not wait behind it
    assert [c.method for c in second.calls] == ["post_placeholder"]
    async with asyncio.timeout(5):
        ids = await one.finish("the final answer")  # not an edit: posted anew, at once
    await _until(lambda: len(first.deleted) == 2)  # each replaced message, in the background
    assert first.edits == 1
    assert first.posted() == ["partial more", "the final answer"]
    assert first.deleted == ["0", "1"] and ids == ["2"] and one.stats.replaced == 2


class _StatusReply(_ChannelReply):
    """A reply that can show a status line (on a workspace budget of one a minute) and posts
    with its buttons in one call, as Slack's does (``progress`` "auto")."""

    can_show_status = True
    posts_with_buttons = True

    def __init__(self, channel: str) -> None:
        super().__init__(channel)
        self.feedback_buttons = True

    def rate_scope(self, kind: CallKind) -> RateScope:
        if kind == "status":
            return RateScope("workspace:status", 1 / 60, 1)
        return super().rate_scope(kind)

    async def show_status(self, text: str) -> bool:
        self.calls.append(ReplyCall("show_status", None, text))
        return True

    async def post_with_feedback(self, text: str, turn_id: int) -> str:
        message_id = await self.post_continuation(text)
        self.buttons[message_id] = turn_id
        return message_id


async def test_a_crowded_scope_shows_status_lines_and_posts_finals_with_their_buttons() -> None:
    """The edit budget (one token, 0.01/s) can stream one reply within the horizon: the first
    reply gets a placeholder, the second a status line (not an edit, not a placeholder) and its
    final is one post with its buttons; the third's status waits for the status budget, and its
    final, coming first, is posted without waiting, and no status follows it."""
    budgets = BudgetRegistry()
    replies = [_StatusReply(f"C{i}") for i in range(3)]
    streamers = [
        ReplyStreamer(r, budgets.for_scope(r.rate_scope("edit")), budgets=budgets, edit_interval=0.0)
        for r in replies
    ]
    for streamer in streamers:
        streamer.begin()
    await _until(lambda: [c.method for c in replies[1].calls] == ["show_status"])
    assert [c.method for c in replies[0].calls] == ["post_placeholder"]
    streamers[1].add_answer("partial")
    async with asyncio.timeout(5):
        assert await streamers[1].finish("the answer", feedback_turn=7) == ["0"]
        assert await streamers[2].finish("the other answer", feedback_turn=8) == ["0"]
    assert [c.method for c in replies[1].calls] == ["show_status", "post_continuation", "finish"]
    assert replies[1].buttons == {"0": 7} and replies[1].messages == ["the answer"]
    assert [c.method for c in replies[2].calls] == ["post_continuation", "finish"]
    assert replies[2].buttons == {"0": 8}
    assert streamers[0].budget.streams == 1  # the two finished ones counted out
    await streamers[0].finish("first")
    assert streamers[0].budget.streams == 0


class _HandingBackReply(RecordingReply):
    """Plays Discord answering a first post with the message an earlier attempt of it created
    (``enforce_nonce``; that attempt's response was lost): the message still shows the
    placeholder that attempt sent, whatever this one asked for."""

    async def post_placeholder(self, text: str) -> str:
        self.messages.append(PLACEHOLDER)
        self.calls.append(ReplyCall("post_placeholder", "0", text))
        self.handed_back = ShownMessage("0", PLACEHOLDER)
        return "0"


async def test_a_first_post_handed_back_an_earlier_message_is_edited_to_the_view() -> None:
    """The post that carries the finished answer is handed back the placeholder an earlier
    attempt created: the streamer knows that message shows the placeholder, and the final view
    edits it to the answer (instead of believing it shows the answer already)."""
    reply = _HandingBackReply()
    streamer = ReplyStreamer(reply, EditBudget(None), edit_interval=0.0, display="hidden")
    streamer.begin()
    streamer.add_answer("the answer")
    await streamer.finish("the answer")
    assert reply.messages == ["the answer"]
    assert [c.method for c in reply.calls] == ["post_placeholder", "edit", "finish"]
