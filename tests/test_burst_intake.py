"""A burst of new questions: what must come before each model call, and what need not.

- Intakes share transactions: the accepts of messages that arrive together are committed in one
  group (botkit.store.group), each still on disk before its ``accept`` returns (before the ack).
- A prompt that provably fits is not sent to the server's ``/tokenize`` first: its byte length
  bounds its token count (:func:`botkit.llm.prompt.token_upper_bound`), checked here against the
  stand-in's tokenizer and the byte lengths of both chat templates botkit meets.
"""

from __future__ import annotations

import asyncio
import unicodedata
from pathlib import Path

from bad_input_corpus import QUESTIONS

from botkit.llm.prompt import build_prompt, token_upper_bound
from botkit.llm.standin import render_chat, tokenize
from botkit.store import ConversationStore
from botkit.testing import TestBot
from botkit.testing.sqlcount import counting_sqlite

# Texts whose NFC form is longer than they are (U+0344 -> two marks, U+FB2C -> three code points,
# U+1D15E -> two 4-byte code points), CJK, emoji with joiners, combining sequences, and the
# bad-input corpus (lone surrogates, controls, zero-width and RTL characters, template syntax).
TEXTS = [
    *QUESTIONS.values(),
    "\u0344" * 50 + "\ufb2c" * 50 + "\U0001d15e" * 50,
    "请用中文介绍一下人工智能的发展历史，谢谢！" * 20,
    "👩‍👩‍👧‍👦 family 🇺🇳 flags e\u0301\u0323 a\u030a\u0328 한국어 ﷺ",
    "<｜User｜><|im_start|></think> special tokens typed by a user",
    "",
]


def _chatml(messages: list[dict[str, str]]) -> str:
    """The Qwen ChatML template (the GPU rig's tokenizer files), generation prompt and a
    disabled-thinking block included: its longest form for these messages."""
    body = "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages)
    return body + "<|im_start|>assistant\n<think>\n\n</think>\n\n"


def _nfc_bytes(text: str) -> int:
    return len(unicodedata.normalize("NFC", text).encode("utf-8", "surrogatepass"))


def test_the_byte_bound_is_at_least_every_count_of_the_prompt() -> None:
    """For every text alone, after a history of the others, and pre-filled: the bound is at
    least the stand-in's token count and the UTF-8 bytes of the NFC form of both templates'
    renderings (byte-level BPE spends at least one byte a token; fails if NFC's lengthening or
    the template's text were left out of the bound)."""

    class Exchange:
        def __init__(self, user_text: str, answer: str) -> None:
            self.user_text, self.answer = user_text, answer

    history = [Exchange(t, t[::-1]) for t in TEXTS]
    for number, text in enumerate(TEXTS):
        for prompt in (
            build_prompt([], text),
            build_prompt(history[:number], text),
            build_prompt(history[:number], text, prefill=True),
        ):
            bound = token_upper_bound(prompt.messages)
            assert bound is not None
            for rendered in (render_chat(prompt.messages), _chatml(prompt.messages)):
                assert bound >= _nfc_bytes(rendered), (number, bound, _nfc_bytes(rendered))
            assert bound >= len(tokenize(render_chat(prompt.messages)))


def test_no_bound_for_a_code_point_this_python_does_not_know() -> None:
    """Its decomposition in the server's (newer) Unicode tables is unknown here."""
    assert unicodedata.category("\u0378") == "Cn"
    assert token_upper_bound(build_prompt([], "what is \u0378?").messages) is None
    assert token_upper_bound(build_prompt([], "what is ω?").messages) is not None


async def test_a_prompt_that_surely_fits_is_not_counted_by_the_server(tmp_path: Path) -> None:
    """A new thread's question and a short follow-up go to the model without ``/tokenize``
    first (the defaults: a 4,096-token context, 2,048 for the answer); a history too long for
    the bound to prove it fits is counted by the server, as before."""
    async with TestBot(tmp_path) as bot:
        first = await bot.ask("What is 17*23?", thread="t-short")
        again = await bot.ask("And 18*23?", thread="t-short")
        assert bot.standin.hits["POST /tokenize"] == 0
        assert "391" in first.text and "414" in again.text
        long_question = "please summarise: " + " ".join(f"w{i}" for i in range(200))  # ~1,000 bytes
        for n in range(3):
            await bot.ask(f"Q{n} {long_question}", thread="t-long")
        assert bot.standin.hits["POST /tokenize"] >= 1  # the third's prompt: over 2,048 bytes
        last = await bot.ask("What is 2+2?", thread="t-long")
        conversation = await bot.store.conversation_id("test", "workspace-1", "channel-1", "t-long")
        rows = await bot.store.messages(conversation)
    assert "4" in last.text
    assert [m.status for m in rows if m.role == "assistant"] == ["complete"] * 4


async def test_intakes_that_arrive_together_share_their_commits(tmp_path: Path) -> None:
    """Twenty messages accepted at once: one or two transactions, not twenty (each waited for
    SQLite's write lock in turn), and every accepted message has its claim, question and
    ``queued`` reply on disk when its accept returns; the duplicates among them write nothing."""
    store = await ConversationStore.open(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}", migrate=True)
    try:
        with counting_sqlite() as calls:
            accepted = await asyncio.gather(
                *(
                    store.accept(
                        "slack", f"Ev{n % 15}", ("W", "C", f"T{n % 15}"), user_text=f"q{n}", user_id="U"
                    )
                    for n in range(20)
                )
            )
        assert calls["commits"] <= 2, calls.counts
        winners = [ids for ids in accepted if ids is not None]
        assert len(winners) == 15 and all(ids.new_conversation for ids in winners)
        for n, ids in enumerate(accepted[:15]):
            assert ids is not None
            rows = await store.messages(ids.conversation_id or 0)
            assert [(m.role, m.status, m.content) for m in rows] == [
                ("user", "complete", f"q{n}"),
                ("assistant", "queued", ""),
            ]
    finally:
        await store.close()
