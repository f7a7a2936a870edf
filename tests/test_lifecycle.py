"""Shutdown and persona edits while the bot runs: nothing silently half-done, changes take effect."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
from pathlib import Path

from botkit.events import IncomingMessage
from botkit.personas import shipped_personas_dir
from botkit.testing import RecordingReply, Standin, TestBot


async def test_shutdown_interrupts_a_streaming_reply_visibly_and_stores_it(tmp_path: Path) -> None:
    standin = Standin(tokens_per_second=20)
    async with TestBot(tmp_path, standin=standin, settings={"bot": {"shutdown_grace": 0.2}}) as bot:
        bot.standin.script_reply("word " * 400)
        reply = RecordingReply()
        submission = await bot.bot.submit(bot.message("long answer please"), reply)
        for _ in range(200):  # until the answer is visibly streaming
            if "word word" in reply.text:
                break
            await asyncio.sleep(0.05)
        await bot.bot.drain(grace=0.2)
        assert submission.task is not None and submission.task.done()
        conversation = await bot.store.conversation_id("test", "workspace-1", "channel-1", "thread-1")
        rows = [m for m in await bot.store.messages(conversation) if m.role == "assistant"]
        await bot.standin.wait_for(lambda: bot.standin.running == 0, 10)
        late = await bot.ask("anyone there?")
    assert "Interrupted" in reply.text
    assert reply.text.startswith("word word")  # the partial answer stays visible above the note
    assert [r.status for r in rows] == ["interrupted"]
    assert bot.standin.disconnects >= 1  # the model server was told to stop generating
    assert "not taking new questions" in late.text


async def test_edited_persona_takes_effect_and_broken_edit_keeps_the_old_one(tmp_path: Path) -> None:
    personas = tmp_path / "personas"
    shutil.copytree(shipped_personas_dir(), personas)
    settings = {"personas": {"dir": str(personas), "watch": True}}
    async with TestBot(tmp_path, settings=settings) as bot:
        registry = bot.bot.personas
        old_hash = registry.get("general").content_hash  # type: ignore[union-attr]
        general = personas / "general.md"
        text = general.read_text().replace("You are a helpful", "You are a PIRATE-THEMED helpful")
        for _ in range(100):  # the watcher may start after our first write: write until it sees it
            general.write_text(text)
            await asyncio.sleep(0.1)
            if registry.get("general").content_hash != old_hash:  # type: ignore[union-attr]
                break
        await bot.ask("hello")
        assert "PIRATE-THEMED" in bot.standin.requests[-1]["messages"][-1]["content"]
        new_hash = registry.get("general").content_hash  # type: ignore[union-attr]

        general.write_text("---\nname: general\ndescription: [unclosed\n---\n{{ question }}\n")
        for _ in range(100):
            await asyncio.sleep(0.1)
            if registry.errors:
                break
        assert any("general.md" in str(e) for e in registry.errors)
        await bot.ask("still there?")
        assert "PIRATE-THEMED" in bot.standin.requests[-1]["messages"][-1]["content"]
        conversation = await bot.store.conversation_id("test", "workspace-1", "channel-1", "thread-1")
        hashes = [m.persona_hash for m in await bot.store.messages(conversation) if m.role == "assistant"]
    assert new_hash != old_hash
    assert hashes == [new_hash, new_hash]


async def test_persona_folder_replaced_by_a_deploy_keeps_serving_and_is_watched_again(tmp_path: Path) -> None:
    from botkit.personas import PersonaRegistry

    folder = tmp_path / "personas"
    shutil.copytree(shipped_personas_dir(), folder)
    registry = PersonaRegistry(folder)
    registry.load()
    stop = asyncio.Event()
    watcher = asyncio.create_task(registry.watch(stop_event=stop))
    try:
        await asyncio.sleep(0.5)
        old = registry.get("math").content_hash  # type: ignore[union-attr]
        shutil.rmtree(folder)  # the deploy removes the folder...
        await asyncio.sleep(1.2)
        assert registry.get("math") is not None  # ...and the old personas keep serving meanwhile
        shutil.copytree(shipped_personas_dir(), folder)  # ...then puts the new one in place
        math = folder / "math.md"
        math.write_text(math.read_text().replace("Step-by-step", "Careful step-by-step"))
        for _ in range(150):
            await asyncio.sleep(0.1)
            if registry.get("math").content_hash != old:  # type: ignore[union-attr]
                break
        assert "Careful" in registry.get("math").description  # type: ignore[union-attr]
    finally:
        stop.set()
        await asyncio.wait_for(watcher, 10)


async def test_shutdown_lets_replies_land_before_adapters_close(tmp_path: Path) -> None:
    from typing import ClassVar

    from botkit.adapter import Adapter

    seen: dict[str, object] = {}

    class SlowAdapter(Adapter):
        name: ClassVar[str] = "test"

        async def run(self) -> None:
            reply = RecordingReply()
            seen["reply"] = reply
            await self.host.submit(
                IncomingMessage("test", "w", "c", "t", "u", "a long question", delivery_id="d1"), reply
            )
            try:
                await asyncio.Event().wait()
            finally:  # the platform connection closes here: the reply must already be final
                seen["final_when_closed"] = reply.finished.is_set()

    async with TestBot(
        tmp_path, standin=Standin(tokens_per_second=100), settings={"bot": {"shutdown_grace": 30}}
    ) as bot:
        bot.standin.script_reply("word " * 60)
        serving = asyncio.create_task(bot.app.serve([SlowAdapter(bot.bot, None)]))  # type: ignore[union-attr]
        await bot.standin.wait_for(lambda: bot.standin.running == 1, 10)
        serving.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await serving
    assert seen["final_when_closed"] is True
    assert seen["reply"].text.startswith("word word")  # type: ignore[attr-defined]


async def test_database_down_at_delivery_is_a_visible_error(tmp_path: Path, postgres_url: str) -> None:
    import asyncpg
    from sqlalchemy.engine import make_url

    async with TestBot(
        tmp_path, database_url=postgres_url, settings={"database": {"auto_migrate": True}}
    ) as bot:
        url = make_url(postgres_url)
        admin = await asyncpg.connect(host=url.host, port=url.port, user=url.username, database="postgres")
        try:  # the database goes away under the running bot
            await admin.execute(f'DROP DATABASE "{url.database}" WITH (FORCE)')
        finally:
            await admin.close()
        reply = await bot.ask("is anyone there?")
    assert "could not take your question" in reply.text
    assert bot.standin.requests == []
