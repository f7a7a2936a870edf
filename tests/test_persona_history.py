"""Persona history: every loaded version's text kept once by hash, listed, diffed and shown again,
from the admin commands and the CLI, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from test_store import db_url, pg_database  # noqa: F401  (the SQLite / PostgreSQL fixtures)

from botkit.cli import main
from botkit.store import upgrade
from botkit.testing import RecordingReply, TestBot

V1 = "---\nname: pirate\ndescription: Talks like a pirate\n---\n{{ question }}\nAnswer like a pirate.\n"
V2 = (
    "---\nname: pirate\ndescription: Talks like a pirate\n---\n{{ question }}\nAnswer like a polite pirate.\n"
)


async def _admin(bot: TestBot, command: str, **args: str) -> str:
    reply = await bot.ask(
        "", command=command, args=args, roles=["admin"], reply=RecordingReply(private_notices=True)
    )
    assert reply.messages == [], "admin output must not go to the channel"
    (notice,) = reply.notices
    return notice


def test_history_diff_and_show_of_two_versions(
    db_url: str,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    folder = tmp_path / "personas"
    folder.mkdir()
    (folder / "general.md").write_text("---\nname: general\ndescription: General\n---\n{{ question }}\n")
    (folder / "pirate.md").write_text(V1)
    settings = {"personas": {"dir": str(folder)}}
    hashes: list[str] = []
    shown: dict[str, str] = {}

    async def scenario() -> None:
        await upgrade(db_url)  # PostgreSQL is never migrated implicitly
        async with TestBot(tmp_path, database_url=db_url, settings=settings) as bot:
            personas = bot.bot.personas
            hashes.append(personas.get("pirate").content_hash)  # type: ignore[union-attr]
            (folder / "pirate.md").write_text(V2)
            await _admin(bot, "persona reload")
            hashes.append(personas.get("pirate").content_hash)  # type: ignore[union-attr]
            shown["history"] = await _admin(bot, "persona history", name="pirate")
            shown["diff"] = await _admin(
                bot, "persona diff", name="pirate", old=hashes[0][:6], new=hashes[1][:6]
            )
            shown["old"] = await _admin(bot, "persona show", name="pirate", version=hashes[0][:8])
            shown["current"] = await _admin(bot, "persona show", name="pirate")
            shown["unknown"] = await _admin(bot, "persona show", name="pirate", version="ffffffff")
            versions = await bot.store.persona_versions("pirate")
            assert [(v.hash, v.text) for v in versions] == [(hashes[0], V1), (hashes[1], V2)]
        async with TestBot(tmp_path, database_url=db_url, settings=settings) as bot:  # a restart
            assert len(await bot.store.persona_versions("pirate")) == 2  # stored once per hash

    asyncio.run(scenario())
    old, new = hashes
    assert shown["history"].index(old) < shown["history"].index(new)
    assert f"{new}  (serving)" in shown["history"] and f"{old}  (serving)" not in shown["history"]
    assert "-Answer like a pirate." in shown["diff"] and "+Answer like a polite pirate." in shown["diff"]
    assert "Answer like a pirate." in shown["old"] and "polite" not in shown["old"]
    assert f"({old})" in shown["old"] and "(serving)" not in shown["old"]
    assert "polite pirate" in shown["current"] and "(serving)" in shown["current"]
    assert "no stored version" in shown["unknown"]

    monkeypatch.setenv("BOTKIT_DATABASE__URL", db_url)
    monkeypatch.setenv("BOTKIT_DATABASE__AUTO_MIGRATE", "false")
    monkeypatch.setenv("BOTKIT_PERSONAS__DIR", str(folder))
    monkeypatch.chdir(tmp_path)
    capsys.readouterr()
    assert main(["personas", "history", "pirate"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[3] for line in lines] == [old, new]
    assert lines[-1].endswith("(serving)")
    assert main(["personas", "diff", "pirate", old[:5], new[:5]]) == 0
    diff = capsys.readouterr().out
    assert diff.startswith(f"--- pirate@{old}\n+++ pirate@{new}\n")
    assert "-Answer like a pirate.\n+Answer like a polite pirate.\n" in diff
    assert main(["personas", "diff", "pirate", old[:5], "0000"]) == 1
    assert "no stored version of 'pirate'" in capsys.readouterr().err
    assert main(["personas", "history", "nobody"]) == 1
