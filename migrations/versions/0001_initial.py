"""Initial schema: conversations, messages, deliveries.

Revision ID: 0001
Revises:
Create Date: 2025-11-29

Written by hand to match botkit.store.models exactly (tests compare the two on SQLite and
PostgreSQL). Constraint names follow the models' naming convention so later migrations, the
downgrade and SQLite batch mode can address them; they are wrapped in op.f() because env.py
hands Alembic the models' metadata, whose convention would otherwise be applied a second time
("ck_messages_ck_messages_role").
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# BIGINT ids on PostgreSQL; SQLite only autoincrements an INTEGER PRIMARY KEY.
Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _ts(name: str) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=False)


def upgrade() -> None:
    op.create_table(
        "conversations",
        sa.Column("id", Id, nullable=False),
        sa.Column("platform", sa.String(32), nullable=False),
        sa.Column("workspace", sa.String(255), nullable=False),
        sa.Column("channel", sa.String(255), nullable=False),
        sa.Column("thread", sa.String(255), nullable=False),
        _ts("created_at"),
        _ts("updated_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_conversations")),
        sa.UniqueConstraint(
            "platform", "workspace", "channel", "thread",
            name=op.f("uq_conversations_platform_workspace_channel_thread"),
        ),
    )
    op.create_table(
        "messages",
        sa.Column("id", Id, nullable=False),
        sa.Column("conversation_id", Id, nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("reasoning", sa.Text(), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("user_id", sa.String(255), nullable=True),
        sa.Column("persona_name", sa.String(255), nullable=True),
        sa.Column("persona_hash", sa.String(128), nullable=True),
        sa.Column("model", sa.String(255), nullable=True),
        sa.Column("prompt_tokens", sa.Integer(), nullable=True),
        sa.Column("completion_tokens", sa.Integer(), nullable=True),
        sa.Column("ttft_ms", sa.Integer(), nullable=True),
        sa.Column("total_ms", sa.Integer(), nullable=True),
        sa.Column("platform_message_ids", sa.JSON(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("delivery_id", sa.String(255), nullable=True),
        sa.Column("reply_to_id", Id, nullable=True),
        _ts("created_at"),
        _ts("updated_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_messages")),
        sa.CheckConstraint("role IN ('user', 'assistant')", name=op.f("ck_messages_role")),
        sa.CheckConstraint(
            "status IN ('streaming', 'complete', 'failed', 'interrupted')", name=op.f("ck_messages_status")
        ),
        sa.ForeignKeyConstraint(
            ["conversation_id"], ["conversations.id"],
            name=op.f("fk_messages_conversation_id_conversations"), ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["reply_to_id"], ["messages.id"], name=op.f("fk_messages_reply_to_id_messages"), ondelete="SET NULL"
        ),
    )
    op.create_index(op.f("ix_messages_conversation_id_id"), "messages", ["conversation_id", "id"])
    op.create_index(
        op.f("ix_messages_streaming"),
        "messages",
        ["id"],
        sqlite_where=sa.text("status = 'streaming'"),
        postgresql_where=sa.text("status = 'streaming'"),
    )
    op.create_table(
        "deliveries",
        sa.Column("id", Id, nullable=False),
        sa.Column("platform", sa.String(32), nullable=False),
        sa.Column("delivery_id", sa.String(255), nullable=False),
        _ts("received_at"),
        sa.Column("conversation_id", Id, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deliveries")),
        sa.UniqueConstraint("platform", "delivery_id", name=op.f("uq_deliveries_platform_delivery_id")),
        sa.ForeignKeyConstraint(
            ["conversation_id"], ["conversations.id"],
            name=op.f("fk_deliveries_conversation_id_conversations"), ondelete="SET NULL",
        ),
    )


def downgrade() -> None:
    op.drop_table("deliveries")
    op.drop_index(op.f("ix_messages_streaming"), table_name="messages")
    op.drop_index(op.f("ix_messages_conversation_id_id"), table_name="messages")
    op.drop_table("messages")
    op.drop_table("conversations")
