"""The audit trail: refusals, admin commands and persona loads/reloads land in ``audit``, and
``botkit audit`` prints them (the Slack and Discord paths: tests/slack/test_slack_commands.py and
tests/discord/test_discord_commands.py)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from botkit.cli import main
from botkit.plugins import NextStep, Plugin, PluginContext, Refusal, Request, TurnResult
from botkit.store import AuditRecord, ConversationStore
from botkit.store.database import create_engine
from botkit.testing import RecordingReply, TestBot

PIRATE = "---\nname: pirate\ndescription: {description}\n---\n{{{{ question }}}} Answer like a pirate.\n"
BROKEN = "---\nname: pirate\ndescription: Broken\ntemprature: 0.6\n---\n{{ question }}\n"


def _persona_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "personas"
    folder.mkdir()
    (folder / "general.md").write_text("---\nname: general\ndescription: General\n---\n{{ question }}\n")
    (folder / "pirate.md").write_text(PIRATE.format(description="Arr v1"))
    return folder


def _persona_rows(rows: list[AuditRecord]) -> list[tuple[str, str | None]]:
    return [(r.action, r.detail.get("persona")) for r in rows if r.platform == "botkit"]


async def test_refusals_name_who_where_which_persona_and_rule(tmp_path: Path) -> None:
    async with TestBot(tmp_path) as bot:
        await bot.ask("Can I sublet?", command="ask", args={"question": "Can I sublet?", "persona": "legal"})
        await bot.ask("x" * 9000, user="user-2")
        await bot.ask("", command="nope", user="user-3")
        rows = [r for r in await bot.store.audit_entries() if r.action == "refusal"]
    assert [(r.actor, r.detail["rule"], r.detail["persona"]) for r in rows] == [
        ("user-1", "users/roles", "legal"),
        ("user-2", "message_too_long", None),
        ("user-3", "unknown_command", None),
    ]
    assert {(r.platform, r.workspace, r.channel) for r in rows} == {("test", "workspace-1", "channel-1")}


async def test_a_middleware_refusal_is_audited_as_such(tmp_path: Path) -> None:
    closed: Plugin[Any] = Plugin("closed")

    @closed.middleware
    async def refuse(request: Request, next_step: NextStep, ctx: PluginContext[Any]) -> TurnResult:
        raise Refusal("⚠️ This bot is closed today.")

    async with TestBot(tmp_path, plugins=[closed]) as bot:
        reply = await bot.ask("What is 2+2?", reply=RecordingReply(private_notices=True))
        (row,) = [r for r in await bot.store.audit_entries() if r.action == "refusal"]
    assert reply.notices == ["⚠️ This bot is closed today."]
    assert row.detail["rule"] == "middleware" and row.detail["persona"] is None
    assert row.detail["notice"] == "⚠️ This bot is closed today."


async def test_admin_commands_answer_privately_and_every_use_is_audited(tmp_path: Path) -> None:
    async with TestBot(tmp_path) as bot:
        replies = [
            await bot.ask(
                "", command=name, args=args, roles=["admin"], reply=RecordingReply(private_notices=True)
            )
            for name, args in (
                ("persona list", {}),
                ("persona show", {"name": "math"}),
                ("persona check", {}),
                ("persona reload", {}),
            )
        ]
        rows = [r for r in await bot.store.audit_entries() if r.action == "admin_command"]
    for reply in replies:
        assert reply.messages == [] and len(reply.notices) == 1  # nothing in the channel
    assert "`math`" in replies[0].notices[0]
    assert "step by step" in replies[1].notices[0]
    assert "4 persona(s) ok, 0 error(s)" in replies[2].notices[0]
    assert "nothing changed" in replies[3].notices[0]
    assert [(r.actor, r.detail["command"]) for r in rows] == [
        ("user-1", "persona list"),
        ("user-1", "persona show"),
        ("user-1", "persona check"),
        ("user-1", "persona reload"),
    ]
    assert rows[1].detail["args"] == {"name": "math"}


async def test_persona_load_reload_and_failed_reload_are_audited_once_each(tmp_path: Path) -> None:
    folder = _persona_dir(tmp_path)
    admin = {"roles": ["admin"], "reply": RecordingReply(private_notices=True)}
    async with TestBot(tmp_path, settings={"personas": {"dir": str(folder)}}) as bot:
        v1 = bot.bot.personas.get("pirate")
        assert v1 is not None
        (folder / "pirate.md").write_text(PIRATE.format(description="Arr v2"))
        reloaded = await bot.ask("", command="persona reload", **admin)
        v2 = bot.bot.personas.get("pirate")
        assert v2 is not None and v2.content_hash != v1.content_hash
        (folder / "pirate.md").write_text(BROKEN)
        failed = await bot.ask(
            "", command="persona reload", roles=["admin"], reply=RecordingReply(private_notices=True)
        )
        again = await bot.ask(
            "", command="persona reload", roles=["admin"], reply=RecordingReply(private_notices=True)
        )
        listed = await bot.ask(
            "", command="persona list", roles=["admin"], reply=RecordingReply(private_notices=True)
        )
        rows = [r for r in await bot.store.audit_entries() if r.platform == "botkit"]
    assert "`pirate`" in reloaded.notices[0]
    assert "unknown key 'temprature'" in failed.notices[0] and "unknown key" in again.notices[0]
    assert "serving an older version" in next(
        line for line in listed.notices[0].splitlines() if "`pirate`" in line
    )
    assert "serving an older version" not in next(
        line for line in listed.notices[0].splitlines() if "`general`" in line
    )
    assert _persona_rows(rows) == [
        ("persona_load", "general"),
        ("persona_load", "pirate"),
        ("persona_reload", "pirate"),
        ("persona_reload_failed", "pirate"),  # once, though the file stayed broken for two reloads
    ]
    assert rows[1].detail["hash"] == v1.content_hash
    assert rows[2].detail == {"persona": "pirate", "hash": v2.content_hash, "previous_hash": v1.content_hash}
    failure = rows[3].detail
    assert failure["file"] == str(folder / "pirate.md") and failure["line"] == 4
    assert "temprature" in failure["problem"]
    assert failure["serving_hash"] == v2.content_hash


async def test_an_edited_file_is_audited_by_the_watcher(tmp_path: Path) -> None:
    folder = _persona_dir(tmp_path)
    async with TestBot(tmp_path, settings={"personas": {"dir": str(folder), "watch": True}}) as bot:
        store = bot.store
        seen: list[AuditRecord] = []

        async def reloaded() -> bool:
            seen[:] = await store.audit_entries()
            return any(r.action == "persona_reload" for r in seen)

        await asyncio.sleep(0.5)  # let the watcher start
        (folder / "pirate.md").write_text(PIRATE.format(description="Arr v2"))
        for _ in range(200):
            if await reloaded():
                break
            await asyncio.sleep(0.05)
        versions = await store.persona_versions("pirate")
    assert ("persona_reload", "pirate") in _persona_rows(seen)
    assert len(versions) == 2 and "Arr v2" in versions[-1].text


def test_botkit_audit_json_since_and_actor(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'botkit.db'}"

    async def scenario() -> None:
        async with TestBot(tmp_path, database_url=url) as bot:
            await bot.ask("", command="persona list", user="U0EVE")
            await bot.ask("", command="persona list", user="U0ADMIN", roles=["admin"])

    asyncio.run(scenario())
    monkeypatch.setenv("BOTKIT_DATABASE__URL", url)
    monkeypatch.chdir(tmp_path)
    capsys.readouterr()
    assert main(["audit", "--json", "--since", "1d"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    people = [(r["action"], r["actor"], r["detail"].get("command")) for r in rows if r["platform"] == "test"]
    assert people == [("refusal", "U0EVE", "persona list"), ("admin_command", "U0ADMIN", "persona list")]
    assert {r["action"] for r in rows if r["platform"] == "botkit"} == {"persona_load"}
    assert all(r["at"].endswith("+00:00") for r in rows)
    assert main(["audit", "--actor", "U0ADMIN"]) == 0
    (line,) = capsys.readouterr().out.splitlines()
    assert "test/workspace-1/channel-1  U0ADMIN  admin_command  command=persona list" in line
    assert main(["audit", "--since", "soon"]) == 2
    assert "--since" in capsys.readouterr().err


async def test_audit_rows_past_the_retention_are_pruned_at_start(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'botkit.db'}"
    store = await ConversationStore.open(url)
    await store.audit("refusal", platform="slack", actor="U0OLD")
    await store.audit("refusal", platform="slack", actor="U0NEW")
    await store.close()
    engine = create_engine(url, null_pool=True)
    async with engine.begin() as conn:  # U0OLD's row is 40 days old
        await conn.execute(text("UPDATE audit SET at = datetime('now', '-40 days') WHERE actor = 'U0OLD'"))
    await engine.dispose()
    async with TestBot(
        tmp_path, database_url=url, settings={"database": {"audit_retention_days": 30}}
    ) as bot:
        actors: set[str | None] = {"U0OLD"}

        async def refresh() -> None:
            actors.clear()
            actors.update(r.actor for r in await bot.store.audit_entries() if r.platform == "slack")

        for _ in range(100):
            await refresh()
            if "U0OLD" not in actors:
                break
            await asyncio.sleep(0.05)
    assert actors == {"U0NEW"}
