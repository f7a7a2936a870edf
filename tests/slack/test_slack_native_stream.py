"""``streaming = "native"``: chat.startStream / appendStream / stopStream, with edits as fallback."""

from __future__ import annotations

import time

import pytest
from botkit_slack import SlackReply, SlackSettings
from botkit_slack.adapter import HISTORY_MARGIN
from botkit_slack.markers import metadata
from botkit_slack.mrkdwn import to_mrkdwn
from botkit_slack.reply import fit_text
from slack_harness import Running, StartBot, wait_idle
from slack_sdk.web.async_client import AsyncWebClient

from botkit.events import ConversationKey
from botkit.leftovers import LEFTOVER_NOTE, UNANSWERED_NOTE, Leftover
from botkit.markers import ReplyMarker, ShownMessage
from botkit.repair import repair_leftover
from botkit.testing.fake_slack import FakeSlack, SlackMessage

ANSWER = "Here is **the answer** & <!channel> more:\n\n" + " ".join(f"word{i}" for i in range(60))
SHOWN = ANSWER.replace("<!", "<\u200b!")  # mention syntax defused, the Markdown itself kept


def _streamed(slack: FakeSlack, event: dict[str, str]) -> list[SlackMessage]:
    return slack.thread_replies(event["channel"], event["ts"])


async def _ask(slack: FakeSlack) -> dict[str, str]:
    event = slack.mention_event("explain things please")
    await slack.wait_for_connections(1)
    await slack.push_event(event)
    return event


async def _stream_answer(slack: FakeSlack, bot: Running) -> dict[str, str]:
    """Ask, and wait until ANSWER was streamed whole and the stream stopped."""
    bot.bot.standin.tokens_per_second = 400
    bot.bot.standin.script_reply(ANSWER)
    event = await _ask(slack)
    await slack.wait_for(lambda: [(m.text, m.streaming) for m in _streamed(slack, event)] == [(SHOWN, False)])
    await wait_idle(bot.bot)
    return event


async def test_native_stream_shows_the_answer(slack: FakeSlack, start_bot: StartBot) -> None:
    async with start_bot(streaming="native") as bot:
        event = await _stream_answer(slack, bot)
        (message,) = _streamed(slack, event)
        assert "".join(message.appended) == SHOWN
        assert len(message.appended) >= 3  # started, then appended in pieces
        (start,) = slack.calls_of("chat.startStream")
        assert start.args["recipient_user_id"] == "U0ALICE"
        assert start.args["recipient_team_id"] == slack.team_id
        assert start.args["thread_ts"] == event["ts"]
        assert len(slack.calls_of("chat.stopStream")) == 1
        # The placeholder (an ordinary message for the status lines) made way for the stream.
        assert [m.history[0] for m in slack.deleted] == ["_Thinking…_"]
        assert all(c.args["ts"] != message.ts for c in slack.calls_of("chat.update"))


async def test_a_finished_native_reply_carries_its_marker_from_stop_stream(
    slack: FakeSlack, start_bot: StartBot
) -> None:
    """``chat.startStream`` takes no metadata, so the marker goes on ``chat.stopStream``: the
    stopped stream is marked as the final view of its turn, as every other reply is, and the
    restart pass finds it in the thread (``conversations.replies`` with metadata)."""
    async with start_bot(streaming="native") as bot:
        event = await _stream_answer(slack, bot)
        (message,) = _streamed(slack, event)
        conversation = await bot.bot.store.conversation_id(
            "slack", slack.team_id, event["channel"], event["ts"]
        )
        _, row = await bot.bot.store.messages(conversation)
        assert "metadata" not in slack.calls_of("chat.startStream")[0].args
        assert message.metadata == metadata(ReplyMarker(row.id, "final"))
        assert slack.calls_of("chat.stopStream")[0].args["metadata"] == message.metadata


