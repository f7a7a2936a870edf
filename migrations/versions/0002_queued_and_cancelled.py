"""Turn statuses ``queued`` and ``cancelled``; the in-flight index covers queued turns too.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02

``queued``: a reply whose placeholder is posted while it waits behind the thread's previous
turn, recorded with its placeholder id from the start so a restart finds it. ``cancelled``: the
asker stopped the answer (Ctrl-C in the console). SQLite cannot alter a CHECK constraint, so
the table is rebuilt in batch mode; the partial index is dropped first and recreated after,
because batch mode does not carry a partial index's WHERE clause over.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_STATUSES = "status IN ('streaming', 'complete', 'failed', 'interrupted')"
NEW_STATUSES = "status IN ('queued', 'streaming', 'complete', 'failed', 'interrupted', 'cancelled')"
UNFINISHED = "status IN ('queued', 'streaming')"


def _swap(old_index: str, new_index: str, where: str, check: str) -> None:
    op.drop_index(op.f(old_index), table_name="messages")
    with op.batch_alter_table("messages") as batch:
        batch.drop_constraint(op.f("ck_messages_status"), type_="check")
        batch.create_check_constraint(op.f("ck_messages_status"), sa.text(check))
    op.create_index(
        op.f(new_index), "messages", ["id"], sqlite_where=sa.text(where), postgresql_where=sa.text(where)
    )


def upgrade() -> None:
    _swap("ix_messages_streaming", "ix_messages_unfinished", UNFINISHED, NEW_STATUSES)


def downgrade() -> None:
    op.execute("UPDATE messages SET status = 'interrupted' WHERE status IN ('queued', 'cancelled')")
    _swap("ix_messages_unfinished", "ix_messages_streaming", "status = 'streaming'", OLD_STATUSES)
