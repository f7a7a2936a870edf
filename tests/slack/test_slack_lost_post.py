"""A ``chat.postMessage`` that Slack applied but whose answer was lost is not posted twice.

Drilled with real slack-bolt/slack_sdk against the fake Slack: the fake applies the post, then
answers 500, drops the connection, or never answers (a timeout, with a short
``slack.web_timeout``). The core retries the post (a transient error); the adapter first looks
in the thread for it (botkit_slack.lostpost) and adopts it. Each drill checks every message the
thread shows (exactly one per part), that the stored answer is what is shown, and that the turn
row ends ``complete``; and that the lookup costs nothing when the first attempt succeeds.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
from botkit_slack.lostpost import LostPosts
from botkit_slack.markers import metadata
from botkit_slack.reply import slack_call
from restart_harness import killed_on_status_line
from slack_harness import Running, StartBot, wait_idle
from slack_sdk.web.async_client import AsyncWebClient
from test_slack_progress import DEFAULTS
from test_slack_progress import _ask as progress_ask

from botkit.events import TransientPlatformError
from botkit.markers import ReplyMarker
from botkit.testing.fake_slack import FakeSlack, SlackMessage
from botkit.testing.testbot import TestBot

pytestmark = pytest.mark.timeout(60)

ANSWER = " ".join(f"word{i}" for i in range(40))
LONG = " ".join(f"sentence{i} of a long answer." for i in range(60))


def _role(role: str) -> Callable[[Mapping[str, Any]], bool]:
    """A call whose reply marker (Slack metadata) has ``role``."""

    def match(args: Mapping[str, Any]) -> bool:
        data = args.get("metadata")
        if isinstance(data, str):
            data = json.loads(data)
        payload = data.get("event_payload") if isinstance(data, Mapping) else None
        return isinstance(payload, Mapping) and payload.get("role") == role

    return match


def _nth(n: int) -> Callable[[Mapping[str, Any]], bool]:
    """The ``n``-th call (1-based) among those this matcher is asked about."""
    seen = [0]

    def match(_args: Mapping[str, Any]) -> bool:
        seen[0] += 1
        return seen[0] == n

    return match


def _mine(slack: FakeSlack, event: dict[str, Any]) -> list[SlackMessage]:
    """Every message of this reply, deleted ones included, oldest first."""
    return sorted(
        (
            m
            for m in [*slack.messages.values(), *slack.deleted]
            if m.channel == event["channel"] and m.thread_ts == event["ts"] and m.bot_id == slack.bot_id
        ),
        key=lambda m: float(m.ts),
    )


async def _ask(bot: Running, slack: FakeSlack, answer: str) -> tuple[dict[str, Any], str]:
    """Ask one question answered with ``answer``; wait until its turn is stored: the event and
    the stored (complete) answer."""
    event = slack.mention_event("answer me once", user="U0LOST")
    await slack.wait_for_connections(1)
    bot.bot.standin.script_reply(answer)
    await slack.push_event(event)
    has_buttons = lambda: any(m.buttons() for m in _mine(slack, event))  # noqa: E731 - the final is up
    await slack.wait_for(has_buttons, timeout=30)
    await wait_idle(bot.bot, timeout=30)
    conversation = await bot.bot.store.conversation_id("slack", slack.team_id, event["channel"], event["ts"])
    _question, turn = await bot.bot.store.messages(conversation)
    assert turn.status == "complete", (turn.status, turn.error)
    return event, turn.content or ""


async def _ask_timed_out(
    slack: FakeSlack,
    start_bot: StartBot,
    match: Callable[[Mapping[str, Any]], bool],
    answer: str,
    **settings: Any,
) -> tuple[dict[str, Any], str]:
    """:func:`_ask`, the ``chat.postMessage`` that ``match`` picks applied and never answered:
    slack_sdk's timeout (a short ``slack.web_timeout``) ends the call, and the core retries."""
    held = slack.hold("chat.postMessage", apply=True, match=match)
    async with start_bot(web_timeout=0.5, **settings) as bot:
        asked = await _ask(bot, slack, answer)
        held.released.set()
    return asked


