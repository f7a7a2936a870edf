"""The conversation store: per-thread history, turns and exactly-once delivery claims, in SQL.

Every method is one short transaction, so a bot process holds no locks between awaits on the
model, and every "get or create" relies on a unique constraint rather than a read-then-write
check, which is what keeps it correct with several tasks or processes on one database.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Collection
from datetime import timedelta
from typing import Any, NotRequired, TypedDict, Unpack

from sqlalchemy import Boolean, ColumnElement, Update, delete, literal_column, select, update
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, NotSupportedError, ProgrammingError
from sqlalchemy.exc import TimeoutError as SQLAlchemyTimeoutError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import aliased

from botkit.store.audit import AuditRecord, StoredPersonaVersion
from botkit.store.database import StoreError, is_sqlite, open_engine, safe_url
from botkit.store.feedback import (
    StoredVote,
    VersionFeedback,
    VoteResult,
    record_vote,
    version_feedback,
    votes_on,
)
from botkit.store.migrate import engine_revision, head_revision_async, migrate_engine
from botkit.store.models import (
    FINAL_STATUSES,
    UNFINISHED_STATUSES,
    AuditEntry,
    Conversation,
    Delivery,
    Message,
    PersonaVersion,
    Worker,
    utcnow,
)
from botkit.store.records import HistoryTurn, StoredMessage, TurnIds, WorkerRecord
from botkit.streaming.notices import strip_notice


def is_unavailable(err: BaseException) -> bool:
    """The database could not be reached, dropped the connection, or is locked: worth retrying.

    Connection errors surface raw from the drivers (asyncpg's ``ConnectionRefusedError``) or
    wrapped by SQLAlchemy (``OperationalError``: SQLite's "database is locked", a server that is
    shutting down; a ``DBAPIError`` whose connection was invalidated). A constraint violation, bad
    data or bad SQL is a bug and is never retried.
    """
    if isinstance(err, OSError | TimeoutError | SQLAlchemyTimeoutError):
        return True
    if isinstance(err, DBAPIError):
        if err.connection_invalidated:
            return True
        return not isinstance(err, IntegrityError | DataError | ProgrammingError | NotSupportedError)
    return False


def _unadopted(turn: TurnIds) -> tuple[ColumnElement[bool], ...]:
    """The reply row of ``turn`` while it is still an inbox row: queued, no persona chosen yet
    (every turn's own rows carry their persona, so this tells the two apart without a column)."""
    return (
        Message.id == turn.assistant_message_id,
        Message.role == "assistant",
        Message.status == "queued",
        Message.persona_name.is_(None),
    )


async def _add_turn_rows(
    session: AsyncSession,
    common: dict[str, Any],
    *,
    user_text: str,
    user_id: str | None,
    status: str,
    platform_message_ids: list[str] | None = None,
    reply_user: str | None = None,
    owner: str | None = None,
) -> TurnIds:
    """The question row and its unfinished reply row (``owner``: the worker answering it),
    inside the caller's transaction."""
    asked = Message(role="user", content=user_text, status="complete", user_id=user_id, **common)
    session.add(asked)
    await session.flush()
    reply = Message(
        role="assistant",
        content="",
        status=status,
        reply_to_id=asked.id,
        platform_message_ids=list(platform_message_ids or []),
        user_id=reply_user,
        owner=owner,
        **common,
    )
    session.add(reply)
    await session.execute(
        update(Conversation).where(Conversation.id == common["conversation_id"]).values(updated_at=utcnow())
    )
    await session.flush()
    return TurnIds(
        user_message_id=asked.id, assistant_message_id=reply.id, conversation_id=common["conversation_id"]
    )


class Outcome(TypedDict):
    """A turn's outcome: :meth:`ConversationStore.finish_turn`'s keyword arguments."""

    status: str
    answer: str
    reasoning: str | None
    prompt_tokens: NotRequired[int | None]
    completion_tokens: NotRequired[int | None]
    ttft_ms: NotRequired[float | None]
    total_ms: NotRequired[float | None]
    error: NotRequired[str | None]
    platform_message_ids: NotRequired[list[str] | None]


def _finish_values(**outcome: Unpack[Outcome]) -> dict[str, Any]:
    """The columns an outcome sets (``platform_message_ids`` only where given, not None)."""
    status = outcome["status"]
    if status not in FINAL_STATUSES:
        raise ValueError(f"finish_turn status must be one of {FINAL_STATUSES}, not {status!r}")
    values: dict[str, Any] = {
        "status": status,
        "content": outcome["answer"],
        "reasoning": outcome["reasoning"],
        "prompt_tokens": outcome.get("prompt_tokens"),
        "completion_tokens": outcome.get("completion_tokens"),
        "ttft_ms": _ms(outcome.get("ttft_ms")),
        "total_ms": _ms(outcome.get("total_ms")),
        "error": outcome.get("error"),
    }
    ids = outcome.get("platform_message_ids")
    if ids is not None:
        values["platform_message_ids"] = list(ids)
    return values


def _update_unfinished(assistant_message_id: int) -> Update:
    """An UPDATE of an assistant row that applies only while it is still unfinished."""
    return (
        update(Message)
        .where(
            Message.id == assistant_message_id,
            Message.role == "assistant",
            Message.status.in_(UNFINISHED_STATUSES),
        )
        .values(updated_at=utcnow())
    )


def _host() -> str:
    return socket.gethostname()


def _ms(value: float | None) -> int | None:
    """Timings arrive as floats from the clock; milliseconds are stored as whole numbers."""
    return None if value is None else round(value)


class ConversationStore:
    """Async access to the botkit database; create with :meth:`open`, release with :meth:`close`."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)
        #: This process's id in ``workers`` once :meth:`register_worker` ran; stamped on every
        #: reply row it writes, so another process's restart pass leaves them alone.
        self.worker_id: str | None = None

    @classmethod
    async def open(cls, url: str, *, migrate: bool | None = None, echo: bool = False) -> ConversationStore:
        """Connect and make sure the schema is current.

        ``migrate=None`` upgrades SQLite automatically (an embedded file has no DBA) but only checks
        other databases, where schema changes should be a deliberate ``botkit db upgrade``.
        """
        engine = await open_engine(url, echo=echo)
        try:
            if migrate if migrate is not None else is_sqlite(url):
                await migrate_engine(engine)
            else:
                current = await engine_revision(engine)
                head = await head_revision_async()
                if current != head:
                    raise StoreError(
                        f"database at {safe_url(url)} is at revision {current or 'none (empty)'}, "
                        f"botkit needs {head}: run `botkit db upgrade`"
                    )
        except BaseException:
            await engine.dispose()
            raise
        return cls(engine)

    @property
    def url(self) -> str:
        """The database URL with the password hidden, for logs."""
        return safe_url(self._engine.url)

    async def close(self) -> None:
        await self._engine.dispose()

    async def claim_delivery(
        self, platform: str, delivery_id: str, *, conversation_id: int | None = None
    ) -> bool:
        """Record a platform event; True only for the one caller (in any process) that got it first.

        Platforms redeliver events they think were missed; the loser of the unique-key race must
        not answer again.
        """
        try:
            async with self._sessions.begin() as session:
                session.add(
                    Delivery(platform=platform, delivery_id=delivery_id, conversation_id=conversation_id)
                )
        except IntegrityError:
            # Make sure it was the unique key, not e.g. a foreign key, before calling it a duplicate.
            if not await self._claimed(platform, delivery_id):
                raise
            return False
        return True

    async def _claimed(self, platform: str, delivery_id: str) -> bool:
        async with self._sessions() as session:
            found = await session.scalar(
                select(Delivery.id).where(Delivery.platform == platform, Delivery.delivery_id == delivery_id)
            )
        return found is not None

    async def accept(
        self,
        platform: str,
        delivery_id: str,
        key: tuple[str, str, str],
        *,
        user_text: str,
        user_id: str | None,
    ) -> TurnIds | None:
        """The durable inbox: claim the delivery and write its question plus a ``queued`` reply
        row (no persona, no placeholder yet), in ONE transaction; None for a duplicate delivery.

        This is what "accepted" means: the adapter acknowledges the platform only after this
        returned, so an event is either on disk (claimed, and findable by the restart pass as
        an inbox row without a placeholder) or unacknowledged (the platform redelivers it), never
        acknowledged and forgotten. One transaction, not claim-then-insert, because a process that
        died between the two would leave a claim that drops the redelivery and no row to repair.
        ``key`` is (workspace, channel, thread) on ``platform``.
        """
        conversation = await self.conversation_id(platform, *key)
        try:
            async with self._sessions.begin() as session:
                session.add(
                    Delivery(platform=platform, delivery_id=delivery_id, conversation_id=conversation)
                )
                await session.flush()
                common: dict[str, Any] = {"conversation_id": conversation, "delivery_id": delivery_id}
                # The reply row has the asker too: whom the restart pass tells if no turn adopts it.
                return await _add_turn_rows(
                    session,
                    common,
                    user_text=user_text,
                    user_id=user_id,
                    status="queued",
                    reply_user=user_id,
                    owner=self.worker_id,
                )
        except IntegrityError:
            if not await self._claimed(platform, delivery_id):
                raise
            return None

    async def adopt_inbox(
        self,
        turn: TurnIds,
        *,
        user_text: str,
        persona_name: str | None,
        persona_hash: str | None,
        model: str | None,
        platform_message_ids: list[str],
    ) -> bool:
        """The turn that answers an inbox row takes it over: the question as the chain settled
        it, the persona (chosen after acceptance) and the placeholder's id. False if the row is
        no longer an unstarted inbox row (already adopted, or finished by a restart pass)."""
        values = {"persona_name": persona_name, "persona_hash": persona_hash, "model": model}
        async with self._sessions.begin() as session:
            adopted = (
                await session.execute(
                    update(Message)
                    .where(*_unadopted(turn))
                    .values(updated_at=utcnow(), platform_message_ids=list(platform_message_ids), **values)
                    .returning(Message.id)
                )
            ).scalar_one_or_none()
            if adopted is None:
                return False
            await session.execute(
                update(Message)
                .where(Message.id == turn.user_message_id, Message.role == "user")
                .values(updated_at=utcnow(), content=user_text, **values)
            )
        return True

    async def close_inbox(self, turn: TurnIds) -> None:
        """An accepted message that never became a model turn (a plugin command, ``/persona
        list``, a refusal shown as a notice): its unadopted inbox rows are deleted, so no
        ``queued`` row is left for the restart pass to "answer" again. The delivery claim stays
        (a redelivery is still a duplicate). A row a turn adopted is left to that turn."""
        async with self._sessions.begin() as session:
            deleted = (
                await session.execute(delete(Message).where(*_unadopted(turn)).returning(Message.id))
            ).scalar_one_or_none()
            if deleted is not None:
                await session.execute(delete(Message).where(Message.id == turn.user_message_id))

    async def prune_deliveries(self, older_than: timedelta) -> int:
        """Forget delivery claims older than ``older_than``; returns how many were removed.

        Platforms redeliver within minutes to hours (Slack retries three times, Discord never
        replays an interaction), so a claim only has to outlive that window.
        """
        cutoff = utcnow() - older_than
        async with self._sessions.begin() as session:
            result = await session.execute(delete(Delivery).where(Delivery.received_at < cutoff))
        return int(getattr(result, "rowcount", 0) or 0)

    async def conversation_id(self, platform: str, workspace: str, channel: str, thread: str) -> int:
        """The id of this thread's conversation, created on first use (race-safe)."""
        key = (
            Conversation.platform == platform,
            Conversation.workspace == workspace,
            Conversation.channel == channel,
            Conversation.thread == thread,
        )
        async with self._sessions() as session:
            found = await session.scalar(select(Conversation.id).where(*key))
        if found is not None:
            return found
        try:
            async with self._sessions.begin() as session:
                row = Conversation(platform=platform, workspace=workspace, channel=channel, thread=thread)
                session.add(row)
                await session.flush()
                return row.id
        except IntegrityError:
            pass  # another task or process created it between our select and insert
        async with self._sessions() as session:
            return (await session.execute(select(Conversation.id).where(*key))).scalar_one()

    async def history(
        self, conversation_id: int, *, limit: int = 100, notices: Collection[str] = ()
    ) -> list[HistoryTurn]:
        """The last ``limit`` completed exchanges, oldest first. Failed, interrupted, empty and
        in-flight turns are left out: the model should not see its own broken output.

        A stored answer holds the persona's after-notice (what the user saw; see
        :mod:`botkit.streaming.notices`); each of ``notices`` is stripped from the answers here,
        so the model does not learn to repeat a disclaimer botkit adds anyway."""
        if limit <= 0:
            return []
        user = aliased(Message)
        stmt = (
            select(user.content, Message.content)
            .join(user, Message.reply_to_id == user.id)
            .where(
                Message.conversation_id == conversation_id,
                Message.role == "assistant",
                Message.status == "complete",
                Message.content != "",
            )
            .order_by(Message.id.desc())
            .limit(limit)
        )
        async with self._sessions() as session:
            rows = (await session.execute(stmt)).all()
        return [HistoryTurn(user_text=u, answer=_without(a, notices)) for u, a in reversed(rows)]

    async def start_turn(
        self,
        conversation_id: int,
        *,
        user_text: str,
        user_id: str | None,
        delivery_id: str | None,
        persona_name: str | None,
        persona_hash: str | None,
        model: str | None,
        status: str = "streaming",
        platform_message_ids: list[str] | None = None,
    ) -> TurnIds:
        """Persist the user's message and an unfinished assistant row (``queued`` while it waits
        for the thread, ``streaming`` once the model is called) with the placeholder's id, in one
        transaction, so that a crash is visible afterwards (see :meth:`unfinished_turns`)."""
        if status not in UNFINISHED_STATUSES:
            raise ValueError(f"start_turn status must be one of {UNFINISHED_STATUSES}, not {status!r}")
        common: dict[str, Any] = {
            "conversation_id": conversation_id,
            "delivery_id": delivery_id,
            "persona_name": persona_name,
            "persona_hash": persona_hash,
            "model": model,
        }
        async with self._sessions.begin() as session:
            return await _add_turn_rows(
                session,
                common,
                user_text=user_text,
                user_id=user_id,
                status=status,
                platform_message_ids=platform_message_ids,
                owner=self.worker_id,
            )

    async def mark_streaming(self, assistant_message_id: int) -> None:
        """A queued turn got its thread: the model is being called."""
        await self._update_assistant(assistant_message_id, {"status": "streaming"})

    async def checkpoint(self, assistant_message_id: int, *, answer: str, reasoning: str | None) -> None:
        """The answer so far, while it streams: a crash then leaves its partial text on record.

        Only while the row is unfinished: a checkpoint held up by a locked or slow database must
        not overwrite the final answer that was stored after it.
        """
        stmt = _update_unfinished(assistant_message_id).values(content=answer, reasoning=reasoning)
        async with self._sessions.begin() as session:
            await session.execute(stmt)

    async def record_message_ids(self, assistant_message_id: int, ids: list[str]) -> None:
        """Remember the platform messages that carry the reply (so a restart can edit them)."""
        await self._update_assistant(assistant_message_id, {"platform_message_ids": list(ids)})

    async def finish_turn(self, assistant_message_id: int, **outcome: Unpack[Outcome]) -> None:
        """Store the outcome of a turn; ``platform_message_ids=None`` keeps the recorded ones."""
        await self._update_assistant(assistant_message_id, _finish_values(**outcome))

    async def _update_assistant(self, message_id: int, values: dict[str, Any]) -> None:
        stmt = (
            update(Message)
            .where(Message.id == message_id, Message.role == "assistant")
            .values(updated_at=utcnow(), **values)
            .returning(Message.id)
        )
        async with self._sessions.begin() as session:
            if (await session.execute(stmt)).scalar_one_or_none() is None:
                raise StoreError(f"no assistant message with id {message_id}")

    async def messages(self, conversation_id: int) -> list[StoredMessage]:
        """Every message of a conversation in order, all columns (tests and admin tools)."""
        stmt = select(Message).where(Message.conversation_id == conversation_id).order_by(Message.id)
        async with self._sessions() as session:
            return [StoredMessage.from_row(m) for m in (await session.scalars(stmt)).all()]

    async def conversation_key(self, conversation_id: int) -> tuple[str, str, str, str] | None:
        """(platform, workspace, channel, thread) of a conversation, or None if unknown."""
        async with self._sessions() as session:
            row = await session.get(Conversation, conversation_id)
            return None if row is None else (row.platform, row.workspace, row.channel, row.thread)

    async def unfinished_turns(self) -> list[StoredMessage]:
        """Assistant rows still ``queued`` or ``streaming``: a previous process died before them."""
        # The same literal predicate as the partial index ix_messages_unfinished, so it is used.
        unfinished = literal_column("status IN ('queued', 'streaming')", Boolean)
        stmt = select(Message).where(unfinished).order_by(Message.id)
        async with self._sessions() as session:
            return [StoredMessage.from_row(m) for m in (await session.scalars(stmt)).all()]

    async def settle_unfinished(self, assistant_message_id: int, **outcome: Unpack[Outcome]) -> bool:
        """:meth:`finish_turn` for a turn a gone process left unfinished, only if it still is:
        True for the one process (of several repairing at once) whose update took it."""
        stmt = (
            _update_unfinished(assistant_message_id).values(**_finish_values(**outcome)).returning(Message.id)
        )
        async with self._sessions.begin() as session:
            return (await session.execute(stmt)).scalar_one_or_none() is not None

    # -- the processes sharing this database ------------------------------------------------------
    async def register_worker(self, worker_id: str, *, host: str, pid: int) -> None:
        """Register this process (see :class:`~botkit.store.models.Worker`); its reply rows
        carry ``worker_id`` from now on."""
        async with self._sessions.begin() as session:
            session.add(Worker(id=worker_id, host=host, pid=pid))
        self.worker_id = worker_id

    async def heartbeat(self) -> None:
        """This process is alive; re-registers it if another pruned it as gone."""
        assert self.worker_id is not None, "register_worker() first"
        stmt = update(Worker).where(Worker.id == self.worker_id).values(heartbeat_at=utcnow())
        async with self._sessions.begin() as session:
            if (await session.execute(stmt.returning(Worker.id))).scalar_one_or_none() is None:
                session.add(Worker(id=self.worker_id, host=_host(), pid=os.getpid()))

    async def retire_worker(self) -> None:
        """A clean stop: this process answers nothing any more."""
        if self.worker_id is not None:
            async with self._sessions.begin() as session:
                await session.execute(delete(Worker).where(Worker.id == self.worker_id))

    async def workers(self) -> dict[str, WorkerRecord]:
        async with self._sessions() as session:
            rows = (await session.scalars(select(Worker))).all()
        return {w.id: WorkerRecord(w.id, w.host, w.pid, w.started_at, w.heartbeat_at) for w in rows}

    async def forget_workers(self, worker_ids: Collection[str]) -> None:
        """Drop the rows of processes found gone (their turns were repaired)."""
        if worker_ids:
            async with self._sessions.begin() as session:
                await session.execute(delete(Worker).where(Worker.id.in_(list(worker_ids))))

    # -- audit trail and persona history -------------------------------------------------------
    async def audit(
        self,
        action: str,
        *,
        platform: str,
        workspace: str | None = None,
        channel: str | None = None,
        actor: str | None = None,
        detail: dict[str, Any] | None = None,
    ) -> None:
        """Append one audit row (never updated afterwards)."""
        async with self._sessions.begin() as session:
            session.add(
                AuditEntry(
                    platform=platform,
                    workspace=workspace,
                    channel=channel,
                    actor=actor,
                    action=action,
                    detail=detail or {},
                )
            )

    async def audit_entries(
        self, *, since: timedelta | None = None, actor: str | None = None, limit: int | None = None
    ) -> list[AuditRecord]:
        """Audit rows oldest first, optionally only the last ``since`` and only one ``actor``."""
        stmt = select(AuditEntry).order_by(AuditEntry.at, AuditEntry.id)
        if since is not None:
            stmt = stmt.where(AuditEntry.at >= utcnow() - since)
        if actor is not None:
            stmt = stmt.where(AuditEntry.actor == actor)
        if limit is not None:
            stmt = stmt.limit(limit)
        async with self._sessions() as session:
            return [AuditRecord.from_row(row) for row in (await session.scalars(stmt)).all()]

    async def prune_audit(self, older_than: timedelta) -> int:
        """Remove audit rows older than ``older_than`` (``database.audit_retention_days``)."""
        cutoff = utcnow() - older_than
        async with self._sessions.begin() as session:
            result = await session.execute(delete(AuditEntry).where(AuditEntry.at < cutoff))
        return int(getattr(result, "rowcount", 0) or 0)

    async def remember_persona_version(self, name: str, content_hash: str, text: str) -> bool:
        """Store a persona version's full text once per (name, hash); True if it was new.

        The unique key, not a read first, decides: two processes loading the same file agree.
        """
        try:
            async with self._sessions.begin() as session:
                session.add(PersonaVersion(name=name, hash=content_hash, text=text))
        except IntegrityError:
            return False
        return True

    async def persona_versions(self, name: str) -> list[StoredPersonaVersion]:
        """Every stored version of persona ``name``, oldest first."""
        stmt = (
            select(PersonaVersion)
            .where(PersonaVersion.name == name)
            .order_by(PersonaVersion.first_seen, PersonaVersion.id)
        )
        async with self._sessions() as session:
            return [StoredPersonaVersion.from_row(row) for row in (await session.scalars(stmt)).all()]

    async def record_vote(
        self, turn_id: int, *, platform: str, voter: str, vote: str, delivery_id: str
    ) -> VoteResult:
        """One user's 👍/👎 on a turn, with its delivery claim (:mod:`botkit.store.feedback`)."""
        return await record_vote(
            self._sessions,
            turn_id=turn_id,
            platform=platform,
            voter=voter,
            vote=vote,
            delivery_id=delivery_id,
        )

    async def votes_on(self, turn_id: int) -> list[StoredVote]:
        """The votes on one turn (its reply row's id), oldest first."""
        return await votes_on(self._sessions, turn_id)

    async def version_feedback(
        self, *, since: timedelta | None = None, persona: str | None = None
    ) -> list[VersionFeedback]:
        """Replies and votes per persona version, for turns of the last ``since``."""
        cutoff = utcnow() - since if since is not None else None
        return await version_feedback(self._sessions, since=cutoff, persona=persona)


def _without(answer: str, notices: Collection[str]) -> str:
    for notice in notices:
        answer = strip_notice(answer, notice)
    return answer
