"""Access rules in the configuration on Discord, through discord.py and the fake Discord: the
legal channel bound by ``#name`` (resolved through the REST channel list at start-up), open to a
role named in the persona file (by name) and one named in the binding (by id); anyone else is
refused ephemerally, told whom to ask, and audited."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
from pathlib import Path

import pytest
from botkit_discord import DiscordAdapter
from discord_harness import discord_settings

from botkit.adapter import AdapterError
from botkit.personas import shipped_personas_dir
from botkit.testing.fake_discord import FakeDiscord
from botkit.testing.testbot import TestBot

CONTACT = "legal-ops@example.com"
QUESTION = {"question": "Can I break my lease?"}


async def _answered(fake: FakeDiscord, interaction_id: int, needle: str) -> None:
    await fake.wait_for(lambda: any(needle in t for t in fake.interaction_messages(interaction_id)), 15)


async def test_role_holders_by_name_and_by_id_are_answered_and_others_refused(tmp_path: Path) -> None:
    async with FakeDiscord() as fake:
        legal_channel = fake.add_channel(fake.guild_id, "legal-questions")
        binding = {"persona": "legal", "allow": {"discord_roles": [fake.role_id("student")]}}
        core = {
            "personas": {"bindings": {"discord:#legal-questions": binding}},
            "access": {"contact": CONTACT},
            "discord": discord_settings(fake),
        }
        async with TestBot(tmp_path, settings=core) as bot:
            assert bot.app is not None
            (adapter,) = bot.app.build_adapters(["discord"])
            assert isinstance(adapter, DiscordAdapter)
            task = asyncio.create_task(bot.app.serve([adapter]))
            try:
                await fake.wait_until_connected()
                await asyncio.wait_for(adapter.ready.wait(), 10)
                by_name = fake.add_user("lawyer", roles=["legal"])  # the persona file's `roles: [legal]`
                by_id = fake.add_user("clerk", roles=["student"])  # the binding's role id
                other = fake.add_user("alice", roles=["medical"])
                for user in (by_name, by_id):
                    bot.standin.script_reply(f"Answer for {user}.")
                    asked = await fake.slash_command(user, "ask", QUESTION, channel_id=legal_channel)
                    await _answered(fake, asked.id, f"Answer for {user}.")
                refused = await fake.slash_command(other, "ask", QUESTION, channel_id=legal_channel)
                await fake.wait_for(lambda: bool(fake.ephemeral_messages(refused.id)), 15)
                rows = []
                async with asyncio.timeout(10):
                    while not rows:  # the audit row is written right after the notice
                        rows = [r for r in await bot.store.audit_entries() if r.action == "refusal"]
                        await asyncio.sleep(0.02)
            finally:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
    (notice,) = fake.ephemeral_messages(refused.id)
    assert "'legal' persona is not available" in notice and f"contact {CONTACT}" in notice
    assert len(fake.public_messages_in(legal_channel)) == 2  # the two answers, nothing for alice
    assert len(bot.standin.requests) == 2  # the refused question never reached the model
    (row,) = rows
    assert (row.platform, row.channel, row.actor) == ("discord", str(legal_channel), str(other))
    assert (row.detail["persona"], row.detail["rule"]) == ("legal", "users/roles")


async def test_a_renamed_channel_stays_bound_and_an_unknown_name_stops_start_up(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with FakeDiscord() as fake:
        legal_channel = fake.add_channel(fake.guild_id, "legal-questions")
        lawyer = fake.add_user("lawyer", roles=["legal"])
        unknown = {
            "personas": {"bindings": {"discord:#legal-qestions": "legal"}},
            "discord": discord_settings(fake),
        }
        async with TestBot(tmp_path / "typo", settings=unknown) as bot:
            assert bot.app is not None
            with pytest.raises(AdapterError, match="no discord channel is named #legal-qestions"):
                await bot.app.serve(bot.app.build_adapters(["discord"]))
        core = {
            "personas": {"bindings": {"discord:#legal-questions": "legal"}},
            "discord": discord_settings(fake),
        }
        async with TestBot(tmp_path / "bound", settings=core) as bot:
            assert bot.app is not None
            (adapter,) = bot.app.build_adapters(["discord"])
            assert isinstance(adapter, DiscordAdapter)
            task = asyncio.create_task(bot.app.serve([adapter]))
            try:
                await asyncio.wait_for(adapter.ready.wait(), 10)
                with caplog.at_level(logging.INFO, logger="botkit.access"):
                    await fake.rename_channel(legal_channel, "legal-qa")
                    async with asyncio.timeout(10):  # the CHANNEL_UPDATE reached the core
                        while not any("is now #legal-qa" in r.getMessage() for r in caplog.records):  # noqa: ASYNC110 - polling the log
                            await asyncio.sleep(0.02)
                bot.standin.script_reply("Still the legal persona.")
                asked = await fake.slash_command(lawyer, "ask", QUESTION, channel_id=legal_channel)
                await _answered(fake, asked.id, "not legal advice; consult a qualified lawyer")
            finally:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
    (answer,) = fake.interaction_messages(asked.id)
    assert answer.startswith("Still the legal persona.")


async def test_a_refused_mention_is_told_by_direct_message_not_in_the_channel(tmp_path: Path) -> None:
    async with FakeDiscord() as fake:
        legal_channel = fake.add_channel(fake.guild_id, "legal-questions")
        core = {
            "personas": {"bindings": {"discord:#legal-questions": "legal"}},
            "access": {"contact": CONTACT},
            "discord": discord_settings(fake),
        }
        async with TestBot(tmp_path, settings=core) as bot:
            assert bot.app is not None
            (adapter,) = bot.app.build_adapters(["discord"])
            assert isinstance(adapter, DiscordAdapter)
            task = asyncio.create_task(bot.app.serve([adapter]))
            try:
                await asyncio.wait_for(adapter.ready.wait(), 10)
                alice = fake.add_user("alice", roles=["medical"])
                dm = fake.dm_channel(alice)
                await fake.user_message(alice, legal_channel, f"{fake.mention} Can I break my lease?")
                await fake.wait_for(lambda: bool(fake.messages_in(dm)), 15)
            finally:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
    (notice,) = [m["content"] for m in fake.messages_in(dm)]
    assert "'legal' persona is not available" in notice and CONTACT in notice
    assert [m for m in fake.messages_in(legal_channel) if m["author"]["id"] == fake.bot_user["id"]] == []
    assert not any("break my lease" in str(r["messages"]) for r in bot.standin.requests)


async def test_a_broken_persona_edit_is_posted_in_the_discord_admin_channel_and_dmed(tmp_path: Path) -> None:
    personas = tmp_path / "personas"
    shutil.copytree(shipped_personas_dir(), personas)
    legal = personas / "legal.md"
    async with FakeDiscord() as fake:
        admins = fake.add_channel(fake.guild_id, "botkit-admins")
        admin = fake.add_user("admin", roles=["admin"])
        core = {
            "personas": {"dir": str(personas), "watch": False},
            "bot": {"admin_channels": ["discord:#botkit-admins"], "admin_dm_users": [f"discord:{admin}"]},
            "discord": discord_settings(fake),
        }
        async with TestBot(tmp_path / "bot", settings=core) as bot:
            assert bot.app is not None
            (adapter,) = bot.app.build_adapters(["discord"])
            assert isinstance(adapter, DiscordAdapter)
            task = asyncio.create_task(bot.app.serve([adapter]))
            try:
                await asyncio.wait_for(adapter.ready.wait(), 10)
                legal.write_text(legal.read_text().replace("temperature: 0.6", "temprature: 0.6"))
                await bot.bot.personas.reload()
                await bot.bot.personas.reload()  # the same error: told once
            finally:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
    (posted,) = [m["content"] for m in fake.messages_in(admins)]
    assert "`legal.md`" in posted and "line 4" in posted and "temprature" in posted
    assert [m["content"] for m in fake.messages_in(fake.dm_channel(admin))] == [posted]