async def test_rate_limited_append_is_waited_out(slack: FakeSlack, start_bot: StartBot) -> None:
    async with start_bot(streaming="native") as bot:
        bot.bot.standin.tokens_per_second = 300
        bot.bot.standin.script_reply(ANSWER)
        slack.fail_with_429("chat.appendStream", count=1, retry_after=1)
        event = await _ask(slack)
        await slack.wait_for(lambda: [m.text for m in _streamed(slack, event)] == [SHOWN], timeout=20)
        await wait_idle(bot.bot)
        (limited,) = slack.rate_limited("chat.appendStream")
        later = [c for c in slack.calls_of("chat.appendStream", ok_only=True) if c.at > limited.at]
        assert later, "no append after the 429"
        assert later[0].at - limited.at >= 0.9
        (message,) = _streamed(slack, event)
        assert "".join(message.appended) == SHOWN  # nothing lost, nothing sent twice
        assert not message.streaming


@pytest.mark.parametrize(
    ("method", "status"),
    [("chat.stopStream", 429), ("chat.startStream", 503)],
    ids=["429-on-stop", "503-on-start"],
)
async def test_a_transient_failure_of_a_stream_call_is_retried_by_the_core(
    slack: FakeSlack, start_bot: StartBot, method: str, status: int
) -> None:
    if status == 429:
        slack.fail_with_429(method, retry_after=0.2)
    else:
        slack.fail_with_status(method, status, error="service_unavailable")
    async with start_bot(streaming="native") as bot:
        event = await _stream_answer(slack, bot)
        # Retried once, and not a reason to give up native streaming.
        assert [c.status for c in slack.calls_of(method)] == [status, 200]
        (message,) = _streamed(slack, event)
        assert "".join(message.appended) == SHOWN
        assert all(c.args["ts"] != message.ts for c in slack.calls_of("chat.update"))


async def test_refused_start_falls_back_to_edits(slack: FakeSlack, start_bot: StartBot) -> None:
    slack.fail_with_error("chat.startStream", "channel_type_not_supported")
    async with start_bot(streaming="native") as bot:
        bot.bot.standin.tokens_per_second = 400
        bot.bot.standin.script_reply(ANSWER)
        event = await _ask(slack)
        await slack.wait_for(lambda: [m.text for m in _streamed(slack, event)] == [to_mrkdwn(ANSWER)])
        await wait_idle(bot.bot)
        assert len(slack.calls_of("chat.startStream")) == 1  # tried once, then chat.update
        assert slack.calls_of("chat.appendStream") == []
        assert slack.deleted == []


async def test_a_stream_stopped_by_slack_continues_with_edits(slack: FakeSlack, start_bot: StartBot) -> None:
    slack.fail_with_error("chat.appendStream", "message_not_in_streaming_state")
    async with start_bot(streaming="native") as bot:
        bot.bot.standin.tokens_per_second = 400
        bot.bot.standin.script_reply(ANSWER)
        event = await _ask(slack)
        await slack.wait_for(lambda: [m.text for m in _streamed(slack, event)] == [to_mrkdwn(ANSWER)])
        await wait_idle(bot.bot)
        (message,) = _streamed(slack, event)
        assert not message.streaming
        assert slack.calls_of("chat.update", ok_only=True)[-1].args["ts"] == message.ts


async def test_a_stream_the_asker_stopped_before_botkits_stop_is_marked_and_no_later_turn_takes_it(
    slack: FakeSlack, start_bot: StartBot
) -> None:
    """The asker stops the stream just before botkit's final ``chat.stopStream``, which Slack then
    refuses (``stopped_by_user``): the stream showed the whole answer but no marker and no
    buttons. ``chat.update`` (the stream no longer streams) re-sends the answer with the turn's
    final marker and its 👍/👎. So a later turn in that thread, killed while streaming before any
    message of its own (its placeholder's post cut), does not take that answer for its stream
    and overwrite it with its note: its asker gets "ask again" in a new reply."""
    slack.stop_by_user_before("chat.stopStream")
    async with start_bot(streaming="native") as bot:
        bot.bot.standin.tokens_per_second = 400
        bot.bot.standin.script_reply(ANSWER)
        event = await _ask(slack)
        await slack.wait_for(lambda: [m.text for m in _streamed(slack, event)] == [SHOWN])
        await wait_idle(bot.bot)
        (message,) = _streamed(slack, event)
        conversation = await bot.bot.store.conversation_id(
            "slack", slack.team_id, event["channel"], event["ts"]
        )
        _, row = await bot.bot.store.messages(conversation)
        assert [c.error for c in slack.calls_of("chat.stopStream")] == ["stopped_by_user"]
        assert (row.status, message.streaming) == ("complete", False)
        assert message.metadata == metadata(ReplyMarker(row.id, "final"))
        assert message.text == fit_text(ANSWER) and message.buttons()
        shown = list(message.history)

        key = ConversationKey("slack", slack.team_id, event["channel"], event["ts"])
        later = Leftover(key, "", "", user="U0ALICE", turn=row.id + 1, asked_at=time.time(), started=True)
        await repair_leftover(bot.adapter, bot.bot.store, None, later, bot.bot.bot.respond)
        assert message.history == shown  # the finished answer, left alone
        (note,) = [m for m in _streamed(slack, event) if m.ts != message.ts]
        assert note.history == [UNANSWERED_NOTE]


