"""Final writes waiting for the database, kept on local disk until it takes them.

A turn's answer is shown before it is stored (the user should not wait for SQL), so when the
database is away at that moment the only record that the answer was *complete* is the write
botkit keeps retrying in memory. If the process is killed meanwhile, the next start would find
the row still ``streaming`` with an older checkpoint, and what the platform shows cannot tell a
complete answer from a partial one that was edited just ahead of its last checkpoint. So every
final write is also written here before its first attempt, one small JSON file per turn, removed
when it lands; the next start stores what it finds here before it repairs anything.

A record survives a crash of the process (SIGKILL, OOM) and a power cut: each is written to a
temporary file, fsynced, renamed over its target and the directory fsynced (:func:`_write_durably`),
so after a cut the target holds the old record or the new one, never a torn or missing one (the
temporary file is a landed record's file kept as a spare where one is ready: :class:`_Spares`). The
blocking part runs on one worker thread (:func:`_worker`), never on the event loop: one, not
``asyncio.to_thread``'s pool, so records are written in the order they were asked for (a discard
never overtakes the save of the same file, a stray's removal never its addition). The turns'
records asked for one after another go as one batch (:class:`_Batch`: their files fsynced at
once, renamed in order, the directory fsynced once), so a burst of final views waits for one
round of flushes, not for one per turn before it. A caller awaits a
record where the next step relies on it (the intent, before the final view's request goes out)
and lets it overlap otherwise (the final write, beside its first database attempt, when an intent
already covers the window: :class:`~botkit.pipeline.recorder.FinalWrites`). The database stays
the record; this is its second chance.

Four more records close crash windows of the final view and of the restart (:mod:`botkit.repair`):

- an **intent** (a :class:`SpooledWrite` with ``shown``): written before the final view's first
  call goes out, with the messages as they will show and the row it would store. If the
  process dies with the request in flight, the next start reads the platform: it shows the
  intent (the call was applied) -> stored as meant, never edited; else it is interrupted.
  The final write replaces it (same file) once the view landed.
- **strays**: the messages a text posted anew replaced, until their deletion landed, so a
  process killed before that (the turn stored or not) has them removed at the next start;
- **unmarked streams** (same shape, ``unmarked-*.json``): a Slack native stream whose
  ``chat.stopStream`` and marking ``chat.update`` were both refused shows the turn's text
  without its marker, so a later turn's restart pass could take it for its own (an unmarked
  stream is found by where it is). Kept until the next start or a sweep has marked it; until
  then no other turn's pass takes it (:mod:`botkit.repair`);
- a **note**: the restart pass is about to tell the asker in a new reply (no message to
  repair), at this time. Where the platform's messages carry no readable marker (Discord), a
  pass killed after the note was posted and before the row was settled leaves the next start
  only this to find the note by (:meth:`botkit.adapter.Adapter.find_shown`), not a second one.

A file holds what the row will hold (the answer, reasoning, timings), so the directory deserves
the database's care. Files name their database (the URL without its password), so bots on other
databases sharing it do not mix.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import hashlib
import json
import logging
import os
import secrets
import socket
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from botkit.store.database import _sqlite_file, is_sqlite, parse_url, safe_url

log = logging.getLogger("botkit.store.spool")

T = TypeVar("T")

DEFAULT_DIR = Path("botkit-pending")

_POOLS: dict[str, ThreadPoolExecutor] = {}  # by thread name prefix
_POOLS_LOCK = threading.Lock()
_BATCH_LOCK = threading.Lock()
_OPEN_BATCH: _Batch | None = None  # records asked for since the worker's last other job


def _pool(name: str, threads: int) -> ThreadPoolExecutor:
    with _POOLS_LOCK:
        pool = _POOLS.get(name)
        if pool is None:
            pool = _POOLS[name] = ThreadPoolExecutor(max_workers=threads, thread_name_prefix=name)
        return pool


def _worker() -> ThreadPoolExecutor:
    """Every spool's file work, in order (see the module docstring)."""
    return _pool("botkit-spool", 1)


