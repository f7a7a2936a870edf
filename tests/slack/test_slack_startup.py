"""Start-up calls ``auth.test`` once, and bolt authorizes every request with that answer.

Left to itself, bolt's ``AsyncApp`` makes the call lazily, on the first event, before the event
is acknowledged: with a slow Web API the first ack after a start missed Slack's 3 seconds.
"""

from __future__ import annotations

from typing import Any, Literal

import pytest
from slack_harness import Running, StartBot, wait_answered

from botkit.testing.fake_slack import FakeSlack, events_api_body, post_signed_event

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
HTTP = {"mode": "http", "signing_secret": SECRET, "http_host": "127.0.0.1", "http_port": 0}
Mode = Literal["socket", "http"]


async def _deliver(
    slack: FakeSlack, bot: Running, mode: Mode, payload: dict[str, Any], *, command: bool
) -> None:
    """Send an event (or a slash command) the way Slack does in ``mode``; returns once it is acked."""
    if mode == "socket":
        await slack.wait_for_connections(1)
        envelope = await (slack.push_slash_command(payload) if command else slack.push_event(payload))
        await slack.wait_for_ack(envelope["envelope_id"])
        return
    body = payload
    if not command:
        slack.record_user_message(payload)
        body = events_api_body(payload, team_id=slack.team_id, api_app_id=slack.api_app_id)
    url = f"http://127.0.0.1:{bot.adapter.http_port}/slack/events"
    status, _ = await post_signed_event(url, body, SECRET, form=command)  # the response is the ack
    assert status == 200


@pytest.mark.parametrize("mode", ["socket", "http"])
async def test_the_first_event_and_command_after_start_wait_for_no_auth_test(
    slack: FakeSlack, start_bot: StartBot, mode: Mode
) -> None:
    async with start_bot(**(HTTP if mode == "http" else {})) as bot:
        at_start = len(slack.calls_of("auth.test"))
        slack.delay("auth.test", 30)  # from now on one would outlast Slack's 3 s and this test's waits
        standin = bot.bot.standin
        standin.script_reply("four")
        standin.script_reply("nine")
        event = slack.mention_event("What is 2+2?")
        await _deliver(slack, bot, mode, event, command=False)
        assert await wait_answered(slack, event, until=lambda text: text == "four") == "four"
        await _deliver(slack, bot, mode, slack.slash_command("/ask", "What is 3*3?"), command=True)
        await slack.wait_for(lambda: any(m.text == "nine" for m in slack.bot_messages("C0GENERAL")))
        after = len(slack.calls_of("auth.test"))
    assert (at_start, after) == (1, 1)  # the start-up check's, and no other
