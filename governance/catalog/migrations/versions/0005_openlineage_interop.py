"""OpenLineage interoperability: column lineage keeps subtype, masking and dataset-level entries;
ingested inputs without a version facet are marked as bound by time

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25 00:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("column_lineage", schema=None) as batch_op:
        batch_op.alter_column("output_field_id", existing_type=sa.Integer(), nullable=True)
        batch_op.add_column(sa.Column("output_version_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("subtype", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True))
        batch_op.add_column(sa.Column("masking", sa.Boolean(), nullable=True))
        batch_op.create_foreign_key("fk_column_lineage_output_version", "dataset_version",
                                    ["output_version_id"], ["id"])
    with op.batch_alter_table("run_io", schema=None) as batch_op:
        batch_op.add_column(sa.Column("binding", sqlmodel.sql.sqltypes.AutoString(length=8), nullable=True))
    with op.batch_alter_table("dataset_version", schema=None) as batch_op:
        batch_op.create_index("ix_dataset_version_time", ["dataset_id", "created_at"], unique=False)
    with op.batch_alter_table("run", schema=None) as batch_op:
        batch_op.create_index("ix_run_started", ["started_at"], unique=False)


def downgrade() -> None:
    bind = op.get_bind()
    dataset_level = bind.execute(
        sa.text("SELECT count(*) FROM column_lineage WHERE output_field_id IS NULL")).scalar_one()
    if dataset_level:
        raise RuntimeError(f"column_lineage: {dataset_level} dataset-level entr(ies) have no output field; "
                           "they cannot be kept by the previous schema")
    with op.batch_alter_table("run", schema=None) as batch_op:
        batch_op.drop_index("ix_run_started")
    with op.batch_alter_table("dataset_version", schema=None) as batch_op:
        batch_op.drop_index("ix_dataset_version_time")
    with op.batch_alter_table("run_io", schema=None) as batch_op:
        batch_op.drop_column("binding")
    with op.batch_alter_table("column_lineage", schema=None) as batch_op:
        batch_op.drop_constraint("fk_column_lineage_output_version", type_="foreignkey")
        batch_op.drop_column("masking")
        batch_op.drop_column("subtype")
        batch_op.drop_column("output_version_id")
        batch_op.alter_column("output_field_id", existing_type=sa.Integer(), nullable=False)
