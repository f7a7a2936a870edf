"""Discord's real limits on (``FakeDiscord(limits=DiscordLimits())``: 5 per 5 s per route and
channel, 50/s in all): many replies at once, through discord.py, with no 429 and every final text
the stored answer. The adapter reads each bucket's numbers from the response headers and keeps
one budget per route (``discord:{channel}:post|edit|delete``) and a global hold."""

from __future__ import annotations

import asyncio
import gc
import json
import logging
from pathlib import Path
from typing import Any

import pytest
from botkit_discord.ratelimits import exempt_from_global, key_of, redacted, webhook_key
from botkit_discord.reply import CONTINUED_NOTE
from discord_harness import DiscordRig, discord_rig
from drills import wait_idle

from botkit.testing.discord_limits import DiscordLimits
from botkit.testing.fake_discord import FakeDiscord

STREAMING = {"stream": {"edit_interval": 0.1}}


async def _stored_answer(rig: DiscordRig, channel_id: int, thread: str) -> str:
    fake = rig.fake
    conversation = await rig.bot.store.conversation_id("discord", str(fake.guild_id), str(channel_id), thread)
    turn = (await rig.bot.store.messages(conversation))[-1]
    assert turn.role == "assistant" and turn.status == "complete", turn
    return str(turn.content)


def _bot_messages(fake: FakeDiscord, channel_id: int) -> list[dict[str, Any]]:
    return [m for m in fake.messages_in(channel_id) if m["author"]["id"] == fake.bot_user["id"]]


async def test_many_replies_in_one_channel_stay_under_its_buckets(tmp_path: Path) -> None:
    replies = 12
    async with (
        FakeDiscord(limits=DiscordLimits()) as fake,
        discord_rig(tmp_path, fake=fake, core=STREAMING, mention_mode="inline") as rig,
    ):
        rig.bot.standin.tokens_per_second = 40  # each answer streams for a few seconds
        user = fake.add_user("alice")
        asked = [
            await fake.user_message(user, fake.channel_id, f"{fake.mention} question {i} " + "word " * 20)
            for i in range(replies)
        ]
        await fake.wait_for(lambda: len(_bot_messages(fake, fake.channel_id)) == replies, 60)
        await wait_idle(rig.bot, 90)
        assert [c for c in fake.calls if c.status == 429] == []
        assert fake.limiter is not None and fake.limiter.rejected == []
        by_reference = {
            str(m["message_reference"]["message_id"]): m for m in _bot_messages(fake, fake.channel_id)
        }
        for message in asked:
            shown = by_reference[message["id"]]
            assert shown["content"] == await _stored_answer(rig, fake.channel_id, message["id"])
            assert fake.versions_of(int(shown["id"]))[0] == "_Thinking…_"
        channel = str(fake.channel_id)
        posts = fake.limiter.accepted["POST /channels/{channel_id}/messages"][channel]
        edits = fake.limiter.accepted["PATCH /channels/{channel_id}/messages/{message_id}"][channel]
        assert len(posts) == replies  # one placeholder each, each answer fits one message
        assert len(edits) >= replies  # at least each final text


async def test_replies_in_many_threads_stay_under_the_global_limit(tmp_path: Path) -> None:
    """Twenty threads have twenty edit buckets of their own: together they could send far more
    than Discord's 50 a second, which discord.py honours only after a global 429."""
    replies = 20
    async with (
        FakeDiscord(limits=DiscordLimits(global_per_second=50)) as fake,
        discord_rig(
            tmp_path, fake=fake, core={"stream": {"edit_interval": 0.02}}, edits_per_second=1000.0
        ) as rig,
    ):
        rig.bot.standin.tokens_per_second = 200
        user = fake.add_user("alice")
        asked = [
            await fake.user_message(user, fake.channel_id, f"{fake.mention} q{i} " + "word " * 60)
            for i in range(replies)
        ]
        await fake.wait_for(lambda: all(_bot_messages(fake, int(m["id"])) for m in asked), 60)
        await wait_idle(rig.bot, 120)
        assert fake.limiter is not None
        assert [c for c in fake.calls if c.status == 429] == [], fake.limiter.rejected
        for message in asked:
            (shown,) = _bot_messages(fake, int(message["id"]))  # its thread has the message's id
            assert shown["content"] == await _stored_answer(rig, fake.channel_id, message["id"])


