"""``streaming = "auto"`` (issue 11, goal 3): a status-line reply whose final would be posted
while its channel's ``chat.postMessage`` budget is contended shows it as a native stream
(``chat.startStream`` + ``chat.stopStream``, Tier 2: a budget of their own), within the
workspace's stream slots; every other reply as with ``"edits"``.

The fake Slack enforces Slack's published per-method limits (:meth:`FakeSlack.enforce_real_limits`);
the tests look at every version of every message, every status line and what is stored, and
count calls and 429s, never times.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import pytest
from botkit_slack.markers import marker_of
from botkit_slack.streams import GUARD, StreamStarts
from slack_harness import Running, StartBot
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from test_slack_progress import DEFAULTS, _mine
from test_slack_progress import _ask as progress_ask

from botkit.testing.fake_slack import FakeSlack, SlackMessage

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_e2e.py"


def _thread(slack: FakeSlack, event: dict[str, Any]) -> list[SlackMessage]:
    return slack.thread_replies(event["channel"], event["ts"])


async def _ask(bot: Running, slack: FakeSlack, questions: int, channels: int) -> list[dict[str, Any]]:
    """test_slack_progress's ``_ask`` (every turn stored, one message per thread), and then no
    message of those threads streams any more."""
    events = await progress_ask(bot, slack, questions, channels)
    assert all([m.streaming for m in _thread(slack, e)] == [False] for e in events)
    return events


async def _stored(bot: Running, slack: FakeSlack, event: dict[str, Any]) -> tuple[int, str]:
    conversation = await bot.bot.store.conversation_id("slack", slack.team_id, event["channel"], event["ts"])
    _question, turn = await bot.bot.store.messages(conversation)
    assert turn.status == "complete"
    return turn.id, turn.content or ""


async def test_a_hundred_questions_stream_the_contended_finals_natively_without_a_429(
    slack: FakeSlack, start_bot: StartBot
) -> None:
    """100 questions in 10 channels, 40 tokens/s: no 429 of any method; every thread ends with
    exactly one message, the stored answer with its 👍/👎 and its turn's final marker. The
    status-line replies whose channel had no post free at the end (5 per channel, 3 tokens)
    were streamed instead: started with the whole answer, stopped with the buttons and the
    marker, never edited, their status line cleared; at most 20 streams in the workspace."""
    slack.enforce_real_limits()
    async with start_bot(streaming="auto", **DEFAULTS) as bot:
        bot.bot.standin.tokens_per_second = 40
        events = await _ask(bot, slack, 100, 10)

        assert slack.rate_limited() == []
        streamed: dict[str, int] = {}
        for event in events:
            (final,) = _thread(slack, event)
            turn, answer = await _stored(bot, slack, event)
            assert final.text == answer
            assert final.buttons(), "the final message carries 👍/👎"
            marker = marker_of({"metadata": final.metadata})
            assert marker is not None and (marker.turn, marker.role) == (turn, "final")
            if final.appended:  # a native stream: one piece, the whole answer, never updated
                assert final.appended == [answer]
                assert [m.history for m in _mine(slack, event)] == [[answer]]
                assert slack.statuses[(event["channel"], event["ts"])] == ["is thinking…", ""]
                streamed[event["channel"]] = streamed.get(event["channel"], 0) + 1
        assert 10 <= sum(streamed.values()) <= 20
        assert len(slack.calls_of("chat.startStream")) == sum(streamed.values())
        assert len(slack.calls_of("chat.stopStream")) == sum(streamed.values())
        assert all(
            c.args["ts"] not in {m.ts for m in slack.messages.values() if m.appended}
            for c in slack.calls_of("chat.update")
        )
        # Every reply needs one new message; the streams took theirs off the channels' posts.
        assert len(slack.calls_of("chat.postMessage", ok_only=True)) == 100 - sum(streamed.values())


async def test_finals_ending_together_in_one_channel_stream_those_beyond_its_post_burst(
    slack: FakeSlack, start_bot: StartBot
) -> None:
    """Five status-line replies in one channel whose answers end together: the channel's post
    budget (burst 3) posts three finals at once; the fourth and fifth find it spent and are
    streamed, each deciding as its call draws (not before the others' draws: all five would
    have seen three tokens free and queued). No 429; one message each, the answer."""
    slack.enforce_real_limits()
    async with start_bot(streaming="auto", progress="status", **DEFAULTS) as bot:
        bot.bot.standin.tokens_per_second = 40
        events = await _ask(bot, slack, 5, 1)

        assert slack.rate_limited() == []
        kinds = []
        for event in events:
            (final,) = _thread(slack, event)
            assert final.text == (await _stored(bot, slack, event))[1] and final.buttons()
            kinds.append("stream" if final.appended else "post")
        assert sorted(kinds) == ["post"] * 3 + ["stream"] * 2
        assert len(slack.calls_of("chat.postMessage")) == 3


async def test_ten_questions_stream_partial_text_as_with_edits_and_no_native_stream(
    slack: FakeSlack, start_bot: StartBot
) -> None:
    """10 questions in 10 channels: no post is contended, so ``"auto"`` does what ``"edits"``
    does: each reply shows partial answer text before its final, no status line, no stream."""
    slack.enforce_real_limits()
    async with start_bot(streaming="auto", **DEFAULTS) as bot:
        bot.bot.standin.tokens_per_second = 15
        events = await _ask(bot, slack, 10, 10)

        assert slack.rate_limited() == []
        assert slack.calls_of("chat.startStream") == []
        assert slack.calls_of("assistant.threads.setStatus") == []
        for event in events:
            _turn, answer = await _stored(bot, slack, event)
            (final,) = _thread(slack, event)
            assert final.text == answer and final.buttons()
            versions = [v for m in _mine(slack, event) for v in m.history]
            partial = [v for v in versions if v.startswith("answer") and v != answer]
            assert partial, versions


async def test_a_workspace_that_refuses_streams_gets_posts_and_is_asked_once(
    slack: FakeSlack, start_bot: StartBot
) -> None:
    """Slack refuses ``chat.startStream`` (an app without the streaming feature): those replies
    post their finals on the channel's budget after all (no 429), and once a refusal came back
    no later reply of the workspace tries a stream (a second burst: none); every thread still
    ends with one message, the answer with its buttons."""
    slack.enforce_real_limits()
    slack.fail_with_error("chat.startStream", "not_allowed_token_type", count=1000)
    async with start_bot(streaming="auto", **DEFAULTS) as bot:
        bot.bot.standin.tokens_per_second = 40
        events = await _ask(bot, slack, 100, 10)
        tried = len(slack.calls_of("chat.startStream"))
        assert 1 <= tried <= 20  # those that asked before the first refusal came back
        events += await _ask(bot, slack, 20, 10)

        assert slack.rate_limited() == []
        assert len(slack.calls_of("chat.startStream")) == tried
        for event in events:
            (final,) = _thread(slack, event)
            assert final.text == (await _stored(bot, slack, event))[1]
            assert final.buttons() and not final.appended


def test_stream_slots_bound_starts_and_stops_per_minute() -> None:
    """A slot is busy from its take until ``GUARD`` s after its reply ended: at most
    ``per_minute`` streams started, and at most that many stopped, in any minute."""
    now = [0.0]
    starts = StreamStarts(2, clock=lambda: now[0])
    first, second = starts.take("T1"), starts.take("T1")
    assert first is not None and second is not None
    assert starts.take("T1") is None and starts.take("T2") is not None  # per workspace
    now[0] = 100.0
    assert starts.take("T1") is None  # still live: no release, no slot
    first.release()
    now[0] = 100.0 + GUARD - 0.5
    assert starts.take("T1") is None
    now[0] = 100.0 + GUARD
    assert starts.take("T1") is not None
    starts.refuse("T2")
    assert starts.take("T2") is None


async def test_the_fake_plays_tier_2_for_stream_starts_and_stops_and_tier_4_for_appends(
    slack: FakeSlack,
) -> None:
    """:meth:`FakeSlack.enforce_real_limits`: ``chat.startStream`` and ``chat.stopStream`` 20
    per minute per workspace (Tier 2), ``chat.appendStream`` 100 (Tier 4), each its own count;
    the next call is a 429 with ``Retry-After``, as Slack answers (driven with slack_sdk)."""
    slack.enforce_real_limits()
    client = AsyncWebClient(token=slack.bot_token, base_url=slack.api_url)

    async def start(index: int) -> dict[str, Any]:
        response = await client.chat_startStream(
            channel=f"C0S{index % 4}",
            thread_ts=f"{index}.0",
            recipient_user_id="U1",
            recipient_team_id=slack.team_id,
        )
        return {"channel": response["channel"], "ts": response["ts"]}

    async def refused(call: Any) -> None:
        with pytest.raises(SlackApiError) as error:
            await call
        assert error.value.response.status_code == 429
        assert float(error.value.response.headers["Retry-After"]) > 0

    streams = [await start(i) for i in range(20)]
    await refused(start(20))
    for _ in range(100):
        await client.chat_appendStream(markdown_text="x", **streams[0])
    await refused(client.chat_appendStream(markdown_text="x", **streams[1]))
    for stream in streams:
        await client.chat_stopStream(**stream)
    await refused(client.chat_stopStream(**streams[0]))
    assert [len(slack.calls_of(m, ok_only=True)) for m in ("chat.startStream", "chat.appendStream")] == [
        20,
        100,
    ]
    assert len(slack.calls_of("chat.stopStream", ok_only=True)) == 20


async def test_the_e2e_harness_reads_a_native_stream_as_the_threads_message(slack: FakeSlack) -> None:
    """benchmarks/bench_e2e.py's call log: a ``chat.startStream`` is a new message of its
    thread and each ``chat.appendStream`` a version of it (its text so far), so a streamed
    final is seen, and timed by the append that completed it; calls and 429s per method."""
    spec = importlib.util.spec_from_file_location("bench_e2e", BENCH)
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    sys.modules["bench_e2e"] = bench
    spec.loader.exec_module(bench)
    client = AsyncWebClient(token=slack.bot_token, base_url=slack.api_url)
    event = slack.mention_event("a question")
    await client.assistant_threads_setStatus(channel_id=event["channel"], thread_ts=event["ts"], status="is…")
    started = await client.chat_startStream(
        channel=event["channel"], thread_ts=event["ts"], markdown_text="one ", recipient_user_id="U1",
        recipient_team_id=slack.team_id,
    )  # fmt: skip
    where = {"channel": event["channel"], "ts": started["ts"]}
    await client.chat_appendStream(markdown_text="two", **where)
    await client.chat_stopStream(**where)
    (reply,) = bench._replies(slack, {f"{event['channel']} {event['ts']}": {"index": 0, "at": 0.0}})
    assert [text for _, text in reply["versions"]] == ["one ", "one two"]
    assert reply["final"] == "one two" and reply["messages"] == 1
    assert reply["final_at"] == slack.calls_of("chat.appendStream")[0].at
    assert reply["calls"] == 4  # the status line, start, append, stop
    assert bench._totals(slack)["calls_by_method"]["chat.appendStream"] == 1


@pytest.mark.timeout(300)  # about 63 s here: something in it still waits out most of a minute (open)
async def test_a_restart_within_the_minute_posts_the_finals_a_spent_stream_budget_refuses(
    slack: FakeSlack, start_bot: StartBot
) -> None:
    """100 questions, the bot restarted, 100 more at once: the new process's stream slots do not
    know the streams the old one started within Slack's minute, so some ``chat.startStream``
    calls get Tier 2's 429. Such a final is posted at once instead (as ``"edits"`` would) and no
    stream starts in the workspace until the Retry-After: every thread ends with one message,
    the stored answer with its 👍/👎 and marker, and no reply calls ``chat.startStream`` twice.
    (Before: the 429 was waited out on the stream budget and the start retried, the final shown
    up to a minute late.)"""
    slack.enforce_real_limits()
    async with start_bot(streaming="auto", **DEFAULTS) as bot:
        bot.bot.standin.tokens_per_second = 40
        await _ask(bot, slack, 100, 10)
    before = len(slack.calls_of("chat.startStream"))
    async with start_bot(streaming="auto", **DEFAULTS) as bot:
        bot.bot.standin.tokens_per_second = 40
        events = await _ask(bot, slack, 100, 10)
        for event in events:
            (final,) = _thread(slack, event)
            turn, answer = await _stored(bot, slack, event)
            marker = marker_of({"metadata": final.metadata})
            assert final.text == answer and final.buttons()
            assert marker is not None and (marker.turn, marker.role) == (turn, "final")
    starts = slack.calls_of("chat.startStream")[before:]
    refused = [c for c in slack.rate_limited() if c.method == "chat.startStream"]
    assert refused, "the scenario needs the second process to meet Tier 2's 429"
    per_thread = [c.args["thread_ts"] for c in starts]
    assert len(per_thread) == len(set(per_thread)), "a 429'd chat.startStream was retried"