def _syncers() -> ThreadPoolExecutor:
    """A batch's temporary files, written and fsynced at once (:class:`_Batch`)."""
    return _pool("botkit-spool-sync", SYNC_LANES - 1)  # the worker fills a lane itself


def _submit(job: Callable[[], None], touches: Path | None = None) -> Future[None]:
    """``job`` on the worker, after everything asked for before it. A batch of records still
    open (it runs before ``job``) takes no record asked for after it that ``job`` could be
    ordered against: none of ``touches`` (the one file ``job`` removes), none at all if None."""
    global _OPEN_BATCH
    with _BATCH_LOCK:
        if touches is None or _OPEN_BATCH is None:
            _OPEN_BATCH = None
        else:
            _OPEN_BATCH.barred.add(touches)
        return _worker().submit(job)


@dataclass
class _Record:
    path: Path
    payload: bytes
    what: str
    sync_directory: bool
    done: Future[None]
    partial: Path | None = None  # the temporary file written and fsynced, renamed next
    reused: bool = False
    fd: int | None = None


@dataclass
class _Batch:
    """Records asked for one after another with no other spool job between them: one job on
    the worker writes them together, so a burst of turns ending at once (their final views'
    intents) waits for one round of flushes, not one after another: every temporary file is
    written and fsynced at once (in lanes, :func:`_fill_at_once`), then each is renamed over its record in
    the order asked, then their directory is fsynced once. Each record is as durable, and in
    the same order of steps, as :func:`_write_durably` makes one; each caller's future is done
    when its record is."""

    records: list[_Record] = field(default_factory=list)
    # Files a job asked for after this batch removes: a record for one of them goes after it.
    barred: set[Path] = field(default_factory=set)

    def takes(self, path: Path) -> bool:
        return path not in self.barred and all(r.path != path for r in self.records)


def _write_soon(path: Path, payload: bytes, what: str, *, sync_directory: bool) -> Future[None]:
    """A durable record (see :class:`_Batch`): joins the batch that is open, or opens one."""
    global _OPEN_BATCH
    done: Future[None] = Future()
    with _BATCH_LOCK:
        batch = _OPEN_BATCH
        if batch is None or not batch.takes(path):  # e.g. the same file twice: the second after
            batch = _OPEN_BATCH = _Batch()
            _worker().submit(_write_batch, batch)
        batch.records.append(_Record(path, payload, what, sync_directory, done))
    return done


@dataclass(frozen=True)
class SpooledWrite:
    """One turn's final write: :meth:`ConversationStore.finish_turn`'s keyword arguments."""

    turn: int  # the assistant message's id
    key: tuple[str, str, str, str]  # platform, workspace, channel, thread (for the logs)
    values: dict[str, Any]
    # An intent only: the final view's messages as the platform will show them (LiveReply.rendered),
    # about to be shown; None: the view was shown, ``values`` is the write to store.
    shown: tuple[str, ...] | None = None
    # The other forms the platform may show that view in (a fallback after the intent was
    # spooled: LiveReply.rendered_views), each like ``shown``.
    also: tuple[tuple[str, ...], ...] = ()
    # An intent only: the view's last message is meant to carry the turn's 👍/👎 buttons (a
    # complete model answer, feedback on, a platform that shows them): a restart that finds the
    # view shown without them adds them (botkit.repair).
    feedback: bool = False
    # An intent only: the view's first message is not one whose id the row holds (posted by the
    # view itself, or in place of the one it edits: LiveReply.moves), so a restart that finds
    # none of the turn's known messages showing it looks for it by its text (botkit.repair); a
    # plain final edit of a recorded message is not looked for so. A record without the field
    # (written before it existed) reads as True: what the version that wrote it did.
    anew: bool = True

    @property
    def views(self) -> tuple[tuple[str, ...], ...]:
        """Every form the intended final view may show in, the expected one first."""
        return () if self.shown is None else (self.shown, *self.also)


