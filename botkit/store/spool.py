"""Final writes waiting for the database, kept on local disk until it takes them.

A turn's answer is shown before it is stored (the user should not wait for SQL), so when the
database is away at that moment the only record that the answer was *complete* is the write
botkit keeps retrying in memory. If the process is killed meanwhile, the next start would find
the row still ``streaming`` with an older checkpoint, and what the platform shows cannot tell a
complete answer from a partial one that was edited just ahead of its last checkpoint. So every
final write is also written here before its first attempt, one small JSON file per turn, removed
when it lands; the next start stores what it finds here before it repairs anything.

A file survives a crash of the process (SIGKILL, OOM), not a lost disk or a power cut (no
fsync): it is a second chance, the database stays the record.

Two more records close the crash windows around the final view (see :mod:`botkit.repair`):

- an **intent** (a :class:`SpooledWrite` with ``shown``): written before the final view's first
  call goes out, with the messages as they will show and the row it would store. If the
  process dies with the request in flight, the next start reads the platform: it shows the
  intent (the call was applied) -> stored as meant, never edited; else it is interrupted.
  The final write replaces it (same file) once the view landed.
- **strays**: the messages a text posted anew replaced, until their deletion landed, so a
  process killed before that (the turn stored or not) has them removed at the next start. A file holds what the row will
hold (the answer, reasoning, timings), so the directory deserves the database's care. Files name
their database (the URL without its password), so bots on other databases sharing it do not mix.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from botkit.store.database import _sqlite_file, is_sqlite, parse_url, safe_url

log = logging.getLogger("botkit.store.spool")

T = TypeVar("T")

DEFAULT_DIR = Path("botkit-pending")


@dataclass(frozen=True)
class SpooledWrite:
    """One turn's final write: :meth:`ConversationStore.finish_turn`'s keyword arguments."""

    turn: int  # the assistant message's id
    key: tuple[str, str, str, str]  # platform, workspace, channel, thread (for the logs)
    values: dict[str, Any]
    # An intent only: the final view's messages as the platform will show them (LiveReply.rendered),
    # about to be shown; None: the view was shown, ``values`` is the write to store.
    shown: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Strays:
    """Messages of a turn that a text posted anew replaced, not deleted yet."""

    turn: int
    key: tuple[str, str, str, str]
    message_ids: tuple[str, ...]


class WriteSpool:
    def __init__(self, directory: Path, database: str) -> None:
        self.directory = directory
        self.database = safe_url(database)
        self._prefix = "turn-" + hashlib.sha256(self.database.encode()).hexdigest()[:12] + "-"

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

    def save(self, entry: SpooledWrite) -> None:
        """Write ``entry`` atomically; a failure is logged, never raised (the retry goes on)."""
        data: dict[str, Any] = {
            "database": self.database, "turn": entry.turn, "key": list(entry.key), "values": entry.values
        }  # fmt: skip
        if entry.shown is not None:
            data["shown"] = list(entry.shown)
        self._write(self._path(entry.turn), data, f"the pending final write of turn {entry.turn}")

    def _write(self, path: Path, data: dict[str, Any], what: str) -> None:
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            partial = path.with_suffix(".tmp")
            partial.write_text(json.dumps(data), encoding="utf-8")
            os.replace(partial, path)
        except OSError as err:
            log.error("could not keep %s in %s: %s", what, path, err)

    def discard(self, turn: int) -> None:
        _unlink(self._path(turn))

    def entries(self) -> list[SpooledWrite]:
        """This database's pending writes (an unreadable file is logged and left in place)."""

        def parse(data: dict[str, Any]) -> SpooledWrite:
            shown = data.get("shown")
            return SpooledWrite(
                int(data["turn"]),
                tuple(data["key"]),
                dict(data["values"]),
                None if shown is None else tuple(str(s) for s in shown),
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
    def _strays_path(self, turn: int) -> Path:
        return self.directory / f"stray-{self._prefix}{turn}.json"

    def add_stray(self, turn: int, key: tuple[str, str, str, str], message_id: str) -> None:
        """``message_id`` was replaced by a text posted anew and is to be deleted."""
        known = next((s.message_ids for s in self.strays() if s.turn == turn), ())
        data = {"database": self.database, "turn": turn, "key": list(key), "ids": [*known, message_id]}
        self._write(self._strays_path(turn), data, f"the replaced messages of turn {turn}")

    def stray_removed(self, turn: int, message_id: str) -> None:
        """Its deletion landed; the record goes with its last message."""
        for strays in self.strays():
            if strays.turn == turn:
                left = [m for m in strays.message_ids if m != message_id]
                if left:
                    data = {"database": self.database, "turn": turn, "key": list(strays.key), "ids": left}
                    self._write(self._strays_path(turn), data, f"the replaced messages of turn {turn}")
                    return
        self.discard_strays(turn)

    def discard_strays(self, turn: int) -> None:
        _unlink(self._strays_path(turn))

    def strays(self) -> list[Strays]:
        """This database's messages waiting for deletion (an unreadable file is left in place)."""

        def parse(data: dict[str, Any]) -> Strays:
            return Strays(int(data["turn"]), tuple(data["key"]), tuple(str(i) for i in data["ids"]))

        return self._read(f"stray-{self._prefix}*.json", parse)


def _unlink(path: Path) -> None:
    try:
        path.unlink(missing_ok=True)
    except OSError as err:
        log.warning("could not remove %s: %s", path, err)