async def test_a_placeholder_held_back_until_the_answer_is_done_posts_the_answer_instead(
    tmp_path: Path,
) -> None:
    """When the channel's posts are backed up (here: a 429 on the placeholder) longer than the
    model takes, the first message shows the answer: one post, no placeholder to edit."""
    async with (
        FakeDiscord(limits=DiscordLimits()) as fake,
        discord_rig(tmp_path, fake=fake, core=STREAMING, mention_mode="inline") as rig,
    ):
        rig.bot.standin.tokens_per_second = 0  # as fast as it goes: done long before the retry
        fake.rate_limit("POST", rf"^/channels/{fake.channel_id}/messages$", retry_after=1.5, via=False)
        asked = await fake.user_message(fake.add_user("alice"), fake.channel_id, f"{fake.mention} hello")
        await fake.wait_for(lambda: bool(_bot_messages(fake, fake.channel_id)), 30)
        await wait_idle(rig.bot, 30)
        (shown,) = _bot_messages(fake, fake.channel_id)
        answer = await _stored_answer(rig, fake.channel_id, asked["id"])
        assert fake.versions_of(int(shown["id"])) == [answer, answer]  # posted, then given its buttons
        posts = fake.calls_to("POST", rf"^/channels/{fake.channel_id}/messages$")
        assert [c.status for c in posts] == [429, 200]
        edits = fake.calls_to("PATCH", rf"^/channels/{fake.channel_id}/messages/\d+$")
        assert len(edits) == 1 and edits[0].body.get("components")  # only the 👍/👎 buttons


async def test_slash_commands_in_one_channel_stream_on_their_own_interaction_buckets(tmp_path: Path) -> None:
    """Discord buckets an interaction's webhook routes by application id + token: ten slash
    commands in one channel have ten edit buckets. Each reply draws on its own (fed from the
    headers), so every one streams partial text; one budget for the channel (1 edit a second
    shared by all ten) would give each about one edit in the answer's few seconds."""
    commands = 10
    async with (
        FakeDiscord(limits=DiscordLimits()) as fake,
        discord_rig(tmp_path, fake=fake, core=STREAMING, edits_per_second=1.0) as rig,  # the default
    ):
        rig.bot.standin.tokens_per_second = 40  # each answer streams for a few seconds
        user = fake.add_user("alice")
        asked = [
            await fake.slash_command(user, "ask", {"question": f"question {i} " + "word " * 20})
            for i in range(commands)
        ]
        await fake.wait_for(lambda: all(i.original_id for i in asked), 30)
        assert rig.bot.app is not None
        registry = rig.bot.app.bot.turns.budgets

        def interactions_with_a_budget() -> set[str]:
            return {k.rsplit(":", 1)[0] for k in registry.scopes() if k.startswith("discord:webhook:")}

        # While they stream: one budget per interaction (its own digest), none keyed by a token.
        await fake.wait_for(lambda: len(interactions_with_a_budget()) == commands, 30)
        streaming = [k for k in registry.scopes() if k.startswith("discord:webhook:")]
        assert not any(i.token in k for i in asked for k in streaming + rig.adapter.route_limits.scopes())
        await wait_idle(rig.bot, 90)
        assert [c for c in fake.calls if c.status == 429] == []
        assert fake.limiter is not None and fake.limiter.rejected == []
        partials: list[int] = []
        for interaction in asked:
            answer = await _stored_answer(rig, fake.channel_id, str(interaction.id))
            assert fake.interaction_messages(interaction.id) == [answer]
            assert interaction.original_id is not None
            versions = fake.versions_of(interaction.original_id)
            assert versions[-1] == answer
            partials.append(sum(1 for v in versions if v != answer and v != versions[0]))
        assert min(partials) >= 3, partials  # every reply showed its answer growing
        # the channel's own buckets were not touched: the replies went through their tokens
        assert fake.calls_to("PATCH", rf"^/channels/{fake.channel_id}/messages/\d+$") == []
        # gone with their replies (once the replies' objects are collected)
        gc.collect()
        assert [k for k in registry.scopes() if k.startswith("discord:webhook:")] == []
        assert [k for k in rig.adapter.route_limits.scopes() if k.startswith("discord:webhook:")] == []


