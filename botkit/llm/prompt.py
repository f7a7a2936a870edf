"""Prompt rules for DeepSeek-R1 distills, in one place.

- No system message, ever: the model card says instructions belong in the user turn, so the
  rendered persona *is* the user turn.
- Earlier assistant turns go back as their answer only; the model's own chat template strips
  reasoning from history, and sending it would waste the small context.
- The "\\n" guard: a user turn that starts with a newline keeps the model out of its
  "reply with only \\n\\n" trap. When an answer still comes back empty, the retry also pre-fills
  the assistant turn with ``<think>\\n`` (the model card's own remedy) through vLLM's
  ``continue_final_message``.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

THINK_PREFILL = "<think>\n"

#: What :func:`token_upper_bound` allows for the chat template's own text: per prompt (the BOS
#: token, the generation prompt, a default system line) and per message (its role markers).
#: DeepSeek-R1-Distill's template takes 54 bytes per prompt (``<｜begin▁of▁sentence｜>``,
#: ``<｜Assistant｜><think>\n``) and 12 per user / 44 per assistant message (``<｜User｜>``;
#: ``<｜Assistant｜>`` and ``<｜end▁of▁sentence｜>``); the Qwen ChatML template (the GPU rig's
#: tokenizer files) 22 + 19 per prompt and 28-53 per message; both with room to spare.
TEMPLATE_BYTES = 256
TEMPLATE_BYTES_PER_MESSAGE = 64


class Exchange(Protocol):
    @property
    def user_text(self) -> str: ...

    @property
    def answer(self) -> str: ...


@dataclass(frozen=True)
class Prompt:
    messages: list[dict[str, str]]
    extra_body: dict[str, Any] | None = None


def build_prompt(
    history: Sequence[Exchange], user_content: str, *, newline_guard: bool = True, prefill: bool = False
) -> Prompt:
    messages: list[dict[str, str]] = []
    for exchange in history:
        messages.append({"role": "user", "content": exchange.user_text})
        messages.append({"role": "assistant", "content": exchange.answer})
    guard = "\n" if newline_guard and not user_content.startswith("\n") else ""
    messages.append({"role": "user", "content": guard + user_content})
    if not prefill:
        return Prompt(messages)
    messages.append({"role": "assistant", "content": THINK_PREFILL})
    return Prompt(messages, {"continue_final_message": True, "add_generation_prompt": False})


def estimate_tokens(messages: Sequence[dict[str, str]]) -> int:
    """A deliberately pessimistic count for when the server cannot tokenize.

    About 3 ASCII characters per token, and one token per other character (Qwen's tokenizer
    spends 1-1.5 characters per token on Chinese, so 3 would badly undercount it).
    """
    total = 8
    for message in messages:
        text = message["content"]
        ascii_chars = sum(1 for ch in text if ch.isascii())
        total += ascii_chars // 3 + (len(text) - ascii_chars) + 8
    return total


def token_upper_bound(messages: Sequence[dict[str, str]]) -> int | None:
    """A count the rendered prompt's tokens cannot exceed, without asking the server; None where
    this text gives no such bound.

    Why it holds: the model's tokenizer (Qwen2's, in DeepSeek-R1-Distill-Qwen) is byte-level BPE
    over NFC-normalized text: every token, special ones included, stands for at least one byte
    of it, so the prompt has at most as many tokens as its NFC form has UTF-8 bytes (what the
    stand-in counts, one or more characters a token, is below that too). NFC may lengthen a
    text (U+0344 becomes two combining marks, U+FB2C three code points), but never past its NFD
    form: composition only merges code points, each composite no longer than its parts. NFD
    works code point by code point, so the bytes of the messages' NFD forms plus the template's
    own text (:data:`TEMPLATE_BYTES`) bound the whole prompt's. ASCII is its own NFD form.

    None for a text with a code point this Python's Unicode tables do not know: the server's
    may be newer, and such a character's decomposition is unknown here.
    """
    total = TEMPLATE_BYTES
    for message in messages:
        text = message["content"]
        if not text.isascii():
            if any(unicodedata.category(ch) == "Cn" for ch in text):
                return None
            text = unicodedata.normalize("NFD", text)
        total += len(text.encode("utf-8", "surrogatepass")) + TEMPLATE_BYTES_PER_MESSAGE
    return total
