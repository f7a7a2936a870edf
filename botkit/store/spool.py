"""Final writes waiting for the database, kept on local disk until it takes them.

A turn's answer is shown before it is stored (the user should not wait for SQL), so when the
database is away at that moment the only record that the answer was *complete* is the write
botkit keeps retrying in memory. If the process is killed meanwhile, the next start would find
the row still ``streaming`` with an older checkpoint, and what the platform shows cannot tell a
complete answer from a partial one that was edited just ahead of its last checkpoint. So every
final write is also written here before its first attempt, one small JSON file per turn, removed
when it lands; the next start stores what it finds here before it repairs anything.

A file survives a crash of the process (SIGKILL, OOM), not a lost disk or a power cut (no
fsync): it is a second chance, the database stays the record. A file holds what the row will
hold (the answer, reasoning, timings), so the directory deserves the database's care. Files name
their database (the URL without its password), so bots on other databases sharing it do not mix.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botkit.store.database import _sqlite_file, is_sqlite, parse_url, safe_url

log = logging.getLogger("botkit.store.spool")

DEFAULT_DIR = Path("botkit-pending")


@dataclass(frozen=True)
class SpooledWrite:
    """One turn's final write: :meth:`ConversationStore.finish_turn`'s keyword arguments."""

    turn: int  # the assistant message's id
    key: tuple[str, str, str, str]  # platform, workspace, channel, thread (for the logs)
    values: dict[str, Any]


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
        path = self._path(entry.turn)
        data = {"database": self.database, "turn": entry.turn, "key": list(entry.key), "values": entry.values}
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            partial = path.with_suffix(".tmp")
            partial.write_text(json.dumps(data), encoding="utf-8")
            os.replace(partial, path)
        except OSError as err:
            log.error("could not keep the pending final write of turn %s in %s: %s", entry.turn, path, err)

    def discard(self, turn: int) -> None:
        try:
            self._path(turn).unlink(missing_ok=True)
        except OSError as err:
            log.warning("could not remove %s: %s", self._path(turn), err)

    def entries(self) -> list[SpooledWrite]:
        """This database's pending writes (an unreadable file is logged and left in place)."""
        found: list[SpooledWrite] = []
        for path in sorted(self.directory.glob(f"{self._prefix}*.json")):
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
                found.append(SpooledWrite(int(data["turn"]), tuple(data["key"]), dict(data["values"])))
            except (OSError, ValueError, KeyError, TypeError) as err:
                log.error("cannot read the pending write %s (%s); left in place", path, err)
        return found
