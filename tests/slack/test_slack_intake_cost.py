"""What bolt builds per Slack event for botkit: nothing botkit's listeners never use.

Counted through real mentions on the fake Slack (bolt's own classes observed, none replaced):
bolt's assistant-thread helpers (``set_status``, ``say_stream``, built by its
``AttachingConversationKwargs`` middleware for every event with a channel) are not built, and
the ``authorize`` answer hands bolt the granted scopes already split (the header's string is
split once at start-up, not per event). The answers are what they always were.
"""

from __future__ import annotations

from typing import Any

import pytest
from slack_bolt.authorization import authorize_result
from slack_bolt.middleware.attaching_conversation_kwargs import (
    async_attaching_conversation_kwargs as kwargs_mw,
)
from slack_harness import STANDIN_DONE, StartBot, wait_answered, wait_idle

from botkit.testing.fake_slack import ALL_SCOPES, FakeSlack

MENTIONS = 4


async def test_mentions_build_no_assistant_helpers_and_split_no_scopes(
    slack: FakeSlack, start_bot: StartBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    helpers: list[str] = []
    split_per_event: list[str] = []
    scopes_seen: list[Any] = []

    class CountedSetStatus(kwargs_mw.AsyncSetStatus):  # type: ignore[misc]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            helpers.append("set_status")
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(kwargs_mw, "AsyncSetStatus", CountedSetStatus)
    original = authorize_result.AuthorizeResult.__init__

    def observed(self: Any, **kwargs: Any) -> None:
        if isinstance(kwargs.get("bot_scopes"), str):
            split_per_event.append(kwargs["bot_scopes"])  # bolt splits this string every time
        original(self, **kwargs)
        scopes_seen.append(self.bot_scopes)

    monkeypatch.setattr(authorize_result.AuthorizeResult, "__init__", observed)
    async with start_bot() as bot:
        await slack.wait_for_connections(1)
        events = [slack.mention_event(f"question {i}?", user=f"U0ASKER{i}") for i in range(MENTIONS)]
        for event in events:
            await slack.push_event(event)
        for event in events:
            assert STANDIN_DONE(await wait_answered(slack, event, until=STANDIN_DONE))
        await wait_idle(bot.bot)
    assert helpers == []  # main: one per mention
    assert split_per_event == []  # main: one split per mention
    assert len(scopes_seen) >= MENTIONS
    assert all(scopes == sorted(ALL_SCOPES) for scopes in scopes_seen)  # what bolt's split gave
    assert len({id(scopes) for scopes in scopes_seen}) == len(scopes_seen)  # no list shared
