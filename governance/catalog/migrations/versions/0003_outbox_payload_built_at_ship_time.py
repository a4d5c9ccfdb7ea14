"""OpenLineage outbox rows may wait without a payload (built by the shipper from the run's rows)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 00:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("ol_outbox", schema=None) as batch_op:
        batch_op.alter_column("payload", existing_type=sa.Text(), nullable=True)


def downgrade() -> None:
    # rows still waiting for their document cannot satisfy NOT NULL: refuse rather than drop events
    bind = op.get_bind()
    waiting = bind.execute(sa.text("SELECT count(*) FROM ol_outbox WHERE payload IS NULL")).scalar_one()
    if waiting:
        raise RuntimeError(
            f"ol_outbox: {waiting} event(s) have no payload yet; run `gov sync` before downgrading"
        )
    with op.batch_alter_table("ol_outbox", schema=None) as batch_op:
        batch_op.alter_column("payload", existing_type=sa.Text(), nullable=False)
