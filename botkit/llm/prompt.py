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

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

THINK_PREFILL = "<think>\n"


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
