"""signed decisions: a signed_statement table; a waiver's approver is set when it is approved

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 20:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "signed_statement",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("target_id", sa.Integer(), nullable=False),
        sa.Column("statement", sa.Text(), nullable=False),
        sa.Column("signature", sa.Text(), nullable=True),
        sa.Column("key_fingerprint", sqlmodel.sql.sqltypes.AutoString(length=80), nullable=True),
        sa.Column("principal", sqlmodel.sql.sqltypes.AutoString(), nullable=True),
        sa.Column("trust_digest", sqlmodel.sql.sqltypes.AutoString(length=80), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_signed_statement_target", "signed_statement", ["kind", "target_id"], unique=False)
    with op.batch_alter_table("waiver", schema=None) as batch_op:
        batch_op.alter_column("approver", existing_type=sqlmodel.sql.sqltypes.AutoString(), nullable=True)


def downgrade() -> None:
    bind = op.get_bind()
    pending = bind.execute(sa.text("SELECT count(*) FROM waiver WHERE approver IS NULL")).scalar_one()
    if pending:
        raise RuntimeError(f"waiver: {pending} waiver(s) await approval; approve or revoke them before downgrading")
    with op.batch_alter_table("waiver", schema=None) as batch_op:
        batch_op.alter_column("approver", existing_type=sqlmodel.sql.sqltypes.AutoString(), nullable=False)
    op.drop_index("ix_signed_statement_target", table_name="signed_statement")
    op.drop_table("signed_statement")
