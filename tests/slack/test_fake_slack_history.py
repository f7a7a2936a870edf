"""The fake Slack's ``conversations.history`` as Slack answers it, read through the real slack_sdk:
top-level messages only, newest first, ``oldest`` exclusive unless ``inclusive``, paged by
``limit`` and ``cursor``, message metadata only with ``include_all_metadata``."""

from __future__ import annotations

from slack_sdk.web.async_client import AsyncWebClient

from botkit.testing.fake_slack import FakeSlack


async def test_history_pages_top_level_messages_newest_first() -> None:
    async with FakeSlack() as slack:
        client = AsyncWebClient(token=slack.bot_token, base_url=slack.api_url)
        marker = {"event_type": "botkit_reply", "event_payload": {"turn": 7, "role": "final"}}
        posted = [
            (await client.chat_postMessage(channel="D0DM", text=f"m{i}", metadata=marker))["ts"]
            for i in range(5)
        ]
        await client.chat_postMessage(channel="D0DM", text="in a thread", thread_ts=posted[0])
        seen: list[str] = []
        cursor = None
        pages = 0
        while True:
            page = await client.conversations_history(
                channel="D0DM", oldest=posted[0], limit=2, cursor=cursor, include_all_metadata=True
            )
            pages += 1
            seen += [m["text"] for m in page["messages"]]
            assert all(m["metadata"] == marker for m in page["messages"])
            cursor = page["response_metadata"]["next_cursor"]
            if not page["has_more"]:
                break
        assert seen == ["m4", "m3", "m2", "m1"]  # oldest is exclusive; the thread reply is not listed
        assert pages == 2
        inclusive = await client.conversations_history(channel="D0DM", oldest=posted[0], inclusive=True)
        assert [m["text"] for m in inclusive["messages"]][-1] == "m0"
        assert "metadata" not in inclusive["messages"][0]
