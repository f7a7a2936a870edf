"""Accepted means persisted, on Discord: a slash command is stored before it is deferred
(Discord's acknowledgement), so a deferral ("thinking…") always has a stored question behind it."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from db_faults import exclusive_lock
from discord_harness import DiscordRig
from polling import until


async def test_a_slash_command_is_stored_before_it_is_deferred(rig: DiscordRig, tmp_path: Path) -> None:
    fake = rig.fake
    rig.bot.standin.script_reply("391")
    database = Path(rig.bot.database_url.removeprefix("sqlite+aiosqlite:///"))
    student = fake.add_user("student", roles=["student"])
    with exclusive_lock(database) as release:
        interaction = await fake.slash_command(student, "math", {"question": "What is 17*23?"})
        await asyncio.sleep(0.5)  # the adapter is in its first write, which waits for the lock
        assert interaction.callbacks == []  # not acknowledged while it cannot be stored
        release.set()
        await until(lambda: bool(interaction.callbacks))
    assert interaction.callbacks[0]["type"] == 5  # then deferred ("thinking")
    await fake.wait_for(lambda: any("391" in t for t in fake.interaction_messages(interaction.id)), 15)

    def rows() -> list[tuple[str, str, str]]:
        with sqlite3.connect(database) as db:
            return list(db.execute("SELECT role, status, content FROM messages ORDER BY id"))

    await until(lambda: rows()[-1][1] == "complete")  # the final write follows the final edit
    assert [r[:2] for r in rows()] == [("user", "complete"), ("assistant", "complete")]
    assert rows()[0][2] == "What is 17*23?"
