"""Slash commands against a fake Discord, driving the real discord.py and the real botkit core."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from pathlib import Path
from typing import Any

import pytest
from botkit_discord import DiscordAdapter
from botkit_discord.reply import CONTINUED_NOTE
from discord_harness import DiscordRig, discord_rig, discord_settings

from botkit.adapter import AdapterError
from botkit.plugins import CommandContext, Plugin
from botkit.testing.fake_discord import FakeDiscord, FakeInteraction
from botkit.testing.testbot import TestBot

FENCE = re.compile(r"^\s*```")


def original_patches(fake: FakeDiscord, token: str) -> list[str]:
    return [
        c.body["content"]
        for c in fake.calls_to("PATCH", f"/webhooks/.*/{token}/messages/@original")
        if c.status == 200
    ]


async def ephemeral(
    fake: FakeDiscord, interaction: FakeInteraction, needle: str, timeout: float = 15
) -> list[str]:
    """Wait for an ephemeral message of ``interaction`` containing ``needle``; its ephemeral texts."""
    await fake.wait_for(
        lambda: any(needle in text for text in fake.ephemeral_messages(interaction.id)), timeout
    )
    return fake.ephemeral_messages(interaction.id)


async def answered(fake: FakeDiscord, interaction_id: int, needle: str, timeout: float = 15) -> list[str]:
    await fake.wait_for(
        lambda: any(needle in text for text in fake.interaction_messages(interaction_id)), timeout
    )
    return fake.interaction_messages(interaction_id)


async def test_commands_are_synced_to_the_guild_from_the_plugins(rig: DiscordRig) -> None:
    synced = {c["name"]: c for c in rig.fake.commands[str(rig.fake.guild_id)]}
    assert {"math", "ask", "persona"} <= set(synced)
    assert [o["name"] for o in synced["math"]["options"]] == ["question"]
    persona_option = next(o for o in synced["ask"]["options"] if o["name"] == "persona")
    assert persona_option["autocomplete"] is True and persona_option["required"] is False
    subcommands = {o["name"]: o for o in synced["persona"]["options"]}
    assert set(subcommands) == {"list", "show", "history", "diff", "reload", "check"} and all(
        o["type"] == 1 for o in subcommands.values()
    )
    assert rig.adapter.synced == [str(rig.fake.guild_id)]
    # minimal intents: guilds, guild messages, DMs and message content; zlib-stream as discord.py asks
    assert rig.fake.identifies[-1]["intents"] == (1 << 0) | (1 << 9) | (1 << 12) | (1 << 15)
    assert rig.fake.gateway_compression == ["zlib-stream"]


async def test_math_is_deferred_then_streamed_into_the_original_response(rig: DiscordRig) -> None:
    fake = rig.fake
    rig.bot.standin.tokens_per_second = 400.0  # a visible stream, still fast
    student = fake.add_user("student", roles=["student"])
    interaction = await fake.slash_command(student, "math", {"question": "What is 17*23?"})
    messages = await answered(fake, interaction.id, "Final answer")

    assert interaction.callbacks[0]["type"] == 5  # deferred ("thinking") at once
    first_callback = fake.calls.index(fake.calls_to("POST", f"/interactions/{interaction.id}/")[0])
    first_patch = fake.calls.index(fake.calls_to("PATCH", "@original")[0])
    assert first_callback < first_patch
    edits = original_patches(fake, interaction.token)
    assert len(edits) >= 3, edits  # placeholder, at least one partial answer, the final text
    assert len(messages) == 1
    assert "The final answer is 391." in messages[0]
    assert messages[0].rstrip().endswith("**Final answer:** `391`")
    request = rig.bot.standin.requests[-1]
    assert "Please reason step by step" in request["messages"][-1]["content"]


async def test_ask_autocomplete_offers_only_the_personas_the_member_may_use(rig: DiscordRig) -> None:
    fake = rig.fake
    alice = fake.add_user("alice")
    lawyer = fake.add_user("lawyer", roles=["legal"])

    names = [
        c["value"]
        for c in await fake.autocomplete(alice, "ask", "persona", {"question": "hi", "persona": ""})
    ]
    assert "general" in names and "math" in names
    assert "legal" not in names and "medical" not in names

    names = [
        c["value"]
        for c in await fake.autocomplete(lawyer, "ask", "persona", {"question": "hi", "persona": ""})
    ]
    assert "legal" in names and "medical" not in names
    typed = await fake.autocomplete(lawyer, "ask", "persona", {"question": "hi", "persona": "leg"})
    assert [c["value"] for c in typed] == ["legal"]
    assert all(len(c["name"]) <= 100 for c in typed)


async def test_member_without_the_role_is_refused_the_legal_persona(rig: DiscordRig) -> None:
    fake = rig.fake
    alice = fake.add_user("alice")
    lawyer = fake.add_user("lawyer", roles=["legal"])

    refused = await fake.slash_command(
        alice, "ask", {"question": "Can I break my lease?", "persona": "legal"}
    )
    notices = await ephemeral(fake, refused, "not available to you")
    assert len(notices) == 1 and "'legal' persona" in notices[0]
    assert fake.interaction_messages(refused.id) == notices  # the public "thinking…" is gone
    assert fake.public_messages_in(fake.channel_id) == []
    assert not any("Can I break my lease" in str(r["messages"]) for r in rig.bot.standin.requests)

    rig.bot.standin.script_reply("It depends on your lease and your jurisdiction.")
    allowed = await fake.slash_command(
        lawyer, "ask", {"question": "Can I break my lease?", "persona": "legal"}
    )
    messages = await answered(fake, allowed.id, "It depends on your lease")
    assert fake.ephemeral_messages(allowed.id) == [] and len(messages) == 1  # answers are public
    assert "Can I break my lease?" in rig.bot.standin.requests[-1]["messages"][-1]["content"]


async def test_a_5000_character_answer_is_split_with_nothing_lost(rig: DiscordRig) -> None:
    fake = rig.fake
    lines = [f"Step {i}: the {i}th part of a long explanation, kept whole." for i in range(1, 41)]
    code = [f"    total += values[{i}]  # accumulate item {i}" for i in range(60)]
    answer = "\n".join(
        [
            *lines[:20],
            "```python",
            "def total(values):",
            "    total = 0",
            *code,
            "    return total",
            "```",
            *lines[20:],
        ]
    )
    answer += "\n" + "More words. " * max(0, (5000 - len(answer)) // 12) + "\nThe end."
    assert len(answer) >= 5000
    rig.bot.standin.script_reply(answer)
    user = fake.add_user("reader")
    interaction = await fake.slash_command(user, "ask", {"question": "Explain at length"})
    await fake.wait_for(
        lambda: (
            fake.interaction_messages(interaction.id)[-1:] != []
            and fake.interaction_messages(interaction.id)[-1].endswith("The end.")
        ),
        15,
    )

    messages = fake.interaction_messages(interaction.id)
    assert len(messages) >= 3  # the original response and follow-ups
    assert interaction.followup_ids
    for text in messages:
        assert len(text) <= 2000
        fences = [line for line in text.splitlines() if FENCE.match(line)]
        assert len(fences) % 2 == 0, text  # every code block opened in a message is closed in it
    assert sum("```python" in text for text in messages) >= 2  # the block was cut, closed and reopened
    seen = "\n".join(line for text in messages for line in text.splitlines() if not FENCE.match(line))
    wanted = [line for line in answer.splitlines() if not FENCE.match(line)]
    position = 0
    for line in wanted:  # every line of the answer, in order
        found = seen.find(line.strip(), position)
        assert found >= 0, f"lost: {line!r}"
        position = found


@pytest.mark.parametrize("discord_py_retries", [True, False], ids=["via-retry", "surfaced-429"])
async def test_a_429_on_an_edit_still_lands_the_final_text(rig: DiscordRig, discord_py_retries: bool) -> None:
    fake = rig.fake
    # Let the placeholder edit through, then answer the next edit of the original with a 429.
    # With a Via header discord.py sleeps and retries itself; without, it raises HTTPException(429),
    # which the adapter maps to the core's RateLimited and the streamer waits out.
    fake.rate_limit("PATCH", r"/messages/@original$", retry_after=0.3, after=1, via=discord_py_retries)
    user = fake.add_user("student")
    interaction = await fake.slash_command(user, "math", {"question": "What is 6*7?"})
    messages = await answered(fake, interaction.id, "**Final answer:** `42`")

    statuses = [c.status for c in fake.calls_to("PATCH", "@original")]
    assert 429 in statuses
    assert statuses[-1] == 200
    assert "The final answer is 42." in messages[0]


async def test_persona_admin_commands_are_a_group_answered_ephemerally_and_audited(rig: DiscordRig) -> None:
    fake = rig.fake
    synced = {c["name"]: c for c in fake.commands[str(fake.guild_id)]}
    assert {o["name"] for o in synced["persona"]["options"]} >= {
        "list",
        "show",
        "history",
        "diff",
        "reload",
        "check",
    }
    admin = fake.add_user("admin", roles=["admin"])
    student = fake.add_user("student")
    listed = await fake.slash_command(admin, "persona", subcommand="list")
    messages = await ephemeral(fake, listed, "**Personas**")
    assert "`math`" in messages[0]
    shown = await fake.slash_command(admin, "persona", {"name": "math"}, subcommand="show")
    assert "Please reason step by step" in (await ephemeral(fake, shown, "**math**"))[0]
    history = await fake.slash_command(admin, "persona", {"name": "math"}, subcommand="history")
    math = rig.bot.bot.personas.get("math")
    assert math is not None
    assert math.content_hash in (await ephemeral(fake, history, "version(s)"))[0]
    refused = await fake.slash_command(student, "persona", subcommand="list")
    assert "admins only" in (await ephemeral(fake, refused, "admins only"))[0]
    assert fake.interaction_messages(refused.id) == fake.ephemeral_messages(refused.id)
    assert refused.original_deleted
    public = [m["content"] for m in fake.public_messages_in(fake.channel_id)]
    assert not any("admins only" in text for text in public)
    assert not any("**Personas**" in text or "step by step" in text for text in public)  # admin output too
    rows = [r for r in await rig.bot.store.audit_entries() if r.platform == "discord"]
    assert [(r.action, r.actor, r.detail.get("command")) for r in rows] == [
        ("admin_command", str(admin), "persona list"),
        ("admin_command", str(admin), "persona show"),
        ("admin_command", str(admin), "persona history"),
        ("refusal", str(student), "persona list"),
    ]
    assert rows[-1].detail["rule"] == "admin_only"
    assert {r.channel for r in rows} == {str(fake.channel_id)}


async def test_botkit_status_shows_the_backends_to_an_admin_alone(rig: DiscordRig) -> None:
    fake = rig.fake
    synced = {c["name"]: c for c in fake.commands[str(fake.guild_id)]}
    assert [o["name"] for o in synced["botkit"]["options"]] == ["status"]
    admin = fake.add_user("admin", roles=["admin"])
    shown = await fake.slash_command(admin, "botkit", subcommand="status")
    notices = await ephemeral(fake, shown, "**Model backends**")
    assert notices[0].startswith("**Model backends**: ready")
    assert "in flight" in notices[0]
    assert fake.public_messages_in(fake.channel_id) == []
    refused = await fake.slash_command(fake.add_user("student"), "botkit", subcommand="status")
    assert "admins only" in (await ephemeral(fake, refused, "admins only"))[0]


async def test_a_reply_outliving_the_interaction_token_continues_in_the_channel(tmp_path: Path) -> None:
    async with discord_rig(tmp_path, interaction_reply_seconds=0.5) as rig:
        fake = rig.fake
        rig.bot.standin.time_to_first_token = 1.0  # the answer starts after the token's margin
        user = fake.add_user("patient")
        interaction = await fake.slash_command(user, "math", {"question": "What is 2*21?"})
        await fake.wait_for(
            lambda: any(
                "`42`" in m["content"] for m in fake.messages_in(fake.channel_id) if "webhook_id" not in m
            ),
            15,
        )
        assert fake.interaction_messages(interaction.id) == [CONTINUED_NOTE]
        posted = [m for m in fake.messages_in(fake.channel_id) if "webhook_id" not in m]
        assert len(posted) == 1 and "The final answer is 42." in posted[0]["content"]


async def test_a_bad_token_fails_check_clearly_without_showing_it(tmp_path: Path) -> None:
    async with FakeDiscord() as fake:
        secret = "definitely-not-the-token-" + "x" * 30
        settings = {"token": secret, "api_url": fake.api_url, "gateway_url": fake.gateway_url}
        async with TestBot(tmp_path, settings={"discord": settings}) as bot:
            assert bot.app is not None
            adapter = bot.app.build_adapters(["discord"])[0]
            assert isinstance(adapter, DiscordAdapter)
            with pytest.raises(AdapterError, match="rejected the bot token") as caught:
                await adapter.check()
            assert secret not in str(caught.value)
            assert "401" in str(caught.value)
            assert not fake.identifies  # no half-start: nothing connected to the gateway


async def test_a_mismatched_application_id_fails_check(tmp_path: Path) -> None:
    async with FakeDiscord() as fake:
        settings = {
            "token": fake.token,
            "application_id": fake.application_id + 1,
            "api_url": fake.api_url,
            "gateway_url": fake.gateway_url,
        }
        async with TestBot(tmp_path, settings={"discord": settings}) as bot:
            assert bot.app is not None
            adapter = bot.app.build_adapters(["discord"])[0]
            with pytest.raises(AdapterError, match="application_id"):
                await adapter.check()


async def test_a_guild_without_the_commands_scope_fails_check_before_anything_starts(tmp_path: Path) -> None:
    async with FakeDiscord() as fake:
        missing = fake.add_guild("no-commands-scope", commands_scope=False)
        settings = {
            "token": fake.token,
            "api_url": fake.api_url,
            "gateway_url": fake.gateway_url,
            "guild_ids": [fake.guild_id, missing],
        }
        async with TestBot(tmp_path, settings={"discord": settings}) as bot:
            assert bot.app is not None
            adapter = bot.app.build_adapters(["discord"])[0]
            assert isinstance(adapter, DiscordAdapter)
            with pytest.raises(AdapterError) as caught:
                await adapter.check()
            text = str(caught.value)
            assert f"guild {missing}" in text and "50001" in text
            assert "applications.commands" in text and "Re-invite" in text
            assert f"client_id={fake.application_id}" in text  # the invite URL to use
            assert fake.token not in text
            assert not fake.identifies  # no half-start: nothing connected to the gateway
            assert adapter.synced == []


async def test_check_registers_the_commands_once(rig: DiscordRig) -> None:
    """check() synced the commands; starting the client did not sync them a second time."""
    calls = rig.fake.calls
    syncs = [i for i, c in enumerate(calls) if c.method == "PUT" and c.path.endswith("/commands")]
    logins = [i for i, c in enumerate(calls) if c.path == "/users/@me"]
    assert len(syncs) == 1 and calls[syncs[0]].status == 200
    assert len(logins) == 2  # check()'s client, then run()'s
    assert logins[0] < syncs[0] < logins[1]  # synced in check(), before run() logged in


async def test_a_command_while_stopping_is_told_so_privately(rig: DiscordRig) -> None:
    fake = rig.fake
    rig.adapter._accepting = False  # what run() sets once it is cancelled (shutdown)
    asked = await fake.slash_command(fake.add_user("student"), "math", {"question": "What is 1+1?"})
    assert "restarting" in (await ephemeral(fake, asked, "restarting"))[0]
    assert fake.public_messages_in(fake.channel_id) == []
    assert not rig.bot.standin.requests


async def test_a_reply_in_flight_at_shutdown_lands_before_the_connection_closes(tmp_path: Path) -> None:
    async with discord_rig(tmp_path) as rig:
        fake = rig.fake
        standin = rig.bot.standin
        standin.tokens_per_second = 60.0  # still streaming when the stop comes
        interaction = await fake.slash_command(
            fake.add_user("student"), "math", {"question": "What is 17*23?"}
        )
        await standin.wait_for(lambda: standin.running == 1, 10)
        rig.task.cancel()  # SIGTERM: BotApp.serve is cancelled; the core drains, then the adapter stops
        with contextlib.suppress(asyncio.CancelledError):
            await rig.task
        assert rig.adapter.client is not None and rig.adapter.client.is_closed()
        messages = fake.interaction_messages(interaction.id)
    assert standin.disconnects == 0  # the answer was generated to the end
    assert len(messages) == 1 and messages[0].rstrip().endswith("**Final answer:** `391`")


async def test_discord_shutdown_grace_is_still_accepted_with_a_deprecation_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with (
        FakeDiscord() as fake,
        TestBot(tmp_path, settings={"discord": discord_settings(fake, shutdown_grace=5.0)}) as bot,
    ):
        assert bot.app is not None
        with caplog.at_level(logging.WARNING, logger="botkit_discord"):
            adapter = bot.app.build_adapters(["discord"])[0]
    assert isinstance(adapter, DiscordAdapter)
    warnings = [r.getMessage() for r in caplog.records if r.name == "botkit_discord"]
    assert len(warnings) == 1
    assert "discord.shutdown_grace" in warnings[0] and "deprecated" in warnings[0]
    assert "[bot] shutdown_grace" in warnings[0]


async def test_a_command_without_options_still_receives_the_text_typed_after_it(tmp_path: Path) -> None:
    seen: list[tuple[str, dict[str, str]]] = []
    plugin: Plugin[Any] = Plugin("echo")

    @plugin.command("echo", "Say it back")
    async def echo(ctx: CommandContext[Any]) -> None:
        seen.append((ctx.message.text, ctx.args))
        await ctx.respond(f"echo: {ctx.message.text or '(nothing)'}")

    async with discord_rig(tmp_path, plugins=[plugin]) as rig:
        fake = rig.fake
        synced = {c["name"]: c for c in fake.commands[str(fake.guild_id)]}
        [option] = synced["echo"]["options"]
        assert option["name"] == "text" and option["required"] is False and option["type"] == 3
        user = fake.add_user("ada")
        typed = await fake.slash_command(user, "echo", {"text": "hello there"})
        assert (await answered(fake, typed.id, "echo:")) == ["echo: hello there"]
        bare = await fake.slash_command(user, "echo")
        assert (await answered(fake, bare.id, "echo:")) == ["echo: (nothing)"]
    assert seen == [("hello there", {}), ("", {})]  # the text, and no option it never declared
