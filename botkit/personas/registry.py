"""The live set of personas, reloaded when admins edit the files.

An admin's mistake must never take a persona offline: when a file breaks, the last good version
keeps serving (and the error is reported) until the file is fixed. Only deleting a file removes a
persona. Each reload builds a new mapping and swaps it in whole, so readers never see a half-loaded
state.

Reloads are incremental: a file whose bytes did not change (same content hash) is not parsed
again, and a file over the size limit is refused before it is read whole, so editing one persona
never costs the parse of every other one (parsing holds the GIL, and the event loop waits).
"""

from __future__ import annotations

import asyncio
import importlib.resources
import inspect
import logging
import threading
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path

import watchfiles

from .errors import PersonaError
from .loader import (
    MAX_FILE_BYTES,
    content_hash,
    is_persona_file,
    load_persona,
    persona_files,
    read_persona_bytes,
)
from .persona import Persona

logger = logging.getLogger("botkit.personas")

OnChange = Callable[[list[str], list[PersonaError]], Awaitable[None] | None]


def shipped_personas_dir() -> Path:
    """The personas shipped with botkit.

    In a wheel they are packaged as ``botkit/_data/personas``; in a source checkout they are the
    repository's ``personas/`` folder next to the ``botkit`` package.
    """
    packaged = importlib.resources.files("botkit") / "_data" / "personas"
    if isinstance(packaged, Path) and packaged.is_dir():
        return packaged
    checkout = Path(__file__).resolve().parents[2] / "personas"
    if checkout.is_dir():
        return checkout
    raise FileNotFoundError(f"shipped personas not found (looked in {packaged} and {checkout})")


