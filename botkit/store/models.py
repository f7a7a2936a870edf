"""Declarative models of the conversation store.

These describe the schema for the ORM only: the tables themselves are created by the Alembic
migration in ``migrations/versions`` (never ``create_all``), and a test checks that the two agree.
Only portable types are used so one schema serves SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

ROLES = ("user", "assistant")
STATUSES = ("streaming", "complete", "failed", "interrupted")
FINAL_STATUSES = ("complete", "failed", "interrupted", "cancelled")
UNFINISHED_STATUSES = ("queued", "streaming")

# Explicit constraint names keep the migration, its downgrade and SQLite batch mode deterministic.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# BIGINT ids on PostgreSQL (messages grow without bound); SQLite only autoincrements INTEGER keys.
Id = BigInteger().with_variant(Integer(), "sqlite")


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp on every backend.

    PostgreSQL stores ``timestamptz``; SQLite has no time zones, so values are stored as naive UTC
    and marked UTC again on load. Naive input is rejected: it is always a bug (local time?).
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column; use datetime.now(UTC)")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime()}


class _Timestamps:
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Conversation(_Timestamps, Base):
    """One platform thread (a Slack thread, a Discord channel/thread, a console session)."""

    __tablename__ = "conversations"
    __table_args__ = (UniqueConstraint("platform", "workspace", "channel", "thread"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    platform: Mapped[str] = mapped_column(String(32))
    workspace: Mapped[str] = mapped_column(String(255))
    channel: Mapped[str] = mapped_column(String(255))
    thread: Mapped[str] = mapped_column(String(255))


class Message(_Timestamps, Base):
    """One user message or one assistant reply; a reply points at its user row via ``reply_to_id``.

    An assistant row is inserted as ``queued`` as soon as its placeholder is posted (it may wait
    behind the thread's previous turn), becomes ``streaming`` when the model is called, and so a
    crash leaves a visible trace that the next start turns into ``interrupted`` (nothing is
    silently half-written). ``cancelled``: the asker stopped it.
    """

    __tablename__ = "messages"
    __table_args__ = (
        # Also serves lookups by conversation_id alone (leading column), so no separate index.
        Index(None, "conversation_id", "id"),
        # Partial index: only the few in-flight rows, for unfinished_turns() at startup.
        Index(
            "ix_messages_unfinished",
            "id",
            sqlite_where=text("status IN ('queued', 'streaming')"),
            postgresql_where=text("status IN ('queued', 'streaming')"),
        ),
        CheckConstraint("role IN ('user', 'assistant')", name="role"),
        CheckConstraint(
            "status IN ('queued', 'streaming', 'complete', 'failed', 'interrupted', 'cancelled')",
            name="status",
        ),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(Id, ForeignKey("conversations.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(String(16))
    content: Mapped[str] = mapped_column(Text, default="")
    reasoning: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))
    user_id: Mapped[str | None] = mapped_column(String(255))
    persona_name: Mapped[str | None] = mapped_column(String(255))
    persona_hash: Mapped[str | None] = mapped_column(String(128))
    model: Mapped[str | None] = mapped_column(String(255))
    prompt_tokens: Mapped[int | None] = mapped_column(Integer)
    completion_tokens: Mapped[int | None] = mapped_column(Integer)
    ttft_ms: Mapped[int | None] = mapped_column(Integer)
    total_ms: Mapped[int | None] = mapped_column(Integer)
    platform_message_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    error: Mapped[str | None] = mapped_column(Text)
    delivery_id: Mapped[str | None] = mapped_column(String(255))
    reply_to_id: Mapped[int | None] = mapped_column(Id, ForeignKey("messages.id", ondelete="SET NULL"))
    # The botkit process (:class:`Worker`) answering an assistant row: a restart pass repairs
    # only the unfinished rows of processes that are gone, never those of one still serving.
    owner: Mapped[str | None] = mapped_column(String(32))


class Delivery(Base):
    """A platform event that was accepted; the unique key makes a redelivery lose the race."""

    __tablename__ = "deliveries"
    __table_args__ = (UniqueConstraint("platform", "delivery_id"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    platform: Mapped[str] = mapped_column(String(32))
    delivery_id: Mapped[str] = mapped_column(String(255))
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    conversation_id: Mapped[int | None] = mapped_column(
        Id, ForeignKey("conversations.id", ondelete="SET NULL")
    )


class Worker(Base):
    """One botkit process on this database, while it runs: where it runs and its last heartbeat.

    Several processes may share a database (two workers, a rolling restart, an admin's ``botkit
    chat`` beside ``botkit run``). Each registers here at start, beats every
    ``database.heartbeat_interval`` and leaves at a clean stop; a process is gone when its row is
    missing, its heartbeat is stale, or (on the same host) its pid no longer runs. Only then are
    its unfinished turns repaired (see :mod:`botkit.leftovers`).
    """

    __tablename__ = "workers"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    heartbeat_at: Mapped[datetime] = mapped_column(default=utcnow)


class AuditEntry(Base):
    """Something an admin or a compliance review must be able to find later: a refusal, an admin
    command, a persona load or reload (ok or failed). Written once, never updated; pruned after
    ``database.audit_retention_days``. ``detail`` holds what differs by action (persona, rule
    kind, command, hash, file and problem)."""

    __tablename__ = "audit"
    __table_args__ = (Index(None, "at"), Index(None, "actor", "at"))

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    platform: Mapped[str] = mapped_column(String(32))
    workspace: Mapped[str | None] = mapped_column(String(255))
    channel: Mapped[str | None] = mapped_column(String(255))
    actor: Mapped[str | None] = mapped_column(String(255))
    action: Mapped[str] = mapped_column(String(64))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class PersonaVersion(Base):
    """The full text of every persona version that was ever loaded, stored once per content hash,
    so the hash each turn records can be turned back into what the file said."""

    __tablename__ = "persona_versions"
    __table_args__ = (UniqueConstraint("name", "hash"),)

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    hash: Mapped[str] = mapped_column(String(128))
    text: Mapped[str] = mapped_column(Text)
    first_seen: Mapped[datetime] = mapped_column(default=utcnow)


class FeedbackVote(Base):
    """One user's 👍/👎 on one turn's final reply: one row per (turn, platform, voter); a second
    click updates it. The turn's persona name and version hash are copied from its reply row
    when the vote is cast, so ``botkit eval report`` groups votes by persona version without a
    join that a later edit of the turn could change; deleting the turn deletes its votes."""

    __tablename__ = "feedback"
    __table_args__ = (
        UniqueConstraint("message_id", "platform", "voter"),
        Index(None, "persona_name", "persona_hash"),
        CheckConstraint("vote IN ('up', 'down')", name="vote"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True)
    message_id: Mapped[int] = mapped_column(Id, ForeignKey("messages.id", ondelete="CASCADE"))
    platform: Mapped[str] = mapped_column(String(32))
    voter: Mapped[str] = mapped_column(String(255))
    vote: Mapped[str] = mapped_column(String(8))
    persona_name: Mapped[str | None] = mapped_column(String(255))
    persona_hash: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