@dataclass(frozen=True)
class SpooledNote:
    """The restart pass told (or was about to tell) the asker of ``turn`` in a new reply."""

    turn: int
    key: tuple[str, str, str, str]
    at: float  # Unix seconds, just before the note was posted
    # Whether the note carries the sentence on an earlier reply still "Thinking…" (its pass's
    # listing was cut): a pass finishing a note cut between its messages words the rest alike.
    # None in a record written before this field (unknown).
    cut: bool | None = None


@dataclass(frozen=True)
class Strays:
    """Messages of a turn that a text posted anew replaced, not deleted yet (the record of the
    unmarked streams, :attr:`WriteSpool.unmarked`, has the same shape)."""

    turn: int
    key: tuple[str, str, str, str]
    message_ids: tuple[str, ...]
    # (Unmarked streams only) those whose refused marking carried the final's 👍/👎: the later
    # marking gives them. Absent in a record written before this field: none.
    buttoned: tuple[str, ...] = ()


class WriteSpool:
    def __init__(self, directory: Path, database: str) -> None:
        self.directory = directory
        self.database = safe_url(database)
        self._prefix = "turn-" + hashlib.sha256(self.database.encode()).hexdigest()[:12] + "-"
        self.notes = NoteRecords(self)
        self._strays = MessageRecords(self, "stray", "the replaced messages")
        #: Native streams Slack refused both to stop and to mark (botkit_slack.reply): the next
        #: start or a sweep marks them, and no other turn's restart takes them for its own.
        self.unmarked = MessageRecords(self, "unmarked", "the unmarked streams")

    @classmethod
    def for_database(cls, url: str, directory: Path | None) -> WriteSpool | None:
        """The spool of the database at ``url``: ``directory``, or beside a SQLite file, or
        :data:`DEFAULT_DIR`; None for an in-memory SQLite database (nothing outlives it)."""
        if directory is None:
            parsed = parse_url(url)
            if is_sqlite(parsed):
                path = _sqlite_file(parsed)
                if path is None:
                    return None
                directory = path.expanduser().with_name(path.name + ".pending")
            else:
                directory = DEFAULT_DIR
        return cls(directory, url)

    def _path(self, turn: int) -> Path:
        return self.directory / f"{self._prefix}{turn}.json"

    def _run(self, job: Callable[[], None]) -> asyncio.Future[None]:
        """``job`` on the spool's worker thread, after every job asked for before it."""
        return asyncio.wrap_future(_submit(job))

    def save_soon(self, entry: SpooledWrite, *, over_durable: bool = False) -> asyncio.Future[None]:
        """Start writing ``entry`` durably; the future is done once it is on disk (fsynced) or
        its failure was logged (never raised: the retry goes on without it).

        ``over_durable``: the record replaces one of the same turn that is durable already (the
        final write over its intent), so the directory is not fsynced after the rename: after a
        power cut its entry names the old record or the new one, both whole (the new file is
        fsynced before the rename) and both valid. One flush fewer on the disk the database
        may share."""
        data: dict[str, Any] = {
            "database": self.database, "turn": entry.turn, "key": list(entry.key), "values": entry.values
        }  # fmt: skip
        if entry.shown is not None:
            data["shown"] = list(entry.shown)
        if entry.also:
            data["also"] = [list(form) for form in entry.also]
        if entry.feedback:
            data["feedback"] = True
        if entry.shown is not None:
            data["anew"] = entry.anew  # written either way: a missing field reads as True
        path, what = self._path(entry.turn), f"the pending final write of turn {entry.turn}"
        payload = json.dumps(data).encode("utf-8")
        return asyncio.wrap_future(_write_soon(path, payload, what, sync_directory=not over_durable))

    async def save(self, entry: SpooledWrite) -> None:
        """Write ``entry`` atomically and durably (see :meth:`save_soon`)."""
        await self.save_soon(entry)

    def discard_soon(self, turn: int) -> Future[None]:
        """:meth:`discard` (not durable), not waited for: done on the worker, after every
        record asked for before it; the file is kept for the next record (:class:`_Spares`).
        Handed to the worker directly, not through the event loop, so its end wakes nothing
        (wrap the future in ``asyncio.wrap_future`` to wait for it)."""
        path = self._path(turn)
        return _submit(lambda: _recycle(path), touches=path)

    async def discard(self, turn: int, *, durable: bool = False) -> None:
        """Remove ``turn``'s record. ``durable``: the directory is fsynced after the unlink, where
        a record that came back after a power cut would be acted on (its row is still unfinished);
        a record whose row is final is recognised as stale at the next start and dropped
        (:func:`botkit.leftovers.settle_abandoned`), so its absence need not be durable."""
        path = self._path(turn)
        await asyncio.wrap_future(_submit(lambda: _unlink(path, durable=durable), touches=path))

    def entries(self) -> list[SpooledWrite]:
        """This database's pending writes (an unreadable file is logged and left in place)."""

        def parse(data: dict[str, Any]) -> SpooledWrite:
            shown = data.get("shown")
            return SpooledWrite(
                int(data["turn"]),
                tuple(data["key"]),
                dict(data["values"]),
                None if shown is None else tuple(str(s) for s in shown),
                tuple(tuple(str(s) for s in form) for form in data.get("also") or ()),
                data.get("feedback") is True,
                anew=data.get("anew") is not False,
            )

        return self._read(f"{self._prefix}*.json", parse)

    def _read(self, pattern: str, parse: Callable[[dict[str, Any]], T]) -> list[T]:
        found: list[T] = []
        if not self.directory.is_dir():
            return found
        for path in sorted(self.directory.glob(pattern)):
            try:
                found.append(parse(json.loads(path.read_text(encoding="utf-8"))))
            except (OSError, ValueError, KeyError, TypeError) as err:
                log.error("cannot read the pending record %s (%s); left in place", path, err)
        return found

    # -- strays ---------------------------------------------------------------------------------
    async def add_stray(self, turn: int, key: tuple[str, str, str, str], message_id: str) -> None:
        """``message_id`` was replaced by a text posted anew and is to be deleted: durable once
        this returns (read, extended and written as one job on the spool's worker)."""
        await self._strays.add(turn, key, message_id)

    async def stray_removed(self, turn: int, message_id: str) -> None:
        """Its deletion landed; the record goes with its last message. Not durable: a record
        that came back after a power cut only has the next start delete a message already gone."""
        await self._strays.remove(turn, message_id)

    async def discard_strays(self, turn: int) -> None:
        await self._strays.discard(turn)

    def strays(self) -> list[Strays]:
        """This database's messages waiting for deletion (an unreadable file is left in place)."""
        return self._strays.all()


