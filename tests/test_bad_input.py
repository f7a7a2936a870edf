"""Input is cleaned once, at the adapter boundary (the event model), for every adapter: lone
surrogates, NULs and control characters never reach the database or the model."""

from __future__ import annotations

from pathlib import Path

from botkit.events import IncomingMessage, clean_text
from botkit.testing import TestBot


def test_clean_text_replaces_surrogates_and_drops_controls_but_keeps_real_text() -> None:
    assert clean_text("a\ud83db") == "a\ufffdb"
    assert clean_text("nul\x00 bell\x07 del\x7f c1\x85 end") == "nul bell del c1 end"
    kept = "tab\tnew\nline\r zero\u200bwidth rtl\u202eltr\u202c émoji 🎉 中文"
    assert clean_text(kept) == kept


def test_every_string_of_the_event_is_cleaned() -> None:
    message = IncomingMessage(
        "test", "w", "c\x00", "t", "u\ud800", "x\ud800\x00", "d", command="ask\x00",
        args={"question": "q\x00\udfff"}, user_name="n\x01", user_roles=frozenset({"r\x00"}),
    )  # fmt: skip
    assert (message.channel, message.user, message.text, message.command) == (
        "c",
        "u\ufffd",
        "x\ufffd",
        "ask",
    )
    assert dict(message.args) == {"question": "q\ufffd"}
    assert (message.user_name, message.user_roles) == ("n", frozenset({"r"}))


async def test_lone_surrogates_and_nul_in_a_question_are_answered_and_stored(tmp_path: Path) -> None:
    async with TestBot(tmp_path) as bot:
        reply = await bot.ask("What is 6*7? \ud83d\x00")
        option = await bot.ask("x", command="math", args={"question": "What is 2+3? \udc00"})
        conversation = await bot.store.conversation_id("test", "workspace-1", "channel-1", "thread-1")
        stored = await bot.store.messages(conversation)
    assert "Something went wrong" not in reply.text + option.text
    assert "The final answer is 42." in reply.text and "The final answer is 5." in option.text
    assert stored[0].content == "What is 6*7? \ufffd"
    assert [m.status for m in stored] == ["complete"] * 4


async def test_the_corpus_piped_into_the_console_is_answered_line_by_line(tmp_path: Path) -> None:
    """Invalid UTF-8 on a strict stdin, controls, template syntax, pings: every line is answered."""
    import asyncio
    import os
    import sys

    from bad_input_corpus import QUESTIONS

    lines = [q.replace("\n", " ") for name, q in QUESTIONS.items() if name not in ("whitespace", "huge")]
    data = (
        b"What is 2+2?\n"
        + b"\xff\xfe invalid utf-8 \xc3\n"
        + "\n".join(lines).encode("utf-8", "surrogatepass")
        + b"\nWhat is 5+5?\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOTKIT_")}
    env["PYTHONIOENCODING"] = "utf-8:strict"
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "botkit.cli", "chat", cwd=tmp_path, env=env,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(data), 120)
    assert process.returncode == 0, err.decode()
    text = out.decode()
    assert (
        "The final answer is 4." in text and "The final answer is 10." in text
    )  # the lines after the bad bytes were read
    assert "Something went wrong" not in text