def _shown_once(slack: FakeSlack, event: dict[str, Any], stored: str) -> SlackMessage:
    """The reply's one message, showing the stored answer, found by one lookup."""
    (message,) = _mine(slack, event)
    assert message.text == stored == ANSWER
    assert _lookups(slack) == 1
    return message


def _lookups(slack: FakeSlack) -> int:
    return len(slack.calls_of("conversations.replies"))


@pytest.mark.parametrize("how", ["500", "reset"])
async def test_a_placeholder_whose_response_was_lost_is_posted_once(
    slack: FakeSlack, start_bot: StartBot, how: str
) -> None:
    slack.lose_response("chat.postMessage", how=how, match=_role("placeholder"))  # type: ignore[arg-type]
    async with start_bot(progress="message") as bot:
        event, stored = await _ask(bot, slack, ANSWER)
    (message,) = _mine(slack, event)
    assert message.text == stored == ANSWER
    assert len(slack.calls_of("chat.postMessage")) == 1, "adopted, not posted again"
    assert _lookups(slack) == 1


async def test_a_placeholder_post_that_timed_out_is_posted_once(
    slack: FakeSlack, start_bot: StartBot
) -> None:
    """Applied, never answered: slack_sdk's timeout (``slack.web_timeout``) ends the call."""
    event, stored = await _ask_timed_out(slack, start_bot, _role("placeholder"), ANSWER, progress="message")
    _shown_once(slack, event, stored)


async def test_a_status_line_final_whose_response_was_lost_is_posted_once(
    slack: FakeSlack, start_bot: StartBot
) -> None:
    """The final posted as the reply's first message (``progress = "status"``), with its buttons."""
    slack.lose_response("chat.postMessage", match=_role("final"))
    async with start_bot(progress="status") as bot:
        event, stored = await _ask(bot, slack, ANSWER)
    (message,) = _mine(slack, event)
    assert message.text == stored == ANSWER
    assert message.buttons()
    assert len(message.history) == 1, "posted once, never edited"
    assert _lookups(slack) == 1


async def test_a_continuation_whose_response_was_lost_is_posted_once(
    slack: FakeSlack, start_bot: StartBot
) -> None:
    """A long answer's second message is applied, its answer lost; the rest follows once each."""
    slack.lose_response("chat.postMessage", how="reset", match=_nth(2))
    async with start_bot(progress="status", max_chars=400) as bot:
        event, stored = await _ask(bot, slack, LONG)
    messages = _mine(slack, event)
    assert len(messages) >= 3
    assert len({m.text for m in messages}) == len(messages), "no part shown twice"
    assert [bool(m.buttons()) for m in messages] == [False] * (len(messages) - 1) + [True]
    assert " ".join(m.text for m in messages).split() == stored.split() == LONG.split()
    assert _lookups(slack) == 1


async def test_no_lookup_when_posts_succeed_or_are_rate_limited(
    slack: FakeSlack, start_bot: StartBot
) -> None:
    """The lookup is off the normal path, and a 429 (Slack applied nothing) is simply retried."""
    slack.fail_with_429("chat.postMessage", retry_after=0.2, count=1)
    async with start_bot(progress="status", max_chars=400) as bot:
        event, stored = await _ask(bot, slack, LONG)
    messages = _mine(slack, event)
    assert " ".join(m.text for m in messages).split() == stored.split()
    assert _lookups(slack) == 0
    assert len(slack.calls_of("chat.postMessage")) == len(messages) + 1  # the 429'd one, again


async def test_a_failed_lookup_posts_again(slack: FakeSlack, start_bot: StartBot) -> None:
    """The thread cannot be read: the post is retried (a duplicate beats a lost reply), and the
    turn still ends complete, its last message showing the stored answer."""
    slack.lose_response("chat.postMessage", match=_role("final"))
    slack.fail_with_status("conversations.replies", 500)
    async with start_bot(progress="status") as bot:
        event, stored = await _ask(bot, slack, ANSWER)
    messages = _mine(slack, event)
    assert [m.text for m in messages] == [ANSWER, ANSWER]
    assert stored == ANSWER
    assert _lookups(slack) == 1


