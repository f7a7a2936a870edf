"""Plain, frozen views of stored rows: what the store hands out instead of live ORM objects.

Frozen dataclasses cannot lazy-load, expire or be mutated behind the session's back, so callers
(the app, plugins, admin tools, tests) can keep them across awaits and sessions safely.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime

from botkit.store.models import Message


@dataclass(frozen=True, slots=True)
class HistoryTurn:
    """One completed exchange, as the prompt builder needs it."""

    user_text: str
    answer: str


@dataclass(frozen=True, slots=True)
class TurnIds:
    """The two rows :meth:`ConversationStore.start_turn` inserted."""

    user_message_id: int
    assistant_message_id: int
    conversation_id: int | None = None  # the thread's conversation, so its users need not look it up
    #: The conversation was created by this intake: the thread has no history to read yet.
    new_conversation: bool = False


@dataclass(frozen=True, slots=True)
class StoredMessage:
    """Every column of a ``messages`` row."""

    id: int
    conversation_id: int
    role: str
    content: str
    reasoning: str | None
    status: str
    user_id: str | None
    persona_name: str | None
    persona_hash: str | None
    model: str | None
    prompt_tokens: int | None
    completion_tokens: int | None
    ttft_ms: int | None
    total_ms: int | None
    platform_message_ids: list[str]
    error: str | None
    delivery_id: str | None
    reply_to_id: int | None
    created_at: datetime
    updated_at: datetime
    owner: str | None = None  # the worker answering it (see botkit.store.models.Worker)

    @classmethod
    def from_row(cls, row: Message) -> StoredMessage:
        values = {f.name: getattr(row, f.name) for f in fields(cls)}
        values["platform_message_ids"] = list(values["platform_message_ids"] or [])
        return cls(**values)


@dataclass(frozen=True)
class WorkerRecord:
    """A registered botkit process (a ``workers`` row)."""

    id: str
    host: str
    pid: int
    started_at: datetime
    heartbeat_at: datetime
