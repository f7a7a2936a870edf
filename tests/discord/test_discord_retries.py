"""One retry layer on Discord: the adapter reports 429s and server errors, the core retries them
(and pauses the channel's budget on a 429), refusals are not retried. Calls are counted at the
fake Discord, driving the real discord.py."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from discord_harness import DiscordRig, discord_rig

# No streaming edits: after the placeholder, the final edit is a reply's only edit.
FINAL_ONLY = {"stream": {"edit_interval": 600, "first_text_at_once": False}}  # the final edit alone


def _content(body: Any) -> str:
    return str((body or {}).get("content") or "")


def _bot_texts(rig: DiscordRig, channel_id: int) -> list[str]:
    me = rig.fake.bot_user["id"]
    return [m["content"] for m in rig.fake.messages_in(channel_id) if m["author"]["id"] == me]


async def test_429_on_a_placeholder_pauses_only_the_post_route_and_is_retried_once(tmp_path: Path) -> None:
    streaming = " ".join(f"word{i}" for i in range(200))
    core = {"stream": {"edit_interval": 0.05}}
    async with discord_rig(tmp_path, core=core, mention_mode="inline", edits_per_second=1000.0) as rig:
        fake, standin = rig.fake, rig.bot.standin
        channel = fake.channel_id
        standin.tokens_per_second = 50  # the first reply streams for seconds, editing all along
        standin.script_reply(streaming)
        standin.script_reply("the second answer")
        user = fake.add_user("alice")
        await fake.user_message(user, channel, f"{fake.mention} a long answer please")
        edits = rf"^/channels/{channel}/messages/\d+$"
        await fake.wait_for(lambda: len(fake.calls_to("PATCH", edits)) >= 3, 15)
        second = await fake.user_message(user, channel, f"{fake.mention} a short one", dispatch=False)

        def replies_to_second(body: Any) -> bool:
            reference = (body or {}).get("message_reference") or {}
            return str(reference.get("message_id")) == second["id"]

        # No Via header: discord.py raises the 429 instead of sleeping on it itself.
        fake.rate_limit(
            "POST", rf"^/channels/{channel}/messages$", retry_after=1.0, via=False, match=replies_to_second
        )
        await fake.redeliver(second)
        await fake.wait_for(lambda: "the second answer" in _bot_texts(rig, channel), 15)
        await fake.wait_for(lambda: streaming in _bot_texts(rig, channel), 20)

        posts = [
            c for c in fake.calls_to("POST", rf"^/channels/{channel}/messages$") if replies_to_second(c.body)
        ]
        assert [c.status for c in posts] == [429, 200]  # retried once, by the core alone
        limited, landed = fake.calls.index(posts[0]), fake.calls.index(posts[1])
        between = [c for c in fake.calls[limited + 1 : landed] if re.search(edits, c.path)]
        # Discord limits message create and edit in buckets of their own: the 429 paused the
        # channel's post budget only, so the streaming reply kept editing while the placeholder
        # waited (a route-wide pause would have let at most one edit through).
        assert len(between) >= 2
        assert all(c.status == 200 for c in between)
        assert any(re.search(edits, c.path) for c in fake.calls[landed:])


async def test_a_server_error_on_the_final_edit_is_retried_until_it_lands(tmp_path: Path) -> None:
    answer = "The final words survive a server error."
    async with discord_rig(tmp_path, core=FINAL_ONLY) as rig:
        fake = rig.fake
        rig.bot.standin.script_reply(answer)
        # 503: discord.py raises DiscordServerError at once (it retries 500/502/504 itself).
        fake.fail("PATCH", r"^/channels/\d+/messages/\d+$", status=503, match=lambda b: answer in _content(b))
        user = fake.add_user("alice")
        asked = await fake.user_message(user, fake.channel_id, f"{fake.mention} hello")
        thread = int(asked["id"])
        await fake.wait_for(lambda: any(answer in t for t in _bot_texts(rig, thread)), 15)
        patches = fake.calls_to("PATCH", rf"^/channels/{thread}/messages/\d+$")
        assert [c.status for c in patches] == [503, 200]
        assert all(answer in _content(c.body) for c in patches)
        assert len(fake.calls_to("POST", rf"^/channels/{thread}/messages$")) == 1


async def test_a_refused_final_edit_is_not_retried(tmp_path: Path) -> None:
    async with discord_rig(tmp_path, core=FINAL_ONLY) as rig:
        fake = rig.fake
        rig.bot.standin.script_reply("Never shown.")
        fake.fail("PATCH", r"/messages/@original$", status=403, match=lambda b: "Never shown." in _content(b))
        interaction = await fake.slash_command(fake.add_user("student"), "ask", {"question": "hi"})
        pattern = f"/webhooks/.*/{interaction.token}/messages/@original$"
        await fake.wait_for(lambda: 403 in [c.status for c in fake.calls_to("PATCH", pattern)], 15)
        await rig.bot.bot.drain(5)
        assert [c.status for c in fake.calls_to("PATCH", pattern)] == [200, 403]  # tried once
        assert fake.interaction_messages(interaction.id) == ["_Thinking…_"]


async def test_429_on_an_ephemeral_notice_is_retried_without_repeating_steps(rig: DiscordRig) -> None:
    fake = rig.fake
    fake.rate_limit("POST", r"^/webhooks/\d+/[^/]+$", retry_after=0.2, via=False)
    refused = await fake.slash_command(fake.add_user("student"), "persona", subcommand="list")
    await fake.wait_for(lambda: any("admins only" in t for t in fake.ephemeral_messages(refused.id)), 15)
    await rig.bot.bot.drain(5)
    followups = fake.calls_to("POST", f"^/webhooks/\\d+/{refused.token}$")
    assert [c.status for c in followups] == [429, 200]
    assert len(fake.calls_to("DELETE", f"{refused.token}/messages/@original$")) == 1  # not repeated
    assert fake.interaction_messages(refused.id) == fake.ephemeral_messages(refused.id)
    assert fake.public_messages_in(fake.channel_id) == []
