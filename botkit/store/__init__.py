"""Conversation storage: per-thread history, turns and delivery claims in SQL (SQLite or PostgreSQL).

The schema comes only from the Alembic migrations (:mod:`botkit.store.migrate`).
"""

from botkit.store.audit import AuditRecord, StoredPersonaVersion
from botkit.store.database import StoreError
from botkit.store.migrate import current_revision, downgrade, head_revision, migrations_dir, upgrade
from botkit.store.records import HistoryTurn, StoredMessage, TurnIds
from botkit.store.store import ConversationStore

__all__ = [
    "AuditRecord",
    "ConversationStore",
    "HistoryTurn",
    "StoreError",
    "StoredMessage",
    "StoredPersonaVersion",
    "TurnIds",
    "current_revision",
    "downgrade",
    "head_revision",
    "migrations_dir",
    "upgrade",
]
