"""What a botkit process that is gone left unfinished, and which processes are gone.

Every accepted message ends in one reply or one visible note (docs/reliability.md). A process
killed mid-turn leaves rows ``queued`` or ``streaming``; the next start (and, for processes on
other hosts, a periodic sweep) stores them as interrupted and has their messages say so.

Several processes may share a database (two workers, a rolling restart, ``botkit chat`` beside
``botkit run``), so "unfinished" is not "abandoned": each process registers in ``workers`` and
stamps the reply rows it writes (:class:`~botkit.store.models.Worker`), and only rows of a
process that is **gone** are touched:

- at start-up: a process on this host whose pid no longer runs (or is our own pid: a container
  restarted in place), and rows from before ownership was recorded (no owner);
- by the sweep, on any host: a process whose heartbeat this process has seen unchanged for
  ``database.worker_timeout`` seconds of its own clock (observed, so clocks that disagree between
  hosts and a database outage that stops every heartbeat do not make a live process look gone).

Settling a row is a conditional update (:meth:`ConversationStore.settle_unfinished`), so when
several processes sweep at once exactly one of them repairs each message.
"""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from botkit.events import ConversationKey
from botkit.store import ConversationStore
from botkit.store.records import StoredMessage, WorkerRecord
from botkit.store.spool import SpooledNote, SpooledWrite, Strays, WriteSpool

log = logging.getLogger("botkit.app")

LEFTOVER_NOTE = "⚠️ _Interrupted: botkit restarted before this answer was finished. Please ask again._"
UNANSWERED_NOTE = "⚠️ _Interrupted: botkit restarted before it could answer this. Please ask again._"
#: Under the restart's note where its reply's first message may exist unfound (the search for it
#: stopped at a bound: botkit.repair), so that a placeholder still "Thinking…" is explained.
LOST_PLACEHOLDER_NOTE = "_If an earlier reply to this still says “Thinking…”, the same restart cut it off._"

#: The first character of this botkit's worker ids (:func:`new_worker_id`): not a hex digit,
#: which every worker id of an older botkit is (``uuid4().hex``). The rows a worker writes
#: carry its id (``owner``), so a restart can tell a turn an older botkit started
#: (:func:`started_by_older`), whose reply's first message that botkit keyed its own way.
WORKER_TAG = "q"


def new_worker_id() -> str:
    """This process's id in ``workers`` (32 characters, as the column holds): :data:`WORKER_TAG`
    and 31 random hex digits."""
    return WORKER_TAG + uuid.uuid4().hex[1:]


def started_by_older(owner: str | None) -> bool:
    """The turn whose row ``owner`` wrote was started by a botkit older than this one's worker
    ids (:data:`WORKER_TAG`), or before rows carried their owner (None): its reply's first
    message may carry what that botkit put on it (:attr:`~botkit.events.LiveReply.older_turn`).
    A row claimed since by a restart pass of this botkit carries that pass's id (a second kill
    during the pass: it reads as this botkit's)."""
    return owner is None or not owner.startswith(WORKER_TAG)