class PersonaRegistry:
    """Personas loaded from one directory, by name (the file stem)."""

    def __init__(
        self, directory: Path, extra_variables: Iterable[str] = (), *, max_file_bytes: int = MAX_FILE_BYTES
    ) -> None:
        self.directory = Path(directory)
        self.extra_variables = frozenset(extra_variables)
        self.max_file_bytes = max_file_bytes
        self._parsed: dict[Path, tuple[str, Persona | PersonaError]] = {}  # by content hash
        self.parses = 0  # files parsed so far (reloads skip unchanged ones)
        self._personas: dict[str, Persona] = {}
        self._errors: list[PersonaError] = []
        self._stale: frozenset[str] = frozenset()
        #: Called after every reload, from the watcher and from :meth:`reload` alike (the app
        #: audits reloads and stores each version's text through it).
        self.on_change: OnChange | None = None
        # load() may be called from a thread (watch) and from an admin command at the same time.
        self._lock = threading.Lock()

    def get(self, name: str) -> Persona | None:
        """The persona called ``name``, or ``None``."""
        return self._personas.get(name)

    def names(self) -> list[str]:
        """Sorted persona names."""
        return sorted(self._personas)

    def all(self) -> list[Persona]:
        """Every persona, sorted by name."""
        personas = self._personas
        return [personas[name] for name in sorted(personas)]

    @property
    def errors(self) -> list[PersonaError]:
        """Problems found by the last load."""
        return list(self._errors)

    def is_stale(self, name: str) -> bool:
        """True when ``name`` serves a previous version because its file is currently broken."""
        return name in self._stale

    def load(self) -> list[PersonaError]:
        """(Re)load every persona file; return the problems found (also kept in :attr:`errors`)."""
        return self._reload()[1]

    def _reload(self) -> tuple[list[str], list[PersonaError]]:
        """Reload and return the names whose served version changed, and the current errors."""
        with self._lock:
            old = self._personas
            try:
                files = persona_files(self.directory)
            except OSError as exc:
                error = PersonaError(self.directory, None, f"cannot list persona directory: {exc}")
                logger.error("%s (keeping %d loaded personas)", error, len(old))
                self._errors = [error]
                return [], [error]
            new: dict[str, Persona] = {}
            errors: list[PersonaError] = []
            stale: set[str] = set()
            for path in files:
                try:
                    new[path.stem] = self._load(path)
                except PersonaError as exc:
                    errors.append(exc)
                    previous = old.get(path.stem)
                    if previous is None:
                        logger.error("%s", exc)
                    else:
                        new[path.stem] = previous
                        stale.add(path.stem)
                        logger.error(
                            "%s (still serving the previous version, hash %s)", exc, previous.content_hash
                        )
            self._parsed = {p: v for p, v in self._parsed.items() if p in set(files)}
            changed = self._log_changes(old, new)
            self._personas, self._errors, self._stale = new, errors, frozenset(stale)
            return changed, list(errors)

    def _load(self, path: Path) -> Persona:
        """The persona in ``path``, parsed only if its bytes changed since the last load."""
        try:
            raw = read_persona_bytes(path, self.max_file_bytes)
        except PersonaError as exc:
            self._parsed.pop(path, None)
            raise exc from None
        digest = content_hash(raw)
        cached = self._parsed.get(path)
        if cached is None or cached[0] != digest:
            self.parses += 1
            try:
                result: Persona | PersonaError = load_persona(path, self.extra_variables, raw=raw)
            except PersonaError as exc:
                result = exc
            cached = self._parsed[path] = (digest, result)
        if isinstance(cached[1], PersonaError):
            raise cached[1]
        return cached[1]

    @staticmethod
    def _log_changes(old: dict[str, Persona], new: dict[str, Persona]) -> list[str]:
        changed: list[str] = []
        for name in sorted(old.keys() | new.keys()):
            before, after = old.get(name), new.get(name)
            if before is None and after is not None:
                logger.info("persona %s loaded (hash %s)", name, after.content_hash)
            elif before is not None and after is None:
                logger.info("persona %s removed (file deleted)", name)
            elif before is not None and after is not None and before.content_hash != after.content_hash:
                logger.info(
                    "persona %s reloaded (hash %s -> %s)", name, before.content_hash, after.content_hash
                )
            else:
                continue
            changed.append(name)
        return changed

    async def watch(
        self,
        on_change: OnChange | None = None,
        stop_event: asyncio.Event | None = None,
    ) -> None:
        """Reload whenever persona files change, until ``stop_event`` is set.

        Call :meth:`load` first. ``on_change(changed_names, errors)`` (sync or async) runs after
        each reload triggered by a file event; an exception in it is logged, never fatal, because
        a failing listener must not stop personas from reloading. Without ``on_change``,
        :attr:`on_change` is used.
        """
        on_change = on_change or self.on_change

        def relevant(_change: watchfiles.Change, path: str) -> bool:
            return is_persona_file(Path(path))

        # A deploy that replaces the whole folder (rsync --delete, a ConfigMap swap) ends a
        # watch; keep watching: wait for the folder to come back, reload, and watch it again.
        resumed = False
        while stop_event is None or not stop_event.is_set():
            if not self.directory.is_dir():
                await asyncio.sleep(1.0)
                continue
            if resumed:  # pick up whatever changed while nobody was watching
                await self._reloaded(on_change)
            resumed = True
            watched = self.directory.stat().st_ino
            try:
                async for _changes in watchfiles.awatch(
                    self.directory, watch_filter=relevant, stop_event=stop_event, rust_timeout=1000
                ):
                    if not self.directory.is_dir() or self.directory.stat().st_ino != watched:
                        logger.warning("persona folder %s was replaced; watching the new one", self.directory)
                        break
                    await self._reloaded(on_change)
            except (FileNotFoundError, RuntimeError, OSError) as err:
                logger.warning(
                    "persona folder %s went away (%s); watching for it to return", self.directory, err
                )
            if stop_event is not None and stop_event.is_set():
                return
            await asyncio.sleep(1.0)

    async def reload(self) -> tuple[list[str], list[PersonaError]]:
        """Reload now (an admin's ``/persona reload``), telling :attr:`on_change` like a file
        event would; returns the names whose served version changed and the current errors."""
        return await self._reloaded(self.on_change)

    async def _reloaded(self, on_change: OnChange | None) -> tuple[list[str], list[PersonaError]]:
        changed, errors = await asyncio.to_thread(self._reload)
        if on_change is None:
            return changed, errors
        try:
            result = on_change(changed, errors)
            if inspect.isawaitable(result):
                await result
        except Exception:
            logger.exception("persona on_change callback failed")
        return changed, errors
