"""Alembic environment: runs on the connection the catalog hands over (already locked)."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

import governance.catalog._models  # noqa: F401  (registers the tables on SQLModel.metadata)

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through governance: `gov db upgrade` or Catalog.upgrade()")

context.configure(
    connection=connection,
    target_metadata=SQLModel.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