@pytest.mark.parametrize("how", ["500", "reset"])
async def test_a_native_stream_whose_start_response_was_lost_is_started_once(
    slack: FakeSlack, start_bot: StartBot, how: str
) -> None:
    """``streaming = "native"``: the first ``chat.startStream`` is applied, its answer lost; the
    retry (a later edit, with more text) finds the unmarked stream with the first attempt's
    Markdown and appends the rest to it instead of starting a second stream."""
    slack.lose_response("chat.startStream", how=how)  # type: ignore[arg-type]
    async with start_bot(streaming="native") as bot:
        bot.bot.standin.tokens_per_second = 400
        event, stored = await _ask(bot, slack, ANSWER)
    (message,) = slack.thread_replies(event["channel"], event["ts"])  # the placeholder deleted
    assert message.text == stored == ANSWER
    assert not message.streaming and message.buttons()
    assert "".join(message.appended) == ANSWER, "started once, every piece appended once"
    assert len(slack.calls_of("chat.startStream")) == 1
    assert _lookups(slack) == 1


async def test_no_lookup_when_a_native_stream_starts(slack: FakeSlack, start_bot: StartBot) -> None:
    async with start_bot(streaming="native") as bot:
        bot.bot.standin.tokens_per_second = 400
        event, stored = await _ask(bot, slack, ANSWER)
    (message,) = slack.thread_replies(event["channel"], event["ts"])
    assert message.text == stored == ANSWER
    assert _lookups(slack) == 0


async def test_a_streamed_first_final_whose_start_response_was_lost_is_one_message(
    slack: FakeSlack, start_bot: StartBot
) -> None:
    """``streaming = "auto"``: five status-line finals end together in one channel; two are
    streamed (``chat.startStream`` then ``chat.stopStream``), and the first start's answer is
    lost after Slack applied it. Its retry (the same text) adopts that stream: one message per
    thread, the stored answer, with its buttons, and no extra start."""
    slack.enforce_real_limits()
    slack.lose_response("chat.startStream")
    async with start_bot(streaming="auto", progress="status", **DEFAULTS) as bot:
        bot.bot.standin.tokens_per_second = 40
        events = await progress_ask(bot, slack, 5, 1)
        for event in events:
            conversation = await bot.bot.store.conversation_id(
                "slack", slack.team_id, event["channel"], event["ts"]
            )
            _question, turn = await bot.bot.store.messages(conversation)
            (final,) = slack.thread_replies(event["channel"], event["ts"])
            assert turn.status == "complete" and final.text == turn.content and final.buttons()
            assert not final.streaming
    starts = slack.calls_of("chat.startStream")
    assert len(starts) == len({c.args["thread_ts"] for c in starts}) >= 1, "one start per streamed reply"
    assert _lookups(slack) == 1


async def _lone_post(
    lost: LostPosts,
    call: Callable[[], Awaitable[Any]],
    *,
    thread_ts: str | None,
    text: str,
    marker: ReplyMarker | None,
) -> str:
    """``lost.post`` of one message outside a reply (nothing else known, nothing to update)."""
    return await lost.post(
        thread_ts=thread_ts, text=text, marker=marker, known=[], call=call, update=lambda ts: asyncio.sleep(0)
    )


async def test_the_lookup_reaches_back_to_when_the_first_attempt_started(slack: FakeSlack) -> None:
    """A post that Slack applied at once but whose call ended much later (a long timeout): the
    lookup starts from when the first attempt *started*, so the message is still found (the
    clock moves an hour while each call is in flight)."""
    client = AsyncWebClient(token=slack.bot_token, base_url=slack.api_url)
    root = str((await client.chat_postMessage(channel="C0GENERAL", text="a question"))["ts"])
    now = [float(root)]
    lost = LostPosts(client, "C0GENERAL", clock=lambda: now[0])
    marker = ReplyMarker(7, "final")
    slack.lose_response("chat.postMessage")

    async def attempt() -> Any:
        try:
            return await slack_call(
                client.chat_postMessage(
                    channel="C0GENERAL", thread_ts=root, text="the answer", metadata=metadata(marker)
                )
            )
        finally:
            now[0] += 3600.0

    async def post() -> str:
        return await _lone_post(lost, attempt, thread_ts=root, text="the answer", marker=marker)

    with pytest.raises(TransientPlatformError):
        await post()
    ts = await post()
    (message,) = slack.thread_replies("C0GENERAL", root)
    assert message.ts == ts and lost.adopted == [ts]
    assert len(slack.calls_of("chat.postMessage")) == 2  # the root and the one lost