async def test_rewritten_text_stops_the_stream_and_edits(slack: FakeSlack) -> None:
    settings = SlackSettings.model_validate(slack.settings(streaming="native"))
    client = AsyncWebClient(token=slack.bot_token, base_url=slack.api_url)
    root = slack.mention_event("hi")
    reply = SlackReply(
        client, settings, team_id="T0FAKE", channel="C0GENERAL", thread_ts=root["ts"], user="U0ALICE"
    )
    placeholder = await reply.post_placeholder("_Thinking…_")
    await reply.edit(placeholder, "_Thinking… 2s_")  # a status line: the placeholder shows it
    assert slack.calls_of("chat.startStream") == []
    await reply.edit(placeholder, "Hello")
    await reply.edit(placeholder, "Hello world")
    stream_ts = reply.streamed_ts
    assert stream_ts is not None
    assert [c.args["markdown_text"] for c in slack.calls_of("chat.appendStream")] == [" world"]
    await reply.edit(placeholder, "Goodbye")  # not an extension: stop, then chat.update
    message = slack.messages[("C0GENERAL", stream_ts)]
    assert not message.streaming
    assert message.text == "Goodbye"
    await reply.edit(placeholder, "Goodbye!")
    await reply.finish()
    assert message.text == "Goodbye!"
    assert len(slack.calls_of("chat.stopStream")) == 1


async def test_post_notice_is_ephemeral_and_reports_refusal(slack: FakeSlack) -> None:
    settings = SlackSettings.model_validate(slack.settings())
    client = AsyncWebClient(token=slack.bot_token, base_url=slack.api_url)
    reply = SlackReply(client, settings, team_id="T0FAKE", channel="C0X", thread_ts="1.000001", user="U0BOB")
    assert await reply.post_notice("only for **you**")
    (notice,) = slack.ephemerals
    assert (notice.user, notice.channel, notice.thread_ts, notice.text) == (
        "U0BOB",
        "C0X",
        "1.000001",
        "only for *you*",
    )
    slack.not_in_channel.add(("U0BOB", "C0X"))
    assert not await reply.post_notice("again")
    anonymous = SlackReply(client, settings, team_id="T0FAKE", channel="C0X", thread_ts=None)
    assert not await anonymous.post_notice("who?")


def _streamed_in(slack: FakeSlack, key: ConversationKey) -> list[SlackMessage]:
    return slack.thread_replies(key.channel, key.thread)


def _bot_message(
    slack: FakeSlack, key: ConversationKey, ts: str, text: str, *, marker: ReplyMarker | None = None
) -> SlackMessage:
    """A message of the bot in ``key``'s thread, as an earlier process left it."""
    message = SlackMessage(
        key.channel, ts, text, user=slack.bot_user_id, bot_id=slack.bot_id, thread_ts=key.thread,
        history=[text], metadata=metadata(marker),
    )  # fmt: skip
    slack.messages[(key.channel, ts)] = message
    return message