def test_an_interactions_budget_keys_and_logs_name_a_digest_of_its_token() -> None:
    """The token grants its webhook to whoever reads it: keys (and so metrics) and the 429 log
    line carry a digest of it. Its routes are exempt from the global hold, as on Discord."""
    token = "aW50ZXJhY3Rpb246SECRET-_x"
    original = f"/api/v10/webhooks/123/{token}/messages/@original"
    assert key_of("PATCH", original) == webhook_key(123, token, "edit")
    assert key_of("PATCH", f"/api/v10/webhooks/123/{token}/messages/456") == webhook_key(123, token, "edit")
    assert key_of("POST", f"/api/v10/webhooks/123/{token}") == webhook_key(123, token, "post")
    assert key_of("DELETE", original) == webhook_key(123, token, "delete")
    assert webhook_key(123, token, "edit") != webhook_key(123, token + "y", "edit")
    assert token not in webhook_key(123, token, "edit")
    assert token not in redacted(original) and redacted(original).startswith("/api/v10/webhooks/123/<token ")
    assert exempt_from_global(original) and exempt_from_global(f"/api/v10/interactions/9/{token}/callback")
    assert not exempt_from_global("/api/v10/channels/1/messages")
    assert not exempt_from_global("/api/v10/webhooks/123")  # a bot-token call on a webhook