def _top_level(slack: FakeSlack, channel: str) -> list[SlackMessage]:
    """The bot's top-level messages in ``channel``, deleted ones included, oldest first."""
    return sorted(
        (
            m
            for m in [*slack.messages.values(), *slack.deleted]
            if m.channel == channel and m.thread_ts is None and m.bot_id == slack.bot_id
        ),
        key=lambda m: float(m.ts),
    )


@pytest.mark.parametrize("how", ["500", "reset"])
async def test_a_slash_commands_first_post_whose_response_was_lost_is_posted_once(
    slack: FakeSlack, start_bot: StartBot, how: str
) -> None:
    """A slash command's reply starts at the top of the channel (no thread): its first
    ``chat.postMessage`` is applied, its answer lost; the retry finds it in the channel's
    listing (``conversations.history``) and adopts it: one top-level message, the answer."""
    slack.lose_response("chat.postMessage", how=how)  # type: ignore[arg-type]
    async with start_bot() as bot:
        bot.bot.standin.script_reply(ANSWER)
        await slack.wait_for_connections(1)
        await slack.push_slash_command(slack.slash_command("/ask", "answer me once"))
        await slack.wait_for(lambda: any(m.buttons() for m in _top_level(slack, "C0GENERAL")), timeout=30)
        await wait_idle(bot.bot, timeout=30)
        (message,) = _top_level(slack, "C0GENERAL")
        conversation = await bot.bot.store.conversation_id("slack", slack.team_id, "C0GENERAL", message.ts)
        _question, turn = await bot.bot.store.messages(conversation)
    assert turn.status == "complete", (turn.status, turn.error)
    assert message.text == turn.content == ANSWER
    assert len(slack.calls_of("chat.postMessage")) == 1, "adopted, not posted again"
    assert len(slack.calls_of("conversations.history")) == 1
    assert _lookups(slack) == 0


def _thinking(lost: LostPosts, client: AsyncWebClient) -> Awaitable[str]:
    """``lost.post`` of a slash command's first message: top-level, no marker."""
    call = lambda: slack_call(client.chat_postMessage(channel="C0GENERAL", text="_Thinking…_"))  # noqa: E731
    return _lone_post(lost, call, thread_ts=None, text="_Thinking…_", marker=None)


async def _post_unmarked(lost: LostPosts, client: AsyncWebClient) -> str:
    """:func:`_thinking`, retried once after a transient error as the core would: its ts."""
    with pytest.raises(TransientPlatformError):
        await _thinking(lost, client)
    return await _thinking(lost, client)


async def test_an_unmarked_lost_post_never_adopts_another_replys_message(slack: FakeSlack) -> None:
    """Two slash commands in one channel: the first's "Thinking…" lands (this process knows its
    ts); the second's post fails without being applied. Its retry finds the first's message by
    text alone, and must not take it: it posts its own."""
    client = AsyncWebClient(token=slack.bot_token, base_url=slack.api_url)
    other = LostPosts(client, "C0GENERAL")
    landed = await _thinking(other, client)
    slack.fail_with_status("chat.postMessage", 500)  # refused before applying
    ts = await _post_unmarked(LostPosts(client, "C0GENERAL"), client)
    assert ts != landed
    assert [m.ts for m in _top_level(slack, "C0GENERAL")] == [landed, ts]
    assert len(slack.calls_of("conversations.history")) == 1