class MessageRecords:
    """Message ids of turns, one file per turn (``<kind>-<prefix><turn>.json``), kept until
    acted on: the messages a text posted anew replaced (``stray``: to delete), or the streams
    left without their turn's marker (``unmarked``: to mark; see the module docstring)."""

    def __init__(self, spool: WriteSpool, kind: str, what: str) -> None:
        self._spool, self._kind, self._what = spool, kind, what

    def _path(self, turn: int) -> Path:
        return self._spool.directory / f"{self._kind}-{self._spool._prefix}{turn}.json"

    def _write(self, turn: int, key: tuple[str, ...], ids: list[str], buttoned: list[str]) -> None:
        data: dict[str, Any] = {"database": self._spool.database, "turn": turn, "key": list(key), "ids": ids}
        if buttoned:
            data["buttoned"] = buttoned
        _write(self._path(turn), data, f"{self._what} of turn {turn}")

    async def add(
        self, turn: int, key: tuple[str, str, str, str], message_id: str, *, buttons: bool = False
    ) -> None:
        """Durable once this returns (read, extended and written as one job on the worker).
        ``buttons``: the message is to get the final's 👍/👎 when acted on (:attr:`Strays.buttoned`)."""

        def add() -> None:
            known = next((r for r in self.all() if r.turn == turn), None)
            ids = list(known.message_ids) if known is not None else []
            buttoned = list(known.buttoned) if known is not None else []
            if message_id not in ids or (buttons and message_id not in buttoned):
                ids = ids if message_id in ids else [*ids, message_id]
                self._write(turn, key, ids, [*buttoned, message_id] if buttons else buttoned)

        await self._spool._run(add)

    async def remove(self, turn: int, message_id: str) -> None:
        """``message_id`` was acted on; the file goes with its last message (not durably)."""

        def remove() -> None:
            for record in self.all():
                if record.turn == turn:
                    left = [m for m in record.message_ids if m != message_id]
                    if left:
                        self._write(turn, record.key, left, [m for m in record.buttoned if m in left])
                        return
            _unlink(self._path(turn), durable=False)

        await self._spool._run(remove)

    async def discard(self, turn: int) -> None:
        path = self._path(turn)
        await self._spool._run(lambda: _unlink(path, durable=False))

    def all(self) -> list[Strays]:
        """This database's records of the kind (an unreadable file is left in place)."""

        def parse(data: dict[str, Any]) -> Strays:
            ids, buttoned = (tuple(str(i) for i in data.get(f) or ()) for f in ("ids", "buttoned"))
            return Strays(int(data["turn"]), tuple(data["key"]), ids, buttoned)

        return self._spool._read(f"{self._kind}-{self._spool._prefix}*.json", parse)


