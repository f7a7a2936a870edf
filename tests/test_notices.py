"""Notices botkit guarantees (``notice:`` in a persona): on every final text, in the placeholder
and every partial view, stored with the answer, kept out of the model's history; and
``store_reasoning: false``. Driven through TestBot (the real router, stand-in model and SQLite)."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from notice_personas import AFTER, BEFORE, write_noticed, write_persona

from botkit.events import IncomingMessage
from botkit.llm.standin import Standin
from botkit.personas import PersonaError, load_persona
from botkit.pipeline.filters import TextFilters
from botkit.pipeline.recorder import TurnRecorder
from botkit.plugins.api import Request
from botkit.store import ConversationStore
from botkit.testing.testbot import TestBot


def _settings(directory: Path, **extra: Any) -> dict[str, Any]:
    return {"personas": {"dir": str(directory), "default": "noticed"}, **extra}


@pytest.fixture
def personas(tmp_path: Path) -> Path:
    directory = write_noticed(tmp_path / "personas")
    write_persona(directory, "boxed", f'answer_format: boxed\nnotice: "{AFTER}"\n')
    write_persona(directory, "private", f'notice: "{AFTER}"\nstore_reasoning: false\n')
    write_persona(directory, "plain", "")
    return directory


async def _assistant(bot: TestBot) -> Any:
    conversation = await bot.store.conversation_id("console", "workspace-1", "channel-1", "thread-1")
    return [m for m in await bot.store.messages(conversation) if m.role == "assistant"]


async def test_the_after_notice_ends_the_answer_once_and_is_stored_with_it(
    tmp_path: Path, personas: Path
) -> None:
    async with TestBot(tmp_path, settings=_settings(personas)) as bot:
        bot.standin.script_reply("Rest and fluids usually help.")
        reply = await bot.ask("I have a cold", platform="console")
        (row,) = await _assistant(bot)
    assert reply.text == f"Rest and fluids usually help.\n\n{AFTER}"
    assert row.status == "complete"
    assert row.content == f"Rest and fluids usually help.\n\n{AFTER}"


async def test_the_before_notice_tops_the_placeholder_and_every_partial_view(
    tmp_path: Path, personas: Path
) -> None:
    answer = " ".join(f"word{i}" for i in range(60))
    async with TestBot(tmp_path, standin=Standin(tokens_per_second=400), settings=_settings(personas)) as bot:
        bot.standin.script_reply(answer, reasoning="Thinking it over. " * 20)
        reply = await bot.ask("Tell me", platform="console")
    shown = [call.text for call in reply.calls if call.method in ("post_placeholder", "edit")]
    *partials, final = shown
    assert partials[0] == f"{BEFORE}\n\n_Thinking…_"
    assert any("word" in text for text in partials), "the answer streamed"
    assert all(text.startswith(f"{BEFORE}\n\n") for text in partials), partials
    assert final == f"{answer}\n\n{AFTER}"  # the final text: the after-notice, not the before one


async def test_an_answer_that_already_ends_with_the_notice_does_not_get_it_twice(
    tmp_path: Path, personas: Path
) -> None:
    core = AFTER.strip("_")
    async with TestBot(tmp_path, settings=_settings(personas)) as bot:
        bot.standin.script_reply(f"Drink water.\n\n{AFTER}")
        first = await bot.ask("thirsty?", platform="console")
        bot.standin.script_reply(f'Sleep more.\n\n"{core}"', reasoning="r")  # the model quoted it
        second = await bot.ask("tired?", platform="console")
        rows = await _assistant(bot)
    assert first.text.count(core) == 1 and first.text.endswith(AFTER)
    assert second.text.count(core) == 1
    assert [row.content.count(core) for row in rows] == [1, 1]


async def test_history_sent_back_to_the_model_leaves_the_notice_out(tmp_path: Path, personas: Path) -> None:
    async with TestBot(tmp_path, settings=_settings(personas)) as bot:
        bot.standin.script_reply("First answer.")
        await bot.ask("first?", platform="console")
        bot.standin.script_reply("Second answer.")
        second = await bot.ask("second?", platform="console")
        sent = bot.standin.requests[-1]["messages"]
        rows = await _assistant(bot)
    assert second.text.endswith(AFTER)
    assert {"role": "assistant", "content": "First answer."} in sent
    assert all(AFTER.strip("_") not in str(m["content"]) for m in sent), sent
    assert all(row.content.endswith(AFTER) for row in rows)  # the record keeps what users saw


async def test_a_boxed_persona_shows_the_notice_after_the_final_answer_line(
    tmp_path: Path, personas: Path
) -> None:
    async with TestBot(tmp_path, settings=_settings(personas)) as bot:
        bot.standin.script_reply("So it is \\boxed{42}.")
        reply = await bot.ask("6*7?", platform="console", **_ask("6*7?", "boxed"))
    assert reply.text.endswith(f"**Final answer:** `42`\n\n{AFTER}"), reply.text


def _ask(question: str, persona: str) -> dict[str, Any]:
    """``/ask persona=... question`` as an adapter hands it over."""
    return {"command": "ask", "args": {"question": question, "persona": persona}}


async def test_an_interrupted_partial_answer_keeps_its_notice(tmp_path: Path, personas: Path) -> None:
    settings = _settings(personas, llm={"retry_interrupted": False})
    async with TestBot(tmp_path, settings=settings) as bot:
        bot.standin.inject_failure("cut")  # half the (unscripted) answer, then the connection breaks
        question = "Please explain " + " ".join(f"topic{i}" for i in range(120))  # answer > reasoning
        reply = await bot.ask(question, platform="console")
        (row,) = await _assistant(bot)
    assert row.status == "interrupted"
    partial, notice, error = reply.text.partition(f"\n\n{AFTER}\n\n")
    assert partial.strip() and notice and "cut off" in error, reply.text  # answer, notice, error
    assert row.content == f"{partial}\n\n{AFTER}"


async def test_a_bare_error_gets_no_notice(tmp_path: Path, personas: Path) -> None:
    async with TestBot(tmp_path, settings=_settings(personas)) as bot:
        bot.standin.inject_failure("http500", count=10)
        reply = await bot.ask("hello?", platform="console")
        (row,) = await _assistant(bot)
    assert row.status == "failed" and "500" in reply.text
    assert AFTER not in reply.text and row.content == ""


async def test_store_reasoning_false_stores_null_reasoning(tmp_path: Path, personas: Path) -> None:
    async with TestBot(tmp_path, settings=_settings(personas)) as bot:
        bot.standin.script_reply("Kept.", reasoning="The patient is 54 and takes warfarin.")
        await bot.ask("q1", platform="console", thread="t-private", **_ask("q1", "private"))
        bot.standin.script_reply("Also kept.", reasoning="Reasoning worth keeping.")
        await bot.ask("q2", platform="console", thread="t-plain", **_ask("q2", "plain"))
        rows = {}
        for thread in ("t-private", "t-plain"):
            conversation = await bot.store.conversation_id("console", "workspace-1", "channel-1", thread)
            rows[thread] = [m for m in await bot.store.messages(conversation) if m.role == "assistant"]
    (private,) = rows["t-private"]
    (plain,) = rows["t-plain"]
    assert private.persona_name == "private" and private.reasoning is None
    assert private.content == f"Kept.\n\n{AFTER}"
    assert plain.persona_name == "plain" and plain.reasoning == "Reasoning worth keeping."
    assert plain.content == "Also kept."


async def test_the_shipped_medical_persona_on_the_console(tmp_path: Path) -> None:
    async with TestBot(tmp_path) as bot:
        bot.standin.script_reply("Usually a tension headache.", reasoning="Headache, no red flags.")
        question = "Why does my head hurt?"
        reply = await bot.ask(question, platform="console", roles=["medical"], **_ask(question, "medical"))
        (row,) = await _assistant(bot)
    first = reply.calls[0].text
    assert first.startswith("_Not medical advice.") and first.endswith("_Thinking…_")
    assert reply.text.startswith(
        "Usually a tension headache.\n\n_This is general information, not a diagnosis"
    )
    assert row.content == reply.text and row.reasoning is None


@pytest.mark.parametrize(
    ("front", "line", "problem"),
    [
        ("notice: 42\n", 4, "invalid value for 'notice'"),
        ("notice: [a, b]\n", 4, "invalid value for 'notice'"),
        ("notice:\n  before: hi\n  after: 3\n", 6, "invalid value for 'notice.after'"),
        ("notice:\n  afterr: hi\n", 5, "unknown key 'notice.afterr'"),
        ("store_reasoning: maybe\n", 4, "invalid value for 'store_reasoning'"),
    ],
)
def test_a_broken_notice_is_a_file_line_error(tmp_path: Path, front: str, line: int, problem: str) -> None:
    path = write_persona(tmp_path, "bad", front)
    with pytest.raises(PersonaError) as caught:
        load_persona(path)
    error = caught.value
    assert (error.line, str(error.path)) == (line, str(path)), str(error)
    assert problem in str(error)
    assert f"bad.md:{line}:" in str(error)


async def test_a_checkpoint_stores_the_notice_and_no_reasoning_for_a_private_persona(
    tmp_path: Path, personas: Path
) -> None:
    """What a crash mid-answer leaves for the restart pass to show: the partial text with its
    notice, and (``store_reasoning: false``) no reasoning even before the final write."""
    store = await ConversationStore.open(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}", migrate=True)
    try:
        persona = load_persona(personas / "private.md")
        recorder = TurnRecorder(
            store,
            TextFilters(),
            "model",
            notice=persona.notices.after,
            store_reasoning=persona.store_reasoning,
        )
        message = IncomingMessage("test", "w", "c", "t", "u", "q", "d1")
        await recorder.enqueue(Request(message, "turn", "q", persona=persona), persona, ["m1"])
        await recorder.streaming()
        await recorder.checkpoint("Half an ans", "The patient is 54.")
        assert recorder.conversation is not None
        _question, answer = await store.messages(recorder.conversation)
    finally:
        await store.close()
    assert answer.status == "streaming"
    assert answer.content == f"Half an ans\n\n{AFTER}"
    assert answer.reasoning is None


def test_piped_botkit_chat_with_the_medical_role_shows_and_stores_the_notice(tmp_path: Path) -> None:
    """The console as an admin runs it: ``botkit chat`` with the console user's roles set."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("BOTKIT_")}
    environment["BOTKIT_CONSOLE__ROLES"] = '["admin", "medical"]'
    result = subprocess.run(
        [sys.executable, "-m", "botkit.cli", "chat"],
        input=":ask persona=medical Is a headache after a fall serious?\n",
        cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    after = "_This is general information, not a diagnosis; see a clinician about your situation."
    assert result.stdout.count(after) == 1
    assert result.stdout.rstrip().endswith("call your local emergency services._")
    with sqlite3.connect(tmp_path / "botkit.db") as db:
        (content, reasoning) = db.execute(
            "SELECT content, reasoning FROM messages WHERE role = 'assistant'"
        ).fetchone()
    assert content.startswith("You asked:") and after in content
    assert reasoning is None  # the shipped medical persona: store_reasoning: false