def _earlier_thread(slack: FakeSlack) -> tuple[ConversationKey, list[SlackMessage]]:
    """A thread whose bot replies so far are a finished native stream (marked by
    ``chat.stopStream``) and two streams a restart stopped and edited (unmarked): one older
    than :data:`HISTORY_MARGIN` before now, one recent. Returns its key and those replies."""
    root = slack.mention_event("first question")
    slack.record_user_message(root)
    key = ConversationKey("slack", slack.team_id, str(root["channel"]), str(root["ts"]))
    stale = f"{int(float(key.thread)) - int(HISTORY_MARGIN) - 60}.000001"
    earlier = [
        _bot_message(slack, key, slack.next_ts(), "the first answer", marker=ReplyMarker(900, "final")),
        _bot_message(slack, key, stale, f"long ago\n\n{LEFTOVER_NOTE}"),
        _bot_message(slack, key, slack.next_ts(), f"half an answer\n\n{LEFTOVER_NOTE}"),
    ]
    return key, earlier


async def test_an_unrecorded_unstopped_stream_is_the_last_unmarked_message_of_the_turns_time(
    slack: FakeSlack, start_bot: StartBot
) -> None:
    """With no message of the turn marked (its placeholder deleted, its stream never stopped),
    the adapter lists the bot's last unmarked, file-less message in the thread from the turn's
    acceptance less :data:`HISTORY_MARGIN` as the turn's stream, never an earlier reply: not
    the marked one, not the streams repaired before it; nothing older than the margin."""
    async with start_bot(streaming="native") as bot:
        key, earlier = _earlier_thread(slack)
        since = time.time()
        repaired = earlier[-1]  # the last unmarked one so far (the core leaves it: it says so)
        assert await bot.adapter.reply_messages(key, 901, since=since) == [
            ShownMessage(repaired.ts, repaired.text)
        ]
        stream = _bot_message(slack, key, slack.next_ts(), "word0 word1")
        stream.streaming = True
        assert await bot.adapter.reply_messages(key, 901, since=since) == [
            ShownMessage(stream.ts, "word0 word1")
        ]
        # Only the stale one: nothing from the turn's time on.
        old = slack.mention_event("an old thread")
        slack.record_user_message(old)
        old_key = ConversationKey("slack", slack.team_id, str(old["channel"]), str(old["ts"]))
        _bot_message(slack, old_key, f"{int(since) - int(HISTORY_MARGIN) - 60}.000001", "unmarked")
        assert await bot.adapter.reply_messages(old_key, 901, since=since) == []


async def test_only_a_turn_that_was_streaming_takes_an_unmarked_stream(
    slack: FakeSlack, start_bot: StartBot
) -> None:
    """The restart pass: an accepted turn that never streamed and has no message of its own
    (its placeholder's post was cut) leaves the unstopped stream in the thread alone (it is
    the turn's before it) and says "ask again" in a new reply; the turn that was streaming
    stops it and shows its partial answer and the note there; a later streaming turn with no
    message of its own leaves that repaired stream alone. Earlier replies stay as they were."""
    async with start_bot(streaming="native") as bot:
        key, earlier = _earlier_thread(slack)
        before = {m.ts: list(m.history) for m in earlier}
        stream = _bot_message(slack, key, slack.next_ts(), "word0 word1")
        stream.streaming = True
        since, respond = time.time(), bot.bot.bot.respond
        waiting = Leftover(key, "", "", user="U0ALICE", turn=902, asked_at=since, inbox=True, interrupted={})
        await repair_leftover(bot.adapter, bot.bot.store, None, waiting, respond)
        assert stream.streaming and stream.history == ["word0 word1"]
        (note,) = [m for m in _streamed_in(slack, key) if m.ts not in before and m.ts != stream.ts]
        assert note.history == [UNANSWERED_NOTE]

        streaming = Leftover(key, "", "word0", user="U0ALICE", turn=901, asked_at=since, started=True)
        await repair_leftover(bot.adapter, bot.bot.store, None, streaming, respond)
        repaired = f"word0\n\n{LEFTOVER_NOTE}"
        assert not stream.streaming and stream.history[-1] == repaired
        assert stream.metadata == metadata(ReplyMarker(901, "final"))  # no later turn takes it
        edits = len(stream.history)
        later = Leftover(key, "", "other", user="U0ALICE", turn=903, asked_at=since, started=True)
        await repair_leftover(bot.adapter, bot.bot.store, None, later, respond)
        assert len(stream.history) == edits and stream.text == repaired
        assert {m.ts: m.history for m in _streamed_in(slack, key) if m.ts in before} == before
