"""Fitting a thread's history into the model's context: the longest recent suffix that leaves
room for an answer, counted by the server's tokenizer where it answers (an estimate otherwise)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from botkit.llm.errors import BackendError
from botkit.llm.prompt import Prompt, build_prompt, estimate_tokens, token_upper_bound
from botkit.plugins.api import Refusal

if TYPE_CHECKING:
    from botkit.config import LLMSettings
    from botkit.store import HistoryTurn


class ContextOverflow(Refusal):
    """The question alone does not fit in the model's context."""


class TokenCounter(Protocol):
    async def count_prompt_tokens(self, messages: list[dict[str, str]]) -> int | None: ...


@dataclass(frozen=True)
class FittedPrompt:
    prompt: Prompt
    tokens: int  # as the server counts them, or an upper bound (see fit_history's ``sure_fit``)
    kept: Sequence[HistoryTurn]  # the history that made it into the prompt

    def trimmed(self, history: Sequence[HistoryTurn]) -> bool:
        return len(self.kept) < len(history)


def token_counter(counter: TokenCounter | None) -> Callable[[Prompt], Awaitable[int]]:
    async def count(prompt: Prompt) -> int:
        counted: int | None = None
        if counter is not None:
            try:
                counted = await counter.count_prompt_tokens(prompt.messages)
            except BackendError:  # still starting, or gone: the estimate errs on the long side
                counted = None
        return counted if counted is not None else estimate_tokens(prompt.messages)

    return count


def prompt_room(llm: LLMSettings) -> int:
    """Tokens a prompt may take: the context less the answer's share (at most half of it)."""
    return llm.max_model_len - min(llm.max_tokens, llm.max_model_len // 2)


async def fit_history(
    history: Sequence[HistoryTurn],
    user_content: str,
    *,
    room: int,
    counter: TokenCounter | None,
    sure_fit: int | None = None,
) -> FittedPrompt:
    """Binary search for the most recent exchanges whose prompt is at most ``room`` tokens.

    ``sure_fit`` (at most ``room``): a whole prompt whose :func:`~botkit.llm.prompt.token_upper_bound`
    is at most this many tokens is taken as it is, with the bound as its count, without the
    server's ``/tokenize``: one round trip fewer before the model is called, the one that queued
    behind every other new turn's in a burst of questions (docs/benchmarks.md section 4). The
    caller picks it so that the bound changes nothing the count would decide (the history
    kept, the answer's ``max_tokens``)."""
    full = build_prompt(history, user_content)
    if sure_fit is not None:
        bound = token_upper_bound(full.messages)
        if bound is not None and bound <= min(sure_fit, room):
            return FittedPrompt(full, bound, history)
    count = token_counter(counter)
    tokens = await count(full)
    if tokens <= room:
        return FittedPrompt(full, tokens, history)
    bare = build_prompt([], user_content)
    best = FittedPrompt(bare, await count(bare), [])
    if best.tokens > room:
        raise ContextOverflow(
            f"⚠️ Your message is too long for the model: about {best.tokens} tokens with the persona's "
            f"instructions, and at most {room} fit. Please shorten it or split it into parts."
        )
    low, high = 0, len(history)  # low exchanges always fit, high do not
    while high - low > 1:
        mid = (low + high) // 2
        kept = history[len(history) - mid :]
        candidate = build_prompt(kept, user_content)
        candidate_tokens = await count(candidate)
        if candidate_tokens <= room:
            low, best = mid, FittedPrompt(candidate, candidate_tokens, kept)
        else:
            high = mid
    return best