class NoteRecords:
    """The :class:`SpooledNote` records of one spool (see the module docstring)."""

    def __init__(self, spool: WriteSpool) -> None:
        self._spool = spool

    def _path(self, turn: int) -> Path:
        return self._spool.directory / f"note-{self._spool._prefix}{turn}.json"

    async def save(self, note: SpooledNote) -> None:
        """Durable once this returns: the note may be posted after it."""
        data = {
            "database": self._spool.database,
            "turn": note.turn,
            "key": list(note.key),
            "at": note.at,
            "cut": note.cut,
        }
        path, what = self._path(note.turn), f"the restart note of turn {note.turn}"
        await self._spool._run(lambda: _write(path, data, what))

    async def discard(self, turn: int) -> None:
        """The row is settled: not durable (a record that came back is stale, and dropped)."""
        path = self._path(turn)
        await self._spool._run(lambda: _unlink(path, durable=False))

    def all(self) -> list[SpooledNote]:
        def parse(data: dict[str, Any]) -> SpooledNote:
            cut = data.get("cut")
            return SpooledNote(
                int(data["turn"]), tuple(data["key"]), float(data["at"]), None if cut is None else bool(cut)
            )

        return self._spool._read(f"note-{self._spool._prefix}*.json", parse)


def _write(path: Path, data: dict[str, Any], what: str, *, sync_directory: bool = True) -> None:
    """:func:`_write_durably`, a failure logged (a record is a second chance, never the reply's end)."""
    try:
        _write_durably(path, json.dumps(data).encode("utf-8"), sync_directory=sync_directory)
    except OSError as err:
        _not_kept(what, path, err)


def _not_kept(what: str, path: Path, err: OSError) -> None:
    log.error(
        "could not keep %s in %s (%s): a crash before it is stored loses it; make "
        "database.pending_writes_dir writable and give its disk room",
        what,
        path,
        err,
    )


def _write_batch(batch: _Batch) -> None:
    """On the worker: :class:`_Batch`'s records, each failure logged and its caller told it is
    done (a record is a second chance, never the reply's end)."""
    global _OPEN_BATCH
    with _BATCH_LOCK:
        if _OPEN_BATCH is batch:
            _OPEN_BATCH = None  # nothing joins it from here on
    records = batch.records
    try:
        for record in records:
            _open_temporary(record)
        _fill_at_once([r for r in records if r.fd is not None])
        _rename_and_sync(records)
    finally:
        for record in records:
            if not record.done.done():
                record.done.set_result(None)


def _open_temporary(record: _Record) -> None:
    """The record's temporary file, opened: a ready spare, else a new ``.tmp`` (as in
    :func:`_write_durably`); on the worker, which owns the spares."""
    directory = record.path.parent
    try:
        if not directory.is_dir():
            directory.mkdir(parents=True, exist_ok=True)
            _fsync_directory(directory.parent)
        partial, fd = _spares_in(directory).open_one()
        record.reused = fd is not None
        if fd is None:
            partial = record.path.with_suffix(".tmp")
            fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o666)
        record.partial, record.fd = partial, fd
    except OSError as err:
        _not_kept(record.what, record.path, err)


