"""The fake Slack's ``conversations.history`` as Slack answers it, read through the real slack_sdk:
top-level messages only, newest first, ``oldest`` exclusive unless ``inclusive``, paged by
``limit`` and ``cursor``, message metadata only with ``include_all_metadata``; and its
``chat.update`` with Block Kit's ``markdown`` block."""

from __future__ import annotations

from slack_sdk.errors import SlackApiError
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


async def test_chat_update_takes_a_markdown_block_and_refuses_what_slack_refuses() -> None:
    """The Block Kit ``markdown`` block (docs.slack.dev/reference/block-kit/blocks/markdown-block:
    ``text`` required, standard Markdown, at most 12,000 characters) beside an actions block,
    with ``text`` as the fallback; ``markdown_text`` with blocks, a markdown block without text or
    over the limit, and a block type messages do not take are refused, and change nothing."""
    async with FakeSlack() as slack:
        client = AsyncWebClient(token=slack.bot_token, base_url=slack.api_url)
        ts = (await client.chat_postMessage(channel="C0GEN", text="first"))["ts"]
        actions = {
            "type": "actions",
            "elements": [{"type": "button", "text": {"type": "plain_text", "text": "👍"}}],
        }
        markdown = {"type": "markdown", "text": "**bold** & <b>"}
        await client.chat_update(channel="C0GEN", ts=ts, text="**bold** & <b>", blocks=[markdown, actions])
        refused = [
            ({"markdown_text": "**bold**", "blocks": [actions]}, "markdown_text_conflict"),
            ({"text": "x", "blocks": [{"type": "markdown"}, actions]}, "invalid_blocks"),
            ({"text": "x", "blocks": [{"type": "markdown", "text": "a" * 12_001}]}, "invalid_blocks"),
            ({"text": "x", "blocks": [{"type": "markdownish", "text": "a"}]}, "invalid_blocks"),
        ]
        errors = []
        for args, _ in refused:
            try:
                await client.chat_update(channel="C0GEN", ts=ts, **args)
            except SlackApiError as err:
                errors.append(err.response["error"])
        assert errors == [code for _, code in refused]
        (message,) = slack.bot_messages("C0GEN")
        assert message.history == ["first", "**bold** & <b>"] and message.blocks == [markdown, actions]
        assert await client.chat_update(
            channel="C0GEN", ts=ts, text="x", blocks=[{"type": "markdown", "text": "a" * 12_000}]
        )
