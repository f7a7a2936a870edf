"""The conversation store: per-thread history, turns and exactly-once delivery claims, in SQL.

Every method is one short transaction (a turn's adopt and reply-row updates share theirs with
the other turns' writes that wait at the same time: :mod:`botkit.store.group`), so a bot process
holds no locks between awaits on the model, and every "get or create" relies on a unique
constraint rather than a read-then-write check, which is what keeps it correct with several
tasks or processes on one database.
"""

from __future__ import annotations

import dataclasses
import os
import socket
from collections.abc import Collection
from datetime import datetime, timedelta
from typing import Any, NotRequired, TypedDict, Unpack

from sqlalchemy import (
    Boolean,
    ColumnElement,
    Insert,
    Select,
    bindparam,
    delete,
    insert,
    literal_column,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, NotSupportedError, ProgrammingError
from sqlalchemy.exc import TimeoutError as SQLAlchemyTimeoutError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, async_sessionmaker
from sqlalchemy.orm import aliased

from botkit.store.audit import AuditRecord, StoredPersonaVersion
from botkit.store.database import POOL_SIZE, StoreError, is_sqlite, open_engine, safe_url
from botkit.store.feedback import (
    StoredVote,
    VersionFeedback,
    VoteResult,
    record_vote,
    version_feedback,
    votes_on,
)
from botkit.store.group import WriteGroup
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
from botkit.store.prepared import Prepared
from botkit.store.records import HistoryTurn, StoredMessage, TurnIds, WorkerRecord
from botkit.store.sessions import GatedSessions
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


# -- the per-turn statements, built once ------------------------------------------------------
# A turn runs a handful of statements; building each anew per call (its cache key, the ORM's
# unit of work around it) cost more CPU than the SQL itself (benchmarks/bench_store_turn.py), so
# they are Core statements built here once and executed with parameters on a bare connection.
# On SQLite each runs in one round trip to aiosqlite's thread (botkit.store.prepared).
_INSERT_MESSAGE = Prepared(insert(Message).returning(Message.id))
_TOUCH_CONVERSATION = Prepared(
    update(Conversation)
    .where(Conversation.id == bindparam("b_conversation"))
    .values(updated_at=bindparam("b_now"))
)
# An assistant row, only while unfinished (a late checkpoint must not overwrite the final row);
# executed with the SET columns as parameters, one row or many (executemany) at once.
# (An OR of equalities, not IN: an expanding IN parameter cannot go into an executemany.)
_UPDATE_UNFINISHED = update(Message).where(
    Message.id == bindparam("b_id"),
    Message.role == "assistant",
    or_(*(Message.status == status for status in UNFINISHED_STATUSES)),
)
_CHECKPOINTS = Prepared(_UPDATE_UNFINISHED)
_UPDATE_ASSISTANT = Prepared(
    update(Message).where(Message.id == bindparam("b_id"), Message.role == "assistant").returning(Message.id)
)

# Adopting an inbox row: the reply row only while it is unadopted, then its question.
_ADOPT_REPLY = Prepared(
    update(Message)
    .where(
        Message.id == bindparam("b_id"),
        Message.role == "assistant",
        Message.status == "queued",
        Message.persona_name.is_(None),
    )
    .returning(Message.id)
)
_ADOPT_QUESTION = Prepared(update(Message).where(Message.id == bindparam("b_id"), Message.role == "user"))


def _upserts(dialect: str) -> tuple[Prepared, Insert, Prepared]:
    """(conversation get-or-create unless the delivery is claimed, conversation create-if-missing,
    delivery claim) for ``dialect``.

    The conversation's upsert touches ``updated_at`` and returns (id, created_at): one statement
    whether or not the thread is new, and ``created_at`` equal to the value sent says it was
    created now (so its first turn need not read a history it cannot have). It is an INSERT ...
    SELECT whose SELECT has no row when the delivery (``d_platform``, ``d_delivery``) is claimed
    already: then nothing is written and nothing returned, so an intake that is a duplicate
    writes nothing it would have to roll back (its transaction is shared: botkit.store.group).
    The claim is INSERT ... ON CONFLICT DO NOTHING RETURNING: no row back means another caller
    claimed it first, without an IntegrityError (and its rollback) as the signal. Only the
    named unique key is absorbed: any other violation (a foreign key) still raises.
    """
    dialect_insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    key = ["platform", "workspace", "channel", "thread"]
    columns = [*key, "created_at", "updated_at"]
    claimed = (
        select(Delivery.id)
        .where(Delivery.platform == bindparam("d_platform"), Delivery.delivery_id == bindparam("d_delivery"))
        .exists()
    )
    unless_claimed = select(
        *(bindparam(name, type_=Conversation.__table__.c[name].type) for name in columns)
    ).where(~claimed)
    conversation = dialect_insert(Conversation).from_select(columns, unless_claimed)
    upsert = conversation.on_conflict_do_update(
        index_elements=key, set_={"updated_at": conversation.excluded.updated_at}
    ).returning(Conversation.id, Conversation.created_at)
    create = (
        dialect_insert(Conversation).on_conflict_do_nothing(index_elements=key).returning(Conversation.id)
    )
    claim = (
        dialect_insert(Delivery)
        .on_conflict_do_nothing(index_elements=["platform", "delivery_id"])
        .returning(Delivery.id)
    )
    return Prepared(upsert), create, Prepared(claim)


_UPSERTS = {name: _upserts(name) for name in ("postgresql", "sqlite")}


def _dialect(connection: AsyncConnection) -> str:
    return "postgresql" if connection.dialect.name == "postgresql" else "sqlite"


async def _add_turn_rows(
    connection: AsyncConnection,
    common: dict[str, Any],
    *,
    user_text: str,
    user_id: str | None,
    status: str,
    platform_message_ids: list[str] | None = None,
    reply_user: str | None = None,
    owner: str | None = None,
    touch: bool = True,
) -> TurnIds:
    """The question row and its unfinished reply row (``owner``: the worker answering it),
    inside the caller's transaction; ``touch``: also set the conversation's ``updated_at``
    (False where the caller's upsert did)."""
    now = utcnow()
    row = {
        **common,
        "reasoning": None,
        "created_at": now,
        "updated_at": now,
    }
    asked = (
        await _INSERT_MESSAGE.rows(
            connection,
            {
                **row,
                "role": "user",
                "content": user_text,
                "status": "complete",
                "user_id": user_id,
                "platform_message_ids": [],
                "reply_to_id": None,
                "owner": None,
            },
        )
    )[0][0]
    reply = (
        await _INSERT_MESSAGE.rows(
            connection,
            {
                **row,
                "role": "assistant",
                "content": "",
                "status": status,
                "user_id": reply_user,
                "platform_message_ids": list(platform_message_ids or []),
                "reply_to_id": asked,
                "owner": owner,
            },
        )
    )[0][0]
    if touch:
        await _TOUCH_CONVERSATION.rows(
            connection, {"b_conversation": common["conversation_id"], "b_now": now}
        )
    return TurnIds(
        user_message_id=asked, assistant_message_id=reply, conversation_id=common["conversation_id"]
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


def _host() -> str:
    return socket.gethostname()


_ASKED = aliased(Message)
# Built once: building it per call (the alias's columns) was a visible part of a turn's CPU.
_HISTORY = Prepared(
    select(_ASKED.content, Message.content)
    .join(_ASKED, Message.reply_to_id == _ASKED.id)
    .where(
        Message.conversation_id == bindparam("conversation_id"),
        Message.role == "assistant",
        Message.status == "complete",
        Message.content != "",
    )
    .order_by(Message.id.desc())
    .limit(bindparam("limit"))
)


def _ms(value: float | None) -> int | None:
    """Timings arrive as floats from the clock; milliseconds are stored as whole numbers."""
    return None if value is None else round(value)


#: Seconds by which a conversation's ``updated_at`` may trail a row created in it (another
#: host's clock): :func:`recorded_elsewhere_query` reads conversations touched that much earlier.
TOUCH_SLACK = timedelta(minutes=5)


def recorded_elsewhere_query(key: tuple[str, str, str, str], turn: int, since: datetime) -> Select[Any]:
    """:meth:`ConversationStore.recorded_elsewhere`'s statement. The channel's conversations
    touched since (every turn's rows touch theirs: :func:`_add_turn_rows`), so that it reads
    the index of those conversations' rows, not every row of ``messages`` (nothing indexes
    ``created_at``): a restart pass on a big table stays as fast as the channel is recent."""
    platform, workspace, channel, _ = key
    return (
        select(Message.platform_message_ids)
        .join(Conversation, Conversation.id == Message.conversation_id)
        .where(Conversation.platform == platform, Conversation.workspace == workspace)
        .where(Conversation.channel == channel, Conversation.updated_at >= since - TOUCH_SLACK)
        .where(Message.role == "assistant", Message.id != turn, Message.created_at >= since)
    )


class ConversationStore:
    """Async access to the botkit database; create with :meth:`open`, release with :meth:`close`."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._sessions = GatedSessions(async_sessionmaker(engine, expire_on_commit=False), POOL_SIZE)
        self._group = WriteGroup(self._sessions)
        #: This process's id in ``workers`` once :meth:`register_worker` ran; stamped on every
        #: reply row it writes, so another process's restart pass leaves them alone.
        self.worker_id: str | None = None
        #: Turns this process claimed to repair (:meth:`claim_unfinished`) and has not settled yet.
        self.claimed: set[int] = set()

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

    @property
    def sessions(self) -> GatedSessions:
        """The session factory, for query modules beside this one (:mod:`botkit.store.rights`)."""
        return self._sessions

    async def close(self) -> None:
        await self._engine.dispose()

    async def claim_delivery(
        self, platform: str, delivery_id: str, *, conversation_id: int | None = None
    ) -> bool:
        """Record a platform event; True only for the one caller (in any process) that got it first.

        Platforms redeliver events they think were missed; the loser of the unique-key race must
        not answer again.
        """
        async with self._sessions.connect() as connection:
            claim = _UPSERTS[_dialect(connection)][2]
            params = {"platform": platform, "delivery_id": delivery_id, "conversation_id": conversation_id}
            claimed = await claim.first(connection, {**params, "received_at": utcnow()})
        return claimed is not None

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
        row (no persona, no placeholder yet), in ONE transaction (shared with the other writes
        waiting then: :mod:`botkit.store.group`); None for a duplicate delivery, which writes
        nothing.

        This is what "accepted" means: the adapter acknowledges the platform only after this
        returned, so an event is either on disk (claimed, and findable by the restart pass as
        an inbox row without a placeholder) or unacknowledged (the platform redelivers it), never
        acknowledged and forgotten. One transaction, not claim-then-insert, because a process that
        died between the two would leave a claim that drops the redelivery and no row to repair.
        ``key`` is (workspace, channel, thread) on ``platform``.
        """
        now = utcnow()

        async def intake(connection: AsyncConnection) -> TurnIds | None:
            claimed = await self._claim(connection, platform, delivery_id, key, now)
            if claimed is None:  # a duplicate: claimed already
                return None
            conversation, created_at = claimed
            common: dict[str, Any] = {"conversation_id": conversation, "delivery_id": delivery_id}
            # The reply row has the asker too: whom the restart pass tells if no turn adopts it.
            ids = await _add_turn_rows(
                connection,
                common,
                user_text=user_text,
                user_id=user_id,
                status="queued",
                reply_user=user_id,
                owner=self.worker_id,
                touch=False,  # the upsert set updated_at
            )
            return dataclasses.replace(ids, new_conversation=created_at == now)

        # With the other intakes and turn writes waiting now, in one transaction
        # (botkit.store.group): a burst of mentions shares its commits instead of queueing for
        # SQLite's write lock one transaction at a time. Still committed when this returns.
        return await self._group.write(intake)

    async def _claim(
        self,
        connection: AsyncConnection,
        platform: str,
        delivery_id: str,
        key: tuple[str, str, str],
        now: datetime,
    ) -> tuple[int, datetime] | None:
        """In :meth:`accept`'s transaction: the conversation (created or touched) and the
        delivery's claim; its id and creation time, or None for a claimed delivery. That writes
        nothing (the upsert is guarded by the claim: see :func:`_upserts`), unless another
        process claimed it between this upsert and this claim (a race between processes, on
        PostgreSQL): that loser's upsert is not rolled back (its transaction holds other
        callers' writes), and it only touched, or at worst created empty, the thread that the
        winner's message belongs to."""
        workspace, channel, thread = key
        upsert, _, claim = _UPSERTS[_dialect(connection)]
        upserted = await upsert.first(
            connection,
            {
                "platform": platform,
                "workspace": workspace,
                "channel": channel,
                "thread": thread,
                "created_at": now,
                "updated_at": now,
                "d_platform": platform,
                "d_delivery": delivery_id,
            },
        )
        if upserted is None:  # claimed already (by an earlier group, or earlier in this one)
            return None
        conversation, created_at = upserted
        claimed = await claim.first(
            connection,
            {
                "platform": platform,
                "delivery_id": delivery_id,
                "conversation_id": conversation,
                "received_at": now,
            },
        )
        if claimed is None:
            return None
        return conversation, created_at

    async def adopt_inbox(
        self,
        turn: TurnIds,
        *,
        user_text: str,
        persona_name: str | None,
        persona_hash: str | None,
        model: str | None,
        platform_message_ids: list[str],
        streaming: bool = False,
    ) -> bool:
        """The turn that answers an inbox row takes it over: the question as the chain settled
        it, the persona (chosen after acceptance) and the placeholder's id. False if the row is
        no longer an unstarted inbox row (already adopted, or finished by a restart pass).

        ``streaming``: the row becomes ``streaming`` in the same write (a turn with no turn
        before it in its thread calls the model at once: one statement and commit fewer than
        :meth:`mark_streaming` after it)."""
        values = {"persona_name": persona_name, "persona_hash": persona_hash, "model": model}
        now = utcnow()

        async def adopt(connection: AsyncConnection) -> bool:
            adopted = await _ADOPT_REPLY.first(
                connection,
                {
                    **values,
                    "b_id": turn.assistant_message_id,
                    "updated_at": now,
                    "platform_message_ids": list(platform_message_ids),
                    "status": "streaming" if streaming else "queued",
                },
            )
            if adopted is None:
                return False
            await _ADOPT_QUESTION.rows(
                connection,
                {**values, "b_id": turn.user_message_id, "updated_at": now, "content": user_text},
            )
            return True

        # With the other turns' writes waiting now, in one transaction (botkit.store.group).
        return await self._group.write(adopt)

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
        async with self._sessions.read() as connection:
            found = (await connection.execute(select(Conversation.id).where(*key))).scalar()
        if found is not None:
            return int(found)
        # A transaction of its own that starts with its write: a SQLite reader upgraded to a
        # writer fails at once ("database is locked") when another wrote in between.
        async with self._sessions.connect() as connection:
            now = utcnow()
            create = _UPSERTS[_dialect(connection)][1]
            params = {"platform": platform, "workspace": workspace, "channel": channel, "thread": thread}
            found = (
                await connection.execute(create, {**params, "created_at": now, "updated_at": now})
            ).scalar()
            if found is None:  # another task or process created it between our select and insert
                found = (await connection.execute(select(Conversation.id).where(*key))).scalar_one()
        return int(found)

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
        async with self._sessions.read() as connection:
            rows = await _HISTORY.rows(connection, {"conversation_id": conversation_id, "limit": limit})
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
        async with self._sessions.connect() as connection:
            return await _add_turn_rows(
                connection,
                common,
                user_text=user_text,
                user_id=user_id,
                status=status,
                platform_message_ids=platform_message_ids,
                owner=self.worker_id,
            )

    async def mark_streaming(
        self, assistant_message_id: int, *, platform_message_ids: list[str] | None = None
    ) -> None:
        """A queued turn got its thread: the model is being called (``platform_message_ids``:
        the placeholder's id as well, where it was posted after the turn's rows were written)."""
        values: dict[str, Any] = {"status": "streaming"}
        if platform_message_ids is not None:
            values["platform_message_ids"] = list(platform_message_ids)
        await self._update_assistant(assistant_message_id, values)

    async def checkpoint(self, assistant_message_id: int, *, answer: str, reasoning: str | None) -> None:
        """The answer so far, while it streams: a crash then leaves its partial text on record.

        Only while the row is unfinished: a checkpoint held up by a locked or slow database must
        not overwrite the final answer that was stored after it.
        """
        await self.checkpoints([(assistant_message_id, answer, reasoning)])

    async def checkpoints(self, rows: Collection[tuple[int, str, str | None]]) -> None:
        """:meth:`checkpoint` for many streaming turns at once: one executemany, one commit.

        Rows are ``(assistant_message_id, answer, reasoning)``; each applies only while its row
        is unfinished, as for one. What :mod:`botkit.pipeline.checkpoints` sends every interval.
        """
        if not rows:
            return
        now = utcnow()
        params = [{"b_id": i, "content": a, "reasoning": r, "updated_at": now} for i, a, r in rows]
        async with self._sessions.connect() as connection:
            await _CHECKPOINTS.many(connection, params)

    async def record_message_ids(self, assistant_message_id: int, ids: list[str]) -> None:
        """Remember the platform messages that carry the reply (so a restart can edit them)."""
        await self._update_assistant(assistant_message_id, {"platform_message_ids": list(ids)})

    async def finish_turn(self, assistant_message_id: int, **outcome: Unpack[Outcome]) -> None:
        """Store the outcome of a turn; ``platform_message_ids=None`` keeps the recorded ones."""
        await self._update_assistant(assistant_message_id, _finish_values(**outcome))

    async def _update_assistant(self, message_id: int, values: dict[str, Any]) -> None:
        """One reply row's columns, grouped with the other turns' writes waiting now
        (botkit.store.group): a final write, a ``streaming`` mark, the placeholder's id."""
        params = {**values, "b_id": message_id, "updated_at": utcnow()}

        async def update(connection: AsyncConnection) -> tuple[Any, ...] | None:
            return await _UPDATE_ASSISTANT.first(connection, params)

        if await self._group.write(update) is None:
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

    async def recorded_elsewhere(
        self, key: tuple[str, str, str, str], turn: int, since: datetime
    ) -> set[str]:
        """The platform message ids recorded by assistant rows other than ``turn`` created at or
        after ``since`` in the conversations of ``key``'s channel (its threads too): a message
        one of them holds is that turn's, so the restart pass never takes it for ``turn``'s
        when it looks for a message by its text (:mod:`botkit.repair`)."""
        async with self._sessions() as session:
            rows = (await session.scalars(recorded_elsewhere_query(key, turn, since))).all()
        return {str(i) for ids in rows for i in ids or []}

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
        params = {**_finish_values(**outcome), "b_id": assistant_message_id, "updated_at": utcnow()}
        async with self._sessions.connect() as connection:
            settled = (
                await connection.execute(_UPDATE_UNFINISHED.returning(Message.id), params)
            ).scalar() is not None
        self.claimed.discard(assistant_message_id)  # settled now, or by someone else
        return settled

    async def claim_unfinished(self, assistant_message_id: int, owner: str | None) -> bool:
        """Take a turn a gone process (``owner``) left unfinished, for this process to repair:
        its row becomes this process's, still unfinished, only if it still is and still had that
        owner. True for the one process (of several sweeping at once) whose update took it.

        The row is settled only after the platform shows what happened
        (:func:`botkit.repair.repair_leftover`): a kill in between leaves it unfinished and
        owned by a process that is gone, so the next start repairs it again."""
        taken = await self._hand_over(assistant_message_id, owner, self.worker_id)
        if taken:
            self.claimed.add(assistant_message_id)
        return taken

    async def release_unfinished(self, assistant_message_id: int, owner: str | None) -> bool:
        """Give a turn this process claimed (:meth:`claim_unfinished`) back to ``owner``, the gone
        process it was taken from, still unfinished: this process cannot read the platform that
        decides it, so a start that can (or a serving process's sweep) takes it as before.
        True if the row was still this process's and unfinished."""
        released = await self._hand_over(assistant_message_id, self.worker_id, owner)
        self.claimed.discard(assistant_message_id)
        return released

    async def _hand_over(self, assistant_message_id: int, owner: str | None, to: str | None) -> bool:
        """The unfinished reply row owned by ``owner`` becomes ``to``'s (a conditional update);
        True if it was still unfinished and ``owner``'s."""
        stmt = (
            update(Message)
            .where(
                Message.id == assistant_message_id,
                Message.role == "assistant",
                Message.status.in_(UNFINISHED_STATUSES),
                Message.owner.is_(None) if owner is None else Message.owner == owner,
            )
            .values(owner=to)
            .returning(Message.id)
        )
        async with self._sessions.begin() as session:
            return (await session.execute(stmt)).scalar() is not None

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
