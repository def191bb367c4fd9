"""Initial notifier schema: uploads, spaces, applied events.

Revision ID: 0001_initial
Revises:
Create Date: 2026-11-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from avatarflow_notifier.adapters.models import UtcDateTime

revision = "0001_initial"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "notifier_uploads",
        sa.Column("upload_id", sa.String(36), nullable=False),
        sa.Column("space_id", sa.String(128), nullable=False),
        sa.Column("editor_id", sa.String(128), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("stage", sa.String(16), nullable=True),
        sa.Column("uploaded_at", UtcDateTime(), nullable=True),
        sa.Column("first_seen_at", UtcDateTime(), nullable=False),
        sa.Column("order_at", UtcDateTime(), nullable=False),
        sa.Column("status_at", UtcDateTime(), nullable=False),
        sa.Column("original_key", sa.String(1024), nullable=True),
        sa.Column("terminal_event_type", sa.String(32), nullable=True),
        sa.Column("reasons", sa.JSON(), nullable=False),
        sa.Column("editor_messages", sa.JSON(), nullable=False),
        sa.Column("checks", sa.JSON(), nullable=False),
        sa.Column("warnings", sa.JSON(), nullable=False),
        sa.Column("pack", sa.JSON(), nullable=True),
        sa.Column("failure", sa.JSON(), nullable=True),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("upload_id", name="pk_notifier_uploads"),
    )
    op.create_index("ix_notifier_uploads_space_order", "notifier_uploads", ["space_id", "order_at", "upload_id"])
    op.create_table(
        "notifier_spaces",
        sa.Column("space_id", sa.String(128), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("latest_upload_id", sa.String(36), nullable=True),
        sa.Column("avatar", sa.JSON(), nullable=True),
        sa.Column("picked_avatar_id", sa.String(128), nullable=True),
        sa.Column("picked_at", UtcDateTime(), nullable=True),
        sa.Column("prompt_dismissed_upload_id", sa.String(36), nullable=True),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("space_id", name="pk_notifier_spaces"),
    )
    op.create_table(
        "notifier_applied_events",
        sa.Column("event_id", sa.String(36), nullable=False),
        sa.Column("event_type", sa.String(32), nullable=False),
        sa.Column("upload_id", sa.String(36), nullable=False),
        sa.Column("space_id", sa.String(128), nullable=False),
        sa.Column("occurred_at", UtcDateTime(), nullable=False),
        sa.Column("applied_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("event_id", name="pk_notifier_applied_events"),
    )
    op.create_index("ix_notifier_applied_events_upload", "notifier_applied_events", ["upload_id"])


def downgrade() -> None:
    op.drop_index("ix_notifier_applied_events_upload", table_name="notifier_applied_events")
    op.drop_table("notifier_applied_events")
    op.drop_table("notifier_spaces")
    op.drop_index("ix_notifier_uploads_space_order", table_name="notifier_uploads")
    op.drop_table("notifier_uploads")
