"""Which botkit process answers a turn: ``workers`` and ``messages.owner``.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02

Several botkit processes may share one database. The restart pass used to repair every unfinished
turn it found, including those another, still-running process was answering. Each process now
registers in ``workers`` (host, pid, heartbeat) and stamps the reply rows it writes with its id;
only rows of processes that are gone are repaired. Rows written before this revision have no
owner and are treated as before. Written by hand to match botkit.store.models (tests compare).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "workers",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_workers")),
    )
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("owner", sa.String(32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("owner")
    op.drop_table("workers")