SYNC_LANES = 8  # a batch's files written and fsynced at once, at most this many at a time


def _fill_at_once(ready: list[_Record]) -> None:
    """Every record's temporary file written and fsynced, up to :data:`SYNC_LANES` at once; back
    when all are.

    Why lanes, not one task a record: each task on the pool is a hand-over between threads (a
    queue put, a thread's wake-up, the GIL, a future's result waited for), and at 100 replies
    ending together the syncers were about 18 of a reply's ~42 ``futex`` calls
    (docs/benchmarks.md section 4, "Thread hops per reply"). Now each lane takes its share of
    the records in one task, and the worker fills one lane itself; as many fsyncs are in
    flight at once as before (one a lane) and every file is fsynced before any rename.
    """
    lanes = [ready[i::SYNC_LANES] for i in range(min(len(ready), SYNC_LANES))]
    others = [_syncers().submit(_fill_each, lane) for lane in lanes[1:]]
    try:
        if lanes:
            _fill_each(lanes[0])
    finally:
        for other in others:
            other.result()


def _fill_each(records: list[_Record]) -> None:
    """One lane of :func:`_fill_at_once`: its records one after another."""
    for record in records:
        _fill(record)


def _fill(record: _Record) -> None:
    """Write the payload over the temporary file and fsync it (any thread: its own fd)."""
    assert record.fd is not None
    fd, record.fd = record.fd, None
    try:
        view = memoryview(record.payload)
        while view:
            view = view[os.write(fd, view) :]
        if record.reused:
            os.ftruncate(fd, len(record.payload))
        os.fsync(fd)
    except OSError as err:
        record.partial = None
        _not_kept(record.what, record.path, err)
    finally:
        os.close(fd)


def _rename_and_sync(records: list[_Record]) -> None:
    """Each fsynced temporary file renamed over its record, in order; then each directory that
    a record needs synced, once (the spares renamed before it become ready)."""
    synced: dict[Path, list[_Record]] = {}
    for record in records:
        if record.partial is None:
            continue
        try:
            os.replace(record.partial, record.path)
        except OSError as err:
            _not_kept(record.what, record.path, err)
            continue
        if record.sync_directory:
            synced.setdefault(record.path.parent, []).append(record)
    for directory, waiting in synced.items():
        try:
            _fsync_directory(directory)
            _spares_in(directory).synced()
        except OSError as err:
            for record in waiting:
                _not_kept(record.what, record.path, err)


def _write_durably(path: Path, payload: bytes, *, sync_directory: bool = True) -> None:
    """``path`` holds ``payload`` after a power cut, or its old content, never a torn file: the
    temporary file is fsynced before the rename (else the rename can reach the disk before the
    data: an empty file after a cut), and the directory after it (the rename itself is an entry
    of the directory). A new directory's own entry is fsynced in its parent.

    The temporary file is one of this process's spares where one is ready (:class:`_Spares`):
    creating a file (an inode) is most of a record's CPU on some file systems, reusing one is
    an open, a write over its old content, a truncate to the new length and a rename."""
    directory = path.parent
    if not directory.is_dir():
        directory.mkdir(parents=True, exist_ok=True)
        _fsync_directory(directory.parent)
    spares = _spares_in(directory)
    partial, fd = spares.open_one()
    reused = fd is not None
    if fd is None:
        partial = path.with_suffix(".tmp")
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o666)
    try:
        view = memoryview(payload)
        while view:
            view = view[os.write(fd, view) :]
        if reused:
            os.ftruncate(fd, len(payload))  # a spare overwritten in place: cut what is left of it
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(partial, path)
    if sync_directory:
        _fsync_directory(directory)
        spares.synced()


#: Spares kept per directory by one process: the records of as many turns as end together at 500
#: replies at once (each spare is one small file, a 4 KB block; swept when its process is gone).
MAX_SPARES = 512


