"""Index the applied-event records by age, for their retention.

Revision ID: 0002_applied_events_retention
Revises: 0001_initial
Create Date: 2026-11-24
"""

from __future__ import annotations

from alembic import op

revision = "0002_applied_events_retention"
down_revision = "0001_initial"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_notifier_applied_events_applied_at", "notifier_applied_events", ["applied_at"])


def downgrade() -> None:
    op.drop_index("ix_notifier_applied_events_applied_at", table_name="notifier_applied_events")