@dataclass(frozen=True)
class Leftover:
    """A reply a previous process left unfinished on the platform: its stored partial answer."""

    key: ConversationKey
    message_id: str  # "": no reply message was recorded (see botkit.repair)
    partial: str
    user: str | None = None
    turn: int = 0  # the assistant row (its messages' marker: botkit.markers)
    # The delivery id of the event the turn answers (Discord: the question's message id or the
    # interaction id): what a platform without markers finds the turn's messages by.
    question: str | None = None
    # When the turn was accepted (Unix seconds, its row's creation): where a conversation's
    # history must be scanned for the turn's messages (a Slack DM), from shortly before it.
    asked_at: float | None = None
    inbox: bool = False  # accepted only: no turn adopted it, no answer began
    started: bool = False  # the row was ``streaming``: the model was called, its answer shown
    # The final view's intent, spooled before its request went out (botkit.store.spool): the
    # platform decides whether it was applied.
    intent: SpooledWrite | None = None
    strays: tuple[str, ...] = ()  # replaced messages whose deletion was cut (to remove)
    # A previous restart pass was about to tell the asker in a new reply at this time (Unix
    # seconds, its spooled note), and was killed before it settled the row: the note may show.
    told_at: float | None = None
    # Whether that note carried the sentence on an earlier reply still "Thinking…" (None:
    # unknown, a record from before this was kept): a note cut short is finished in its words.
    told_cut: bool | None = None
    # Every recorded message of the reply, in order (a long answer's continuations after its
    # first); ``message_id`` is the last of them.
    message_ids: tuple[str, ...] = ()
    settled: bool = False  # the row was final already: only its strays are left to remove
    # (Settled only) the turn's streams recorded as left without its marker: to mark.
    unmarked: tuple[str, ...] = ()
    # (Settled only) those of them whose refused marking carried the final's 👍/👎: given them.
    buttoned: tuple[str, ...] = ()
    # Streams recorded as other turns' and still unmarked, in this conversation: never taken
    # for this turn's own (an unmarked stream is otherwise found by where it is).
    others: frozenset[str] = frozenset()
    # The row is left unfinished (claimed by the repairing process) until the platform shows
    # what happened, so a second kill meanwhile leaves it for the next start: what to store then
    # (unless its intent is shown). None: settled already.
    interrupted: Mapping[str, Any] | None = None
    # The gone process the row was claimed from: it goes back to it when this process cannot
    # read the platform that decides the turn (botkit.repair.leave_unread).
    owner: str | None = None

    @property
    def recorded(self) -> tuple[str, ...]:
        """The reply's recorded messages, first to last (at least ``message_id``, if any)."""
        if self.message_ids:
            return self.message_ids
        return (self.message_id,) if self.message_id else ()

    @property
    def text(self) -> str:
        """The partial answer as stored, and the note that says it was interrupted."""
        return f"{self.partial}\n\n{LEFTOVER_NOTE}" if self.partial else LEFTOVER_NOTE

    def repaired(self, shown: str | None) -> str | None:
        """What the message should show, given what it shows now (None: unknown, the adapter
        cannot read messages); None to leave it alone.

        A message that already ends in an interruption note (this pass ran before, or botkit
        shut down in time to say so) is left alone. Anything else gets :attr:`text`: the stored
        partial answer plus the note, whatever it shows, because a reply whose *complete*
        answer was shown never gets here. Its final write was either stored or spooled (see
        :mod:`botkit.store.spool`) and is stored at start-up instead of being repaired. What a
        message shows cannot tell that case apart from a partial answer that was edited a moment
        ahead of its last checkpoint (the text grows the same way in both), so it is not used to
        guess; the partial answer is the stored one, never a longer platform text whose
        formatting (Slack mrkdwn, a continuation's tail) cannot be taken back.
        """
        if shown is not None and _ends_with_interruption_note(shown):
            return None
        return self.text


def _ends_with_interruption_note(shown: str) -> bool:
    """The last paragraph is a "⚠️ Interrupted: botkit …" note (restart or shutdown)."""
    last = shown.strip().rsplit("\n\n", 1)[-1].strip()
    return last.startswith("⚠️") and "Interrupted: botkit" in last


def pid_running(pid: int) -> bool:
    """Whether a process with this pid runs on this host (a zombie does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: it runs
        return True
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True  # no /proc (not Linux): kill(0) said it exists


def gone_on_this_host(workers: Collection[WorkerRecord], me: str | None) -> set[str]:
    """Workers registered from this host whose process no longer runs; our own pid under another
    id too (the same container restarted: pid 1 again)."""
    host, own_pid = socket.gethostname(), os.getpid()
    return {
        w.id
        for w in workers
        if w.id != me and w.host == host and (w.pid == own_pid or not pid_running(w.pid))
    }


@dataclass
class HeartbeatWatch:
    """Which workers' heartbeats have stood still for ``timeout`` seconds of *our* clock."""

    timeout: float
    _seen: dict[str, tuple[object, float]] = field(default_factory=dict)

    def gone(self, workers: Collection[WorkerRecord], me: str | None) -> set[str]:
        now = time.monotonic()
        current = {w.id: w for w in workers if w.id != me}
        for worker_id in list(self._seen):
            if worker_id not in current:
                del self._seen[worker_id]
        stale: set[str] = set()
        for worker_id, worker in current.items():
            beat, since = self._seen.get(worker_id, (None, now))
            if beat != worker.heartbeat_at:
                self._seen[worker_id] = (worker.heartbeat_at, now)
            elif now - since >= self.timeout:
                stale.add(worker_id)
        return stale

    def reset(self) -> None:
        """Our own view was interrupted (a failed sweep): observe afresh."""
        self._seen.clear()


