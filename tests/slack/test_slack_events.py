"""Which Slack events the adapter answers, and where (pure functions, no network)."""

from __future__ import annotations

from typing import Any

import pytest
from botkit_slack.events import DM_THREAD, BotIdentity, from_mention, from_message, strip_mention
from botkit_slack.settings import SlackSettings

ME = BotIdentity(user_id="U0BOT", bot_id="B0BOT")
BODY = {"team_id": "T1", "event_id": "Ev1"}


def settings(**extra: Any) -> SlackSettings:
    return SlackSettings.model_validate({"bot_token": "xoxb-1", "app_token": "xapp-1", **extra})


def event(text: str = "hi", **extra: Any) -> dict[str, Any]:
    return {"type": "message", "channel": "C1", "user": "U0ALICE", "text": text, "ts": "2.0", **extra}


def test_strip_mention() -> None:
    assert strip_mention("<@U0BOT> what is  2+2?", "U0BOT") == "what is 2+2?"
    assert strip_mention("hey <@U0BOT|botkit>, and <@U0OTHER>", "U0BOT") == "hey , and <@U0OTHER>"


def test_mention_top_level_and_in_thread() -> None:
    top = from_mention(BODY, event("<@U0BOT> hello", type="app_mention"), ME)
    assert top is not None
    assert (top.message.thread, top.reply_thread_ts, top.message.text) == ("2.0", "2.0", "hello")
    assert (top.message.workspace, top.message.delivery_id, top.message.platform) == ("T1", "Ev1", "slack")
    inner = from_mention(BODY, event("<@U0BOT> more", type="app_mention", thread_ts="1.0"), ME)
    assert inner is not None
    assert (inner.message.thread, inner.reply_thread_ts) == ("1.0", "1.0")


@pytest.mark.parametrize(
    "extra",
    [
        {"bot_id": "B0OTHER"},
        {"user": "U0BOT"},
        {"subtype": "bot_message"},
        {"subtype": "message_changed"},
        {"subtype": "message_deleted"},
        {"subtype": "channel_join"},
        {"edited": {"user": "U0ALICE", "ts": "3.0"}},
    ],
)
def test_ignored(extra: dict[str, Any]) -> None:
    assert from_mention(BODY, event("<@U0BOT> x", type="app_mention", **extra), ME) is None
    dm = event("x", channel="D1", channel_type="im", **extra)
    assert from_message(BODY, dm, ME, settings()) is None


def test_direct_messages() -> None:
    top = from_message(BODY, event("<@U0BOT> hi", channel="D1", channel_type="im"), ME, settings())
    assert top is not None
    assert (top.message.thread, top.reply_thread_ts, top.message.is_direct) == (DM_THREAD, None, True)
    assert top.message.text == "hi"
    threaded = from_message(BODY, event(channel="D1", channel_type="im", thread_ts="1.0"), ME, settings())
    assert threaded is not None
    assert (threaded.message.thread, threaded.reply_thread_ts) == ("1.0", "1.0")
    file_share = from_message(
        BODY, event(channel="D1", channel_type="im", subtype="file_share"), ME, settings()
    )
    assert file_share is not None


def test_channel_messages() -> None:
    open_settings = settings(channels_without_mention=["C1"])
    # top level, no mention: never
    assert from_message(BODY, event(channel_type="channel"), ME, open_settings) is None
    # a thread reply that mentions the bot: left to its app_mention twin
    twin = event("<@U0BOT> more", channel_type="channel", thread_ts="1.0")
    assert from_message(BODY, twin, ME, open_settings) is None
    # a thread reply without a mention: only where no mention is required, and after a thread check
    follow = event("more", channel_type="channel", thread_ts="1.0")
    assert from_message(BODY, follow, ME, settings()) is None
    inbound = from_message(BODY, follow, ME, open_settings)
    assert inbound is not None
    assert inbound.needs_thread_check
    assert inbound.reply_thread_ts == "1.0"
    anywhere = from_message(BODY, follow, ME, settings(require_mention=False))
    assert anywhere is not None
