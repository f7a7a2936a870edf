"""An index on ``messages.reply_to_id``: removing turns must not scan the table per row.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02

``botkit db forget``, ``botkit db prune`` and ``[retention]`` delete questions, and every deleted
question makes the database look for the answers that point at it (the foreign key's ``ON DELETE
SET NULL``, and the check that none of them is still streaming): without this index each of those
lookups reads the whole ``messages`` table, so removing many turns took time quadratic in the
table's size. The thread history's question/answer join uses it too. Written by hand to match
botkit.store.models (tests compare the two).
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(op.f("ix_messages_reply_to_id"), "messages", ["reply_to_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_messages_reply_to_id"), table_name="messages")
