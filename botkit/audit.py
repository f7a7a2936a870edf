"""The audit trail's writers: persona loads and reloads, and durations for ``--since``.

Refusals and admin commands are recorded by the router (:mod:`botkit.pipeline.router`), where
it turns a refusal into a notice and where it runs an admin command; persona loads, reloads and
failed reloads are recorded here, through the registry's ``on_change`` hook, together with each
version's full text (``persona_versions``), so a stored hash can always be read back.

Writing an audit row never stops the work it records: a database that is away is logged.
"""

from __future__ import annotations

import difflib
import logging
import re
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from botkit.personas.loader import content_hash

if TYPE_CHECKING:
    from botkit.personas import Persona, PersonaError, PersonaRegistry
    from botkit.store import ConversationStore, StoredPersonaVersion

log = logging.getLogger("botkit.audit")

#: The platform column of rows that no chat platform caused (a file edited on disk).
SYSTEM = "botkit"

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$", re.IGNORECASE)
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks", "": "days"}


def parse_duration(text: str) -> timedelta:
    """``90s``, ``30m``, ``12h``, ``7d``, ``2w`` (a bare number is days), for ``--since`` and friends."""
    match = _DURATION.match(text)
    if match is None:
        raise ValueError(f"{text!r} is not a duration (e.g. 30m, 12h, 7d, 2w)")
    return timedelta(**{_UNITS[match.group(2).lower()]: float(match.group(1))})


async def record(store: ConversationStore, action: str, **fields: Any) -> None:
    """One audit row; a failure is logged with what it would have said, never raised."""
    try:
        await store.audit(action, **fields)
    except Exception:
        log.exception("could not write the audit row %s %s", action, fields)


def version_text(persona: Persona) -> str | None:
    """The file's full text if it still has the hash the persona was loaded with (else it was
    edited again meanwhile, and the next reload stores that version)."""
    try:
        raw = persona.path.read_bytes()
    except OSError:
        return None
    return raw.decode("utf-8", errors="replace") if content_hash(raw) == persona.content_hash else None


class PersonaAuditor:
    """The registry's ``on_change`` hook: audit rows and stored versions for every change.

    A failed reload is recorded once per distinct error (a file that stays broken across
    unrelated reloads is not recorded again), with the hash still served, if any.
    """

    def __init__(self, store: ConversationStore, registry: PersonaRegistry) -> None:
        self.store = store
        self.registry = registry
        self._hashes: dict[str, str] = {}
        self._errors: set[str] = set()
        #: Told of each new failed *reload* (a running botkit's edited file): the admin notices
        #: (:class:`~botkit.admin_notices.AdminNotifier`); errors of the first load are in the log.
        self.notify: Callable[[PersonaError, Persona | None], Awaitable[None]] | None = None

    async def loaded(self) -> None:
        """After the first load: every persona loaded and every file that failed."""
        await self(self.registry.names(), self.registry.errors, action="persona_load")

    async def __call__(
        self, changed: list[str], errors: list[PersonaError], *, action: str = "persona_reload"
    ) -> None:
        for name in changed:
            persona = self.registry.get(name)
            if persona is None:
                self._hashes.pop(name, None)
                await record(self.store, "persona_removed", platform=SYSTEM, detail={"persona": name})
                continue
            await self._remember(persona)
            detail: dict[str, Any] = {"persona": name, "hash": persona.content_hash}
            if (previous := self._hashes.get(name)) is not None:
                detail["previous_hash"] = previous
            self._hashes[name] = persona.content_hash
            await record(self.store, action, platform=SYSTEM, detail=detail)
        for error in errors:
            if str(error) in self._errors:
                continue
            name = error.path.stem
            serving = self.registry.get(name) if self.registry.is_stale(name) else None
            await record(
                self.store,
                "persona_reload_failed" if action == "persona_reload" else "persona_load_failed",
                platform=SYSTEM,
                detail={
                    "persona": name,
                    "file": str(error.path),
                    "line": error.line,
                    "problem": error.problem,
                    "serving_hash": serving.content_hash if serving is not None else None,
                },
            )
            if self.notify is not None and action == "persona_reload":
                try:
                    await self.notify(error, serving)
                except Exception:
                    log.exception("could not tell the admins about %s", error)
        self._errors = {str(error) for error in errors}

    async def _remember(self, persona: Persona) -> None:
        text = version_text(persona)
        if text is None:
            return
        try:
            await self.store.remember_persona_version(persona.name, persona.content_hash, text)
        except Exception:
            log.exception("could not store version %s of persona %s", persona.content_hash, persona.name)


# -- persona history: shared by /persona history|diff|show and `botkit personas history|diff` ----
class VersionNotFound(LookupError):
    """A hash prefix that names no stored version, or more than one; ``str()`` says which."""


def pick_version(name: str, versions: Sequence[StoredPersonaVersion], ref: str) -> StoredPersonaVersion:
    """The one stored version of ``name`` whose hash starts with ``ref``."""
    prefix = ref.strip().lower()
    found = [v for v in versions if prefix and v.hash.startswith(prefix)]
    if len(found) == 1:
        return found[0]
    known = ", ".join(v.hash[:8] for v in versions) or "none stored"
    if not found:
        raise VersionNotFound(
            f"no stored version of {name!r} has a hash starting {ref!r} (versions: {known})"
        )
    raise VersionNotFound(f"{ref!r} matches {len(found)} versions of {name!r}; give more of the hash")


def history_lines(versions: Sequence[StoredPersonaVersion], serving: str | None) -> list[str]:
    """One line per version, oldest first: when it was first loaded, its hash, and which one serves."""
    return [
        f"{v.first_seen:%Y-%m-%d %H:%M:%S} UTC  {v.hash}" + ("  (serving)" if v.hash == serving else "")
        for v in versions
    ]


def version_diff(name: str, old: StoredPersonaVersion, new: StoredPersonaVersion) -> str:
    """A unified diff of two stored versions of one persona file."""
    lines = difflib.unified_diff(
        old.text.splitlines(keepends=True),
        new.text.splitlines(keepends=True),
        fromfile=f"{name}@{old.hash}",
        tofile=f"{name}@{new.hash}",
    )
    return "".join(line if line.endswith("\n") else line + "\n" for line in lines)
