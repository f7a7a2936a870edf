"""HTTP mode: the Events API on botkit's aiohttp server, with bolt verifying real signatures."""

from __future__ import annotations

import json
import time

from slack_harness import Running, StartBot, wait_answered, wait_idle

from botkit.testing.fake_slack import FakeSlack, events_api_body, post_signed_event

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"


def _url(bot: Running) -> str:
    return f"http://127.0.0.1:{bot.adapter.http_port}/slack/events"


def _http(**extra: object) -> dict[str, object]:
    return {"mode": "http", "signing_secret": SECRET, "http_host": "127.0.0.1", "http_port": 0, **extra}


async def test_signed_event_is_answered_and_forged_or_stale_ones_rejected(
    slack: FakeSlack, start_bot: StartBot
) -> None:
    async with start_bot(**_http()) as bot:
        assert slack.sockets == []  # no Socket Mode connection in HTTP mode
        forged = slack.mention_event("forged question")
        body = events_api_body(forged, team_id=slack.team_id, api_app_id=slack.api_app_id)
        status, _ = await post_signed_event(_url(bot), body, SECRET, signature="v0=" + "0" * 64)
        assert status == 401
        status, _ = await post_signed_event(_url(bot), body, "not-the-secret")
        assert status == 401
        stale = slack.mention_event("stale question")
        stale_body = events_api_body(stale, team_id=slack.team_id, api_app_id=slack.api_app_id)
        status, _ = await post_signed_event(_url(bot), stale_body, SECRET, timestamp=int(time.time()) - 600)
        assert status == 401

        bot.bot.standin.script_reply("a verified answer")
        good = slack.mention_event("real question")
        slack.record_user_message(good)
        good_body = events_api_body(good, team_id=slack.team_id, api_app_id=slack.api_app_id)
        status, _ = await post_signed_event(_url(bot), good_body, SECRET)
        assert status == 200
        await wait_answered(slack, good, until=lambda t: t == "a verified answer")
        # Slack's own retry of the same event (X-Slack-Retry-Num) does not answer twice.
        status, _ = await post_signed_event(_url(bot), good_body, SECRET, retry_num=1)
        assert status == 200
        await wait_idle(bot.bot)
        assert slack.thread_replies(forged["channel"], forged["ts"]) == []
        assert slack.thread_replies(stale["channel"], stale["ts"]) == []
        assert len(slack.thread_replies(good["channel"], good["ts"])) == 1
        assert ["real question" in str(r["messages"]) for r in bot.bot.standin.requests] == [True]


async def test_url_verification_challenge(slack: FakeSlack, start_bot: StartBot) -> None:
    async with start_bot(**_http()) as bot:
        body = {
            "token": "x",
            "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P",
            "type": "url_verification",
        }
        status, text = await post_signed_event(_url(bot), body, SECRET)
        assert status == 200
        assert json.loads(text)["challenge"] == body["challenge"]
