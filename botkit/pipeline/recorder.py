"""What the store learns about one turn as it goes: its rows, its usage and timing, its end.

The rows are written before the model is called and the placeholder's id with them, so a crash
leaves a findable, visibly unfinished turn rather than a silent gap. Everything stored passes the
plugins' text filters: the answer always, the question and reasoning where a filter asks.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from botkit.pipeline.filters import TextFilters
from botkit.plugins.api import Request

if TYPE_CHECKING:
    from botkit.personas import Persona
    from botkit.store import ConversationStore, HistoryTurn


@dataclass
class Usage:
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    first_token_at: float | None = None


@dataclass
class TurnRecorder:
    store: ConversationStore
    filters: TextFilters
    model: str
    started: float = field(default_factory=time.monotonic)
    conversation: int | None = None
    assistant_id: int | None = None
    usage: Usage = field(default_factory=Usage)

    async def enqueue(self, request: Request, persona: Persona, message_ids: Sequence[str]) -> None:
        """The question and a ``queued`` reply row with the placeholder's id, in one transaction."""
        message = request.message
        key = message.key
        self.conversation = await self.store.conversation_id(
            key.platform, key.workspace, key.channel, key.thread
        )
        ids = await self.store.start_turn(
            self.conversation,
            user_text=self.filters.question(request.question),
            user_id=message.user,
            delivery_id=message.delivery_id,
            persona_name=persona.name,
            persona_hash=persona.content_hash,
            model=self.model,
            status="queued",
            platform_message_ids=list(message_ids),
        )
        self.assistant_id = ids.assistant_message_id

    async def streaming(self) -> None:
        assert self.assistant_id is not None, "enqueue() first"
        self.started = time.monotonic()
        await self.store.mark_streaming(self.assistant_id)

    async def checkpoint(self, answer: str, reasoning: str) -> None:
        assert self.assistant_id is not None, "enqueue() first"
        await self.store.checkpoint(
            self.assistant_id, answer=self.filters.shown(answer), reasoning=self.filters.reasoning(reasoning)
        )

    async def history(self) -> Sequence[HistoryTurn]:
        """The thread's completed exchanges (this turn's own rows are not complete yet)."""
        assert self.conversation is not None, "enqueue() first"
        return await self.store.history(self.conversation)

    async def finish(
        self,
        status: str,
        *,
        answer: str,
        reasoning: str,
        error: str | None,
        message_ids: Sequence[str] | None = None,
    ) -> None:
        """Store the turn's outcome (nothing if it was refused before its rows existed)."""
        if self.assistant_id is None:
            return
        ttft = self.usage.first_token_at
        await self.store.finish_turn(
            self.assistant_id,
            status=status,
            answer=self.filters.shown(answer),
            reasoning=self.filters.reasoning(reasoning.strip()),
            prompt_tokens=self.usage.prompt_tokens,
            completion_tokens=self.usage.completion_tokens,
            ttft_ms=None if ttft is None else int((ttft - self.started) * 1000),
            total_ms=int((time.monotonic() - self.started) * 1000),
            error=error,
            platform_message_ids=None if message_ids is None else list(message_ids),
        )
