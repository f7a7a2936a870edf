"""The audit trail and persona history: ``audit`` and ``persona_versions``.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02

``audit``: one row per refusal, admin command and persona load / reload / failed reload, with
time, platform, workspace, channel, actor and a JSON detail; indexed by time (retention, --since)
and by actor then time (``botkit audit --actor``). ``persona_versions``: each persona file's
full text once per content hash, so the hash stored with every turn can be read back and diffed.
Written by hand to match botkit.store.models (tests compare the two).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "audit",
        sa.Column("id", Id, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("platform", sa.String(32), nullable=False),
        sa.Column("workspace", sa.String(255), nullable=True),
        sa.Column("channel", sa.String(255), nullable=True),
        sa.Column("actor", sa.String(255), nullable=True),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit")),
    )
    op.create_index(op.f("ix_audit_at"), "audit", ["at"])
    op.create_index(op.f("ix_audit_actor_at"), "audit", ["actor", "at"])
    op.create_table(
        "persona_versions",
        sa.Column("id", Id, nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("hash", sa.String(128), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_persona_versions")),
        sa.UniqueConstraint("name", "hash", name=op.f("uq_persona_versions_name_hash")),
    )


def downgrade() -> None:
    op.drop_table("persona_versions")
    op.drop_index(op.f("ix_audit_actor_at"), table_name="audit")
    op.drop_index(op.f("ix_audit_at"), table_name="audit")
    op.drop_table("audit")