async def settle_abandoned(
    store: ConversationStore,
    spool: WriteSpool | None,
    judge: Callable[[Collection[WorkerRecord]], set[str]],
    *,
    ownerless: bool,
    strays: bool = False,
    leave: Collection[int] = (),
    tried: Collection[int] = (),
) -> tuple[list[Leftover], set[str]]:
    """Finish the turns left ``queued`` or ``streaming`` by workers that are not alive: those
    ``judge`` finds gone among the registered ones, those no longer registered (retired, or
    forgotten as gone), and rows with no owner if ``ownerless``. Returns the leftovers to repair
    on the platform and the workers found gone.

    The unfinished rows are read before the workers: a row's owner registered before writing
    it, so a process starting meanwhile is never taken for one that is gone.

    An inbox row (accepted and persisted, but no turn adopted it: no persona, no placeholder)
    is stored as interrupted too and returned with no message id: its asker is told in a new
    reply to ask again, so every accepted message ends in one reply or one visible note. So is a
    turn that had no message yet (it showed a status line instead of a placeholder, or its
    placeholder was still on its way): the new reply carries its checkpointed partial answer.

    Every turn returned is *claimed* (:meth:`ConversationStore.claim_unfinished`, a conditional
    update: of several processes sweeping at once one takes it), not settled, with what to store:
    :mod:`botkit.repair` settles it once the platform shows what happened (read, and edited or
    told), so a second kill before that leaves it unfinished, owned by a process that is gone,
    for the next start to repair again (the repair is idempotent: a message that already says it
    was interrupted is left alone).

    A turn whose final write was in the spool when its process died had its answer shown in
    full: the spooled write is stored as it was meant to be (usually ``complete``) and its
    message is not touched. Every other one is stored as interrupted with its checkpointed
    partial answer, and returned to be repaired on the platform; one whose final view's
    *intent* was spooled (the request was in flight) is returned with it, for the platform to
    decide (:mod:`botkit.repair`).

    With ``strays`` (at start-up), the messages a text posted anew replaced and a crash left
    undeleted come back too, with their turn's leftover or on their own (its row is final).
    The streams recorded as left unmarked come back as :func:`_with_unmarked` says (``tried``).
    The turns in ``leave`` are not taken (nor their spool records touched): this process found
    them before and cannot read the platform that decides them (:func:`botkit.repair.leave_unread`).
    """
    entries = spool.entries() if spool is not None else []
    replaced = {s.turn: s for s in spool.strays()} if spool is not None and strays else {}
    notes = {n.turn: n for n in spool.notes.all()} if spool is not None else {}
    spooled = {entry.turn: entry for entry in entries}
    unfinished = await store.unfinished_turns()
    workers = await store.workers()
    gone = judge(workers.values())
    alive = set(workers) - gone
    taken = [t for t in unfinished if t.id not in leave and _abandoned(store, t, alive, ownerless=ownerless)]
    leftovers = await _take(store, taken, spooled, replaced, notes)
    if spool is not None:
        still_open = {turn.id for turn in unfinished}
        leftovers += _strays_of_final_turns(replaced.values(), still_open)
        leftovers = _with_unmarked(leftovers, spool.unmarked.all(), still_open, tried)
        await _tidy_spool(spool, entries, spooled, notes, still_open, leftovers)
    return leftovers, gone


def _with_unmarked(
    leftovers: list[Leftover], records: Collection[Strays], still_open: set[int], tried: Collection[int]
) -> list[Leftover]:
    """``leftovers``, each with the unmarked streams recorded for other turns of its
    conversation (:attr:`Leftover.others`: never taken as its own), and a settled leftover for
    each record (the spool's ``unmarked``) of a turn whose row is final, to mark its streams,
    unless the turn is in ``tried`` (this process tried it already: a sweep does not ask the
    platform again after a refusal; the next start does). A still unfinished turn's records
    wait: its own repair, or its live process, comes first."""
    by_key: dict[tuple[str, ...], list[Strays]] = {}
    for record in records:
        by_key.setdefault(tuple(record.key), []).append(record)

    def others(key: ConversationKey, turn: int) -> frozenset[str]:
        found = by_key.get((key.platform, key.workspace, key.channel, key.thread), [])
        return frozenset(i for r in found if r.turn != turn for i in r.message_ids)

    marked = [
        Leftover(
            ConversationKey(*r.key),
            "",
            "",
            turn=r.turn,
            unmarked=r.message_ids,
            buttoned=r.buttoned,
            settled=True,
        )
        for r in records
        if r.turn not in still_open and r.turn not in tried
    ]
    return [replace(x, others=others(x.key, x.turn)) for x in [*leftovers, *marked]]