class _Spares:
    """A record's file, once not needed, kept under a name no reader looks at for the next
    record to be written into, instead of unlinked (used only on the spool's worker thread).

    Safe after a power cut because a spare is reused only once the rename that made it a spare
    is durable (a directory fsync came after it: :meth:`synced`); before that, the old record's
    name could come back after a cut naming the file the new record is being written into.
    Names carry the host, the pid and a token of this process, so processes sharing the
    directory never take each other's, and spares of a process that is gone are removed by the
    next process on that host that writes a record here (:meth:`sweep`)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        host = hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]
        self._tag = f"{host}-{os.getpid()}-{secrets.token_hex(4)}"
        self.ready: list[Path] = []  # renamed into spares before the last directory fsync
        self.unsynced: list[Path] = []  # renamed since
        self._made = 0
        self.sweep()

    def open_one(self) -> tuple[Path, int | None]:
        """A ready spare opened for writing over in place (its blocks kept: truncating first
        made the fsync that follows slower here, 463-527 vs 325-366 µs); (_, None) if none."""
        while self.ready:
            spare = self.ready.pop()
            try:  # no O_CREAT: a spare removed meanwhile is not made again under its name
                return spare, os.open(spare, os.O_WRONLY | os.O_CLOEXEC)
            except OSError:
                continue
        return self.directory, None

    def keep(self, record: Path) -> bool:
        """Rename ``record`` into a spare (a removal that need not be durable); False: full, or
        the rename failed (the caller unlinks it)."""
        if len(self.ready) + len(self.unsynced) >= MAX_SPARES:
            return False
        self._made += 1
        spare = self.directory / f"spare-{self._tag}-{self._made}.spare"
        try:
            os.replace(record, spare)
        except OSError:
            return False
        self.unsynced.append(spare)
        return True

    def synced(self) -> None:
        """The directory was fsynced: every spare renamed before it is ready."""
        self.ready += self.unsynced
        self.unsynced = []

    def remove_all(self) -> None:
        """Remove this process's own spares (at exit: a stopped bot leaves only records that
        still mean something in its directory)."""
        for spare in (*self.ready, *self.unsynced):
            with contextlib.suppress(OSError):
                spare.unlink()
        self.ready, self.unsynced = [], []

    def sweep(self) -> None:
        """Remove the spares of processes on this host that are gone (a pid no longer running,
        or this pid with another token: a restart in a container gets the same pid)."""
        host, pid, token = self._tag.split("-")
        for spare in self.directory.glob(f"spare-{host}-*.spare"):
            parts = spare.name.split("-")
            if len(parts) != 5 or not parts[2].isdigit() or parts[3] == token:
                continue
            if int(parts[2]) == int(pid) or not _running(int(parts[2])):
                with contextlib.suppress(OSError):
                    spare.unlink()


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # someone else's process: running
    return True


_SPARES: dict[tuple[int, Path], _Spares] = {}  # per process and directory; on the spool's worker


@atexit.register
def _remove_spares_at_exit() -> None:
    """Runs after the spool's worker thread was joined (``concurrent.futures`` joins its threads
    before ``atexit`` handlers run), so no record is being written into a spare meanwhile."""
    for spares in _SPARES.values():
        if spares.directory.is_dir() and spares._tag.split("-")[1] == str(os.getpid()):
            spares.remove_all()


def _spares_in(directory: Path) -> _Spares:
    """This process's spares in ``directory`` (a forked child gets its own, never its parent's)."""
    key = (os.getpid(), directory)
    spares = _SPARES.get(key)
    if spares is None:
        spares = _SPARES[key] = _Spares(directory)
    return spares


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _recycle(path: Path) -> None:
    """Remove the record at ``path`` (not durably), kept as a spare where there is room
    (:class:`_Spares`): a rename instead of an unlink, and the next record reuses the file."""
    if not (path.parent.is_dir() and _spares_in(path.parent).keep(path)):
        _unlink(path, durable=False)


def _unlink(path: Path, *, durable: bool) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        return
    except OSError as err:
        log.warning("could not remove %s: %s", path, err)
        return
    if durable:
        try:
            _fsync_directory(path.parent)
        except OSError as err:
            log.warning("could not sync the removal of %s: %s", path, err)
