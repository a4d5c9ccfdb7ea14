"""State bound to the audit log: the snapshot projection and its Merkle nodes, and on PostgreSQL the
triggers that record which state rows each transaction wrote

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25 00:00:00

Existing rows are not bound by this migration: binding them from the events that created them (where
the content matches) is ``gov audit adopt``, which reports everything else instead of blessing it.
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

STATE_TABLES = (
    "approval", "check_result", "column_lineage", "dataset", "dataset_field", "dataset_version", "evidence",
    "job", "model", "model_alias", "model_version", "policy_evaluation", "promotion_event", "run", "run_io",
    "signed_statement", "waiver",
)

_TOUCH_FUNCTION = """
CREATE OR REPLACE FUNCTION governance_touch() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = {schema}, pg_temp AS $fn$
DECLARE
    xid text := pg_current_xact_id()::text;
BEGIN
    IF TG_OP = 'DELETE' THEN
        INSERT INTO audit_touch (xid, tbl, row_id) VALUES (xid, TG_TABLE_NAME, OLD.id);
    ELSIF TG_TABLE_NAME = 'audit_event' THEN
        INSERT INTO audit_touch (xid, tbl, row_id) VALUES (xid, TG_TABLE_NAME, NEW.seq);
    ELSE
        INSERT INTO audit_touch (xid, tbl, row_id) VALUES (xid, TG_TABLE_NAME, NEW.id);
        IF TG_OP = 'UPDATE' AND OLD.id IS DISTINCT FROM NEW.id THEN
            INSERT INTO audit_touch (xid, tbl, row_id) VALUES (xid, TG_TABLE_NAME, OLD.id);
        END IF;
    END IF;
    RETURN NULL;
END;
$fn$
"""


def upgrade() -> None:
    op.create_table(
        "audit_state",
        sa.Column("tbl", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("row_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("bucket", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("digest", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.PrimaryKeyConstraint("tbl", "row_id"),
    )
    op.create_index("ix_audit_state_bucket", "audit_state", ["bucket"], unique=False)
    op.create_table(
        "audit_state_node",
        sa.Column("level", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("idx", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("digest", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.PrimaryKeyConstraint("level", "idx"),
    )
    op.create_table(
        "audit_touch",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("xid", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("tbl", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("row_id", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_audit_touch_xid", "audit_touch", ["xid"], unique=False)
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return  # SQLite: the audited transaction installs TEMP triggers on its own connection
    schema = bind.execute(sa.text("SELECT current_schema()")).scalar_one()
    op.execute(_TOUCH_FUNCTION.format(schema=bind.dialect.identifier_preparer.quote(schema)))
    # (``gov audit harden`` adds the same trigger on audit_event for its commit-time check)
    for table in STATE_TABLES:
        op.execute(f'CREATE TRIGGER governance_touch AFTER INSERT OR UPDATE OR DELETE ON "{table}" '
                   "FOR EACH ROW EXECUTE FUNCTION governance_touch()")


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        for table in (*STATE_TABLES, "audit_event"):
            op.execute(f'DROP TRIGGER IF EXISTS governance_touch ON "{table}"')
        op.execute("DROP FUNCTION IF EXISTS governance_touch()")
    op.drop_index("ix_audit_touch_xid", table_name="audit_touch")
    op.drop_table("audit_touch")
    op.drop_table("audit_state_node")
    op.drop_index("ix_audit_state_bucket", table_name="audit_state")
    op.drop_table("audit_state")
