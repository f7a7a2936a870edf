"""A placeholder whose post is held back (a 429) until the answer is written posts the answer
instead, and marks it as the final view (its Slack metadata role), so the restart pass
(botkit.repair) never takes it for a placeholder."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from slack_harness import StartBot, wait_idle

from botkit.testing.fake_slack import FakeSlack


def _role(args: Mapping[str, Any]) -> object:
    metadata = args.get("metadata")
    payload = metadata.get("event_payload") if isinstance(metadata, Mapping) else None
    return payload.get("role") if isinstance(payload, Mapping) else None


async def test_a_held_back_placeholder_posts_the_final_answer_marked_final(
    slack: FakeSlack, start_bot: StartBot
) -> None:
    async with start_bot() as bot:
        bot.bot.standin.script_reply("answered before the placeholder could go")
        slack.fail_with_429("chat.postMessage", count=1, retry_after=1)
        await slack.wait_for_connections(1)
        event = slack.mention_event("hello")
        await slack.push_event(event)
        await slack.wait_for(
            lambda: (
                [m.text for m in slack.thread_replies(event["channel"], event["ts"])]
                == ["answered before the placeholder could go"]
            ),
            timeout=10,
        )
        await wait_idle(bot.bot)
        posts = slack.calls_of("chat.postMessage")
        assert [c.status for c in posts] == [429, 200]
        assert posts[1].args.get("text") == "answered before the placeholder could go"  # no placeholder
        assert _role(posts[1].args) == "final"