async def test_an_unmarked_lost_post_matching_two_messages_is_posted_again(slack: FakeSlack) -> None:
    """Another process's (or another lost) "Thinking…" and this one's both match by text: which
    is this reply's cannot be told, so the post is made again (a duplicate, not a message that
    two replies would edit)."""
    client = AsyncWebClient(token=slack.bot_token, base_url=slack.api_url)
    stranger = str((await client.chat_postMessage(channel="C0GENERAL", text="_Thinking…_"))["ts"])
    slack.lose_response("chat.postMessage")
    lost = LostPosts(client, "C0GENERAL")
    ts = await _post_unmarked(lost, client)
    shown = [m.ts for m in _top_level(slack, "C0GENERAL")]
    assert len(shown) == 3 and shown[0] == stranger and shown[-1] == ts
    assert lost.adopted == []


async def test_a_status_line_final_post_that_timed_out_is_posted_once(
    slack: FakeSlack, start_bot: StartBot
) -> None:
    """The status-line final applied, never answered: slack_sdk's timeout ends the call."""
    event, stored = await _ask_timed_out(slack, start_bot, _role("final"), ANSWER, progress="status")
    message = _shown_once(slack, event, stored)
    assert message.buttons()
    assert len(message.history) == 1, "posted once, never edited"
    assert len(slack.calls_of("chat.postMessage")) == 1, "adopted, not posted again"


async def test_a_continuation_that_timed_out_is_posted_once(slack: FakeSlack, start_bot: StartBot) -> None:
    """A long answer's second message applied, never answered; the rest follows once each."""
    event, stored = await _ask_timed_out(slack, start_bot, _nth(2), LONG, progress="status", max_chars=400)
    messages = _mine(slack, event)
    assert len(messages) >= 3
    assert len({m.text for m in messages}) == len(messages), "no part shown twice"
    assert [bool(m.buttons()) for m in messages] == [False] * (len(messages) - 1) + [True]
    assert " ".join(m.text for m in messages).split() == stored.split() == LONG.split()
    assert len(slack.calls_of("chat.postMessage")) == len(messages), "the held one adopted"
    assert _lookups(slack) == 1


@pytest.mark.parametrize("how", ["500", "reset"])
async def test_a_restart_note_whose_response_was_lost_is_posted_once(
    tmp_path: Path, slack: FakeSlack, how: str
) -> None:
    """A turn killed while its thread showed only the status line gets one note at the next
    start (botkit/repair.py, through the reply's post); that note's ``chat.postMessage`` is
    applied, its answer lost: the pass's retry adopts it, one note, the row ``interrupted``."""
    database = f"sqlite+aiosqlite:///{tmp_path / 'shared.db'}"
    root = slack.mention_event("asked just before the crash")
    slack.record_user_message(root)
    thread = root["ts"]
    conversation = await killed_on_status_line(tmp_path, slack, database, root, "Ev9")

    slack.lose_response("chat.postMessage", how=how)  # type: ignore[arg-type]
    (tmp_path / "second").mkdir()
    settings = {"slack": slack.settings()}
    async with TestBot(tmp_path / "second", database_url=database, settings=settings) as bot:
        assert bot.app is not None
        serving = asyncio.create_task(bot.app.serve(bot.app.build_adapters(["slack"])))
        try:
            await slack.wait_for_connections(1, timeout=30)  # the restart pass is over by then
        finally:
            serving.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await serving
        rows = [m for m in await bot.store.messages(conversation) if m.role == "assistant"]
    (note,) = [m for m in [*slack.messages.values(), *slack.deleted] if m.thread_ts == thread]
    assert note.text.startswith("The answer so\n\n⚠️") and "Interrupted: botkit restarted" in note.text
    assert [r.status for r in rows] == ["interrupted"]
    assert len(slack.calls_of("chat.postMessage")) == 1, "adopted, not posted again"
    # The pass lists the turn's messages once (no ``oldest``); the lost post's lookup reads from
    # its first attempt's time on.
    assert len([c for c in slack.calls_of("conversations.replies") if "oldest" in c.args]) == 1