async def test_a_429_on_an_interactions_webhook_is_logged_without_its_token(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The adapter logs every 429 it reads (scope, method, path); a webhook path carries the
    interaction token, which would let anyone reading the log post as the bot for 15 minutes."""
    async with discord_rig(tmp_path, core=STREAMING) as rig:
        fake = rig.fake
        fake.rate_limit("PATCH", r"/messages/@original$", retry_after=0.2, via=True)
        with caplog.at_level(logging.INFO, logger="botkit_discord.ratelimits"):
            interaction = await fake.slash_command(fake.add_user("alice"), "ask", {"question": "hello"})
            await fake.wait_for(lambda: bool(interaction.original_id), 30)
            await wait_idle(rig.bot, 30)
        logged = [r.getMessage() for r in caplog.records if r.name == "botkit_discord.ratelimits"]
        assert any("answered 429" in line and "<token " in line for line in logged), logged
        assert not any(interaction.token in line for line in logged)
        answer = await _stored_answer(rig, fake.channel_id, str(interaction.id))
        assert fake.interaction_messages(interaction.id) == [answer]


async def test_a_slash_reply_that_outlives_its_token_streams_on_the_channels_budgets(tmp_path: Path) -> None:
    """A slash command's reply whose interaction token ages out while it streams goes on as a
    channel message (``discord.interaction_reply_seconds``): its edits from then on are the
    channel's ``PATCH /channels/{channel}/messages/{id}``, and they draw on the channel's edit
    budget, the one every reply in that channel shares (not on its interaction's, whose
    bucket it no longer uses). Its first channel message (the "edit" that moved it) is a
    ``POST /channels/{channel}/messages``, Discord's post bucket of the channel: it draws on
    the channel's post budget, as every first message does, and the edit budget grants
    exactly the channel's PATCHes of the moved message."""
    async with (
        FakeDiscord(limits=DiscordLimits()) as fake,
        discord_rig(tmp_path, fake=fake, core=STREAMING, interaction_reply_seconds=0.5) as rig,
    ):
        rig.bot.standin.time_to_first_token = 1.0  # the answer starts after the token's margin
        rig.bot.standin.tokens_per_second = 20  # and streams for a few seconds in the channel
        interaction = await fake.slash_command(fake.add_user("alice"), "ask", {"question": "word " * 40})
        await fake.wait_for(lambda: bool(interaction.original_id), 30)
        await wait_idle(rig.bot, 60)
        assert rig.bot.app is not None
        registry = rig.bot.app.bot.turns.budgets
        answer = await _stored_answer(rig, fake.channel_id, str(interaction.id))
        (moved,) = [m for m in fake.messages_in(fake.channel_id) if "webhook_id" not in m]
        assert moved["content"] == answer
        edits = fake.calls_to("PATCH", rf"^/channels/{fake.channel_id}/messages/{moved['id']}$")
        assert len(edits) >= 3  # it streamed there: partial edits, the final with its buttons
        posts = fake.calls_to("POST", rf"^/channels/{fake.channel_id}/messages$")
        assert len(posts) == 1  # the moved message, posted once
        channel_edits, channel_posts = (f"discord:{fake.channel_id}:{kind}" for kind in ("edit", "post"))
        assert {channel_edits, channel_posts} <= set(registry.scopes())
        assert registry.get(channel_posts, None).granted == len(posts)
        assert registry.get(channel_edits, None).granted == len(edits)
        assert [c for c in fake.calls if c.status == 429] == []


_WEBHOOK_EDITS = "PATCH /webhooks/{application_id}/{token}/messages/{message_id}"


def _windows(arrivals: list[float], window: float) -> list[list[float]]:
    """Accepted calls grouped as the fake's fixed windows group them: a window opens with the
    first call after the last one ended (``botkit.testing.discord_limits``)."""
    windows: list[list[float]] = []
    for at in sorted(arrivals):
        if not windows or at >= windows[-1][0] + window:
            windows.append([])
        windows[-1].append(at)
    return windows


async def test_a_slash_replys_partial_edits_never_take_the_slot_its_final_needs(tmp_path: Path) -> None:
    """The edit budget keeps one call of the interaction's bucket back for the final text. Its
    own refill (``edits_per_second``) must not count above what the headers say is left: in
    2026-12-04's slash bench every window before the final held five partial edits, the
    window's whole count, so the final PATCH waited in discord.py's bucket for the reset (up
    to a whole window). Counted on the fake: in no window do the calls before the final take
    all five slots."""
    per_window, window = 5, 2.0
    async with (
        FakeDiscord(limits=DiscordLimits(webhook_per_route=per_window, webhook_window=window)) as fake,
        # the bucket's own rate is the window's (5 per 2 s), as the default 1/s is Discord's 5 per 5 s
        discord_rig(tmp_path, fake=fake, core=STREAMING, edits_per_second=per_window / window) as rig,
    ):
        rig.bot.standin.tokens_per_second = 12  # the answer streams over about three windows
        interaction = await fake.slash_command(fake.add_user("alice"), "ask", {"question": "word " * 30})
        await fake.wait_for(lambda: bool(interaction.original_id), 30)
        await wait_idle(rig.bot, 60)
        answer = await _stored_answer(rig, fake.channel_id, str(interaction.id))
        assert fake.interaction_messages(interaction.id) == [answer]
        assert [c for c in fake.calls if c.status == 429] == []
        edits = [
            c
            for c in fake.calls_to("PATCH", rf"^/webhooks/\d+/{interaction.token}/messages/@original$")
            if c.status == 200
        ]
        final = next(i for i, c in enumerate(edits) if (c.body or {}).get("content") == answer)
        assert final == len(edits) - 1  # nothing after the final text
        assert len(edits) >= 2 * per_window  # it streamed through more than one window
        assert fake.limiter is not None  # its own times: the windows as the fake counted them
        (accepted,) = [
            times
            for major, times in fake.limiter.accepted[_WEBHOOK_EDITS].items()
            if major.endswith(f"/{interaction.token}")
        ]
        assert len(accepted) == len(edits)
        before_final = _windows(accepted[:-1], window)
        assert max(len(w) for w in before_final) <= per_window - 1, [len(w) for w in before_final]


async def test_a_429_on_the_moved_slash_reply_pauses_the_channels_post_budget_not_its_edits(
    tmp_path: Path,
) -> None:
    """The first channel message of a slash reply whose token aged out is a ``POST
    /channels/{channel}/messages`` (drawn on the post budget: ``LiveReply.edit_kind``). A 429
    Discord answers it with is the post bucket's: it pauses the channel's post budget, and the
    channel's edit budget, which every reply there shares, is left running (its PATCHes were
    never refused). The moved message still lands, posted twice (the 429, then the retry)."""
    async with (
        FakeDiscord(limits=DiscordLimits()) as fake,
        discord_rig(tmp_path, fake=fake, core=STREAMING, interaction_reply_seconds=0.5) as rig,
    ):
        fake.rate_limit("POST", rf"^/channels/{fake.channel_id}/messages$", retry_after=5.0, via=False)
        rig.bot.standin.time_to_first_token = 1.0  # the answer starts after the token's margin
        rig.bot.standin.tokens_per_second = 20
        interaction = await fake.slash_command(fake.add_user("alice"), "ask", {"question": "word " * 40})
        assert rig.bot.app is not None
        registry = rig.bot.app.bot.turns.budgets
        channel_edits, channel_posts = (f"discord:{fake.channel_id}:{kind}" for kind in ("edit", "post"))

        def post_paused() -> bool:
            return channel_posts in registry.scopes() and registry.get(channel_posts, None).paused_for() > 0

        async with asyncio.timeout(30):  # no fake event marks a pause: the client makes it
            while not post_paused():  # noqa: ASYNC110 - polling the budget
                await asyncio.sleep(0.01)
        refused = [c for c in fake.calls if c.status == 429]
        assert [(c.method, c.path) for c in refused] == [("POST", f"/channels/{fake.channel_id}/messages")]
        assert channel_edits not in registry.scopes() or registry.get(channel_edits, None).paused_for() == 0
        await wait_idle(rig.bot, 60)
        answer = await _stored_answer(rig, fake.channel_id, str(interaction.id))
        (moved,) = [m for m in fake.messages_in(fake.channel_id) if "webhook_id" not in m]
        assert moved["content"] == answer
        assert len(fake.calls_to("POST", rf"^/channels/{fake.channel_id}/messages$")) == 2


def _spooled_intents(directory: Path) -> list[dict[str, Any]]:
    """The final views' intents on disk in the bot's spool (``<database>.pending``) now."""
    records = [json.loads(p.read_text(encoding="utf-8")) for p in directory.rglob("*.pending/*.json")]
    return [r for r in records if "shown" in r]


async def test_a_slash_final_moved_after_its_intent_was_spooled_is_intended_anew(tmp_path: Path) -> None:
    """The final view's intent says whether its first message is anew (botkit.repair looks for
    it by its text only then). A slash reply's final edit of its webhook message was intended
    while the token was fresh (an edit in place), but Discord answered that PATCH with a 429
    whose wait outlasted the token: the retry is the reply's first channel message (a POST,
    :meth:`DiscordInteractionReply.moves`), whose id the row does not hold. The intent on disk
    when that POST goes out says anew, so a kill with its response lost is still found."""
    async with discord_rig(tmp_path, core=STREAMING, interaction_reply_seconds=3) as rig:
        fake = rig.fake
        final = fake.rate_limit  # the final edit is the one with the 👍/👎 components
        final(
            "PATCH",
            r"/messages/@original$",
            retry_after=4.0,
            via=False,
            match=lambda b: bool(b.get("components")),
        )
        moved = fake.hold("POST", rf"^/channels/{fake.channel_id}/messages$", apply=True)
        interaction = await fake.slash_command(fake.add_user("alice"), "math", {"question": "What is 2*21?"})
        async with asyncio.timeout(30):
            await moved.reached.wait()
        intents = _spooled_intents(tmp_path)
        moved.release()
        assert [i.get("anew") for i in intents] == [True], intents
        await wait_idle(rig.bot, 60)
        assert fake.interaction_messages(interaction.id) == [CONTINUED_NOTE]
        (posted,) = [m for m in fake.messages_in(fake.channel_id) if "webhook_id" not in m]
        assert "The final answer is 42." in posted["content"]


async def test_a_slash_final_retried_past_its_token_draws_on_the_channels_post_budget(tmp_path: Path) -> None:
    """A slash reply's final edit of its webhook message, answered 429 with a wait that outlasts
    the interaction token: its retry is the reply's first channel message (``POST
    /channels/{channel}/messages``), which must draw on the channel's post budget, as
    ``LiveReply.scope_epoch`` moves a reply that outlives its token while it streams (not on
    the interaction's edit budget the first attempt drew on). That POST answered 429 in turn
    pauses the channel's post budget, and the retry after it draws there again: the channel's
    post budget grants exactly the two POSTs the fake saw."""
    async with discord_rig(tmp_path, core=STREAMING, interaction_reply_seconds=3) as rig:
        fake = rig.fake
        fake.rate_limit(
            "PATCH",
            r"/messages/@original$",
            retry_after=4.0,
            via=False,
            match=lambda b: bool(b.get("components")),  # the final edit, with its 👍/👎
        )
        fake.rate_limit("POST", rf"^/channels/{fake.channel_id}/messages$", retry_after=1.0, via=False)
        assert rig.bot.app is not None
        registry = rig.bot.app.bot.turns.budgets
        channel_posts = f"discord:{fake.channel_id}:post"

        def post_paused() -> bool:
            return channel_posts in registry.scopes() and registry.get(channel_posts, None).paused_for() > 0

        interaction = await fake.slash_command(fake.add_user("alice"), "math", {"question": "What is 2*21?"})
        async with asyncio.timeout(30):  # no fake event marks a pause: the client makes it
            while not post_paused():  # noqa: ASYNC110 - polling the budget
                await asyncio.sleep(0.01)
        await wait_idle(rig.bot, 60)
        assert fake.interaction_messages(interaction.id) == [CONTINUED_NOTE]
        (posted,) = [m for m in fake.messages_in(fake.channel_id) if "webhook_id" not in m]
        assert "The final answer is 42." in posted["content"]
        posts = fake.calls_to("POST", rf"^/channels/{fake.channel_id}/messages$")
        assert [c.status for c in posts] == [429, 200]
        assert registry.get(channel_posts, None).granted == len(posts)