async def _take(
    store: ConversationStore,
    turns: Collection[StoredMessage],
    spooled: dict[int, SpooledWrite],
    replaced: dict[int, Strays],
    notes: Mapping[int, SpooledNote],
) -> list[Leftover]:
    """Claim each abandoned turn (:func:`_settle`) with its spool records: its final write or
    intent and its strays are taken out of ``spooled`` and ``replaced`` (their files go once
    acted on, :mod:`botkit.repair`), its note's time is kept (its file goes once the row is
    settled)."""
    leftovers: list[Leftover] = []
    for turn in turns:
        leftover = await _settle(store, turn, spooled.pop(turn.id, None))
        cut = replaced.pop(turn.id, None)
        note = notes.get(turn.id)
        if leftover is not None:
            told, told_cut = (None, None) if note is None else (note.at, note.cut)
            strays = () if cut is None else cut.message_ids
            leftovers.append(replace(leftover, strays=strays, told_at=told, told_cut=told_cut))
    return leftovers


async def _tidy_spool(
    spool: WriteSpool,
    entries: Collection[SpooledWrite],
    untaken: Mapping[int, SpooledWrite],
    notes: Mapping[int, SpooledNote],
    still_open: set[int],
    leftovers: Collection[Leftover],
) -> None:
    """After a sweep, drop the records whose rows are settled: notes of rows settled before
    their file went, and spooled writes stored now or landed before their file went
    (``untaken``: the entries no swept turn took). The intents of the leftovers stay on disk
    until the platform has been read."""
    for turn_id in notes.keys() - still_open:
        await spool.notes.discard(turn_id)
    kept = {leftover.turn for leftover in leftovers if leftover.intent is not None}
    for entry in entries:
        if (entry.turn not in untaken or entry.turn not in still_open) and entry.turn not in kept:
            await spool.discard(entry.turn)


def _abandoned(store: ConversationStore, turn: StoredMessage, alive: set[str], *, ownerless: bool) -> bool:
    """Whether this sweep takes ``turn``: its owner is not alive (or it has none, with
    ``ownerless``), or this process claimed it and could not settle it (the database went away):
    that one is its own to finish, and no other process takes a live process's row."""
    if turn.id in store.claimed:
        return True
    return not (turn.owner in alive or (turn.owner is None and not ownerless))


def _strays_of_final_turns(cuts: Iterable[Strays], still_open: set[int]) -> list[Leftover]:
    """Leftovers for the replaced messages of turns stored (complete or not) before their
    deletion landed: only the strays are left to remove. A still unfinished turn's are not
    here: a live process's turn is its own to clean up."""
    return [
        Leftover(ConversationKey(*cut.key), "", "", turn=cut.turn, strays=cut.message_ids, settled=True)
        for cut in cuts
        if cut.turn not in still_open
    ]


async def _settle(
    store: ConversationStore, turn: StoredMessage, entry: SpooledWrite | None
) -> Leftover | None:
    intent = entry if entry is not None and entry.shown is not None else None
    if entry is not None and intent is None:
        log.warning(
            "turn %s in %s was shown in full but its final write was still waiting for the "
            "database when botkit stopped; storing it now (%s, %d characters)",
            turn.id,
            ConversationKey(*entry.key),
            entry.values.get("status"),
            len(entry.values.get("answer") or ""),
        )
        await store.settle_unfinished(turn.id, **entry.values)
        return None
    values: dict[str, Any] = {
        "status": "interrupted",
        "answer": turn.content or "",
        "reasoning": turn.reasoning or "",
        "error": "botkit stopped before the answer was finished",
    }
    # Claimed, not settled: the row is settled once the platform shows what happened
    # (botkit.repair), so a second kill in between leaves it for the next start, not a row
    # stored interrupted whose message still says "Thinking…".
    if not await store.claim_unfinished(turn.id, turn.owner):
        return None  # another process repairing at the same time took it, or it finished
    log.warning("turn %s was left %s by a botkit process that is gone; repairing it", turn.id, turn.status)
    key = await store.conversation_key(turn.conversation_id)
    if key is None:  # nowhere to show it: what the database knows
        await store.settle_unfinished(turn.id, **values)
        return None
    recorded = turn.platform_message_ids or []
    return Leftover(
        ConversationKey(*key),
        recorded[-1] if recorded else "",
        (turn.content or "").strip(),
        turn.user_id,
        turn=turn.id,
        question=turn.delivery_id,
        asked_at=_unix(turn.created_at),
        inbox=turn.status == "queued" and turn.persona_name is None,  # accepted only
        started=turn.status == "streaming",
        intent=intent,
        interrupted=values,
        owner=turn.owner,
        message_ids=tuple(recorded),
    )


def _unix(at: datetime) -> float:
    """A stored timestamp as Unix seconds: aware UTC as :class:`botkit.store.models.UTCDateTime`
    loads it on every backend; a naive value (read past that type) is UTC, as SQLite holds it."""
    return (at if at.tzinfo is not None else at.replace(tzinfo=UTC)).timestamp()
