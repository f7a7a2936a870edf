"""Frozen views of the audit trail and of stored persona versions (see :mod:`botkit.store.models`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from botkit.store.models import AuditEntry, PersonaVersion


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One ``audit`` row: who did (or was refused) what, where and when."""

    id: int
    at: datetime
    platform: str
    workspace: str | None
    channel: str | None
    actor: str | None
    action: str
    detail: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_row(cls, row: AuditEntry) -> AuditRecord:
        return cls(
            row.id, row.at, row.platform, row.workspace, row.channel, row.actor, row.action, dict(row.detail)
        )

    def as_json(self) -> dict[str, Any]:
        """The row as ``botkit audit --json`` prints it (time in ISO 8601, UTC)."""
        return {
            "id": self.id,
            "at": self.at.isoformat(),
            "platform": self.platform,
            "workspace": self.workspace,
            "channel": self.channel,
            "actor": self.actor,
            "action": self.action,
            "detail": self.detail,
        }


@dataclass(frozen=True, slots=True)
class StoredPersonaVersion:
    """One persona file's full text as it was when its content hash was first loaded."""

    name: str
    hash: str
    text: str
    first_seen: datetime

    @classmethod
    def from_row(cls, row: PersonaVersion) -> StoredPersonaVersion:
        return cls(row.name, row.hash, row.text, row.first_seen)
