"""Feedback: one 👍/👎 per user and turn, with the turn's persona version.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02

``feedback``: one row per (assistant message = turn, platform, voter) under a unique key, so a
second click by the same user updates the row; ``vote`` is ``up`` or ``down``; the turn's
``persona_name`` and ``persona_hash`` are copied in when the vote is cast (indexed together:
``botkit eval report`` groups by them). Deleting the turn deletes its votes.
Written by hand to match botkit.store.models (tests compare the two). Another migration (0004)
may land in between: the lead rechains ``down_revision`` at merge.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "feedback",
        sa.Column("id", Id, nullable=False),
        sa.Column("message_id", Id, nullable=False),
        sa.Column("platform", sa.String(32), nullable=False),
        sa.Column("voter", sa.String(255), nullable=False),
        sa.Column("vote", sa.String(8), nullable=False),
        sa.Column("persona_name", sa.String(255), nullable=True),
        sa.Column("persona_hash", sa.String(128), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("vote IN ('up', 'down')", name=op.f("ck_feedback_vote")),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["messages.id"],
            name=op.f("fk_feedback_message_id_messages"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feedback")),
        sa.UniqueConstraint("message_id", "platform", "voter", name=op.f("uq_feedback_message_id_platform_voter")),
    )
    op.create_index(op.f("ix_feedback_persona_name_persona_hash"), "feedback", ["persona_name", "persona_hash"])


def downgrade() -> None:
    op.drop_index(op.f("ix_feedback_persona_name_persona_hash"), table_name="feedback")
    op.drop_table("feedback")
