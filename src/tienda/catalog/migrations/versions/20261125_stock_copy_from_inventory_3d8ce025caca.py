"""stock copy from inventory: available units per variant (and per product without variants)

Revision ID: 3d8ce025caca
Revises: 0aafcefb7493
Create Date: 2026-11-25 23:03:35.597791
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
import tienda.platform.db


revision: str = "3d8ce025caca"
down_revision: str | None = "0aafcefb7493"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("product_variants", schema=None) as batch_op:
        batch_op.add_column(sa.Column("stock_available", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("stock_updated_at", tienda.platform.db.UTCDateTime(timezone=True), nullable=True))

    with op.batch_alter_table("products", schema=None) as batch_op:
        batch_op.add_column(sa.Column("stock_available", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("stock_updated_at", tienda.platform.db.UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("products", schema=None) as batch_op:
        batch_op.drop_column("stock_updated_at")
        batch_op.drop_column("stock_available")

    with op.batch_alter_table("product_variants", schema=None) as batch_op:
        batch_op.drop_column("stock_updated_at")
        batch_op.drop_column("stock_available")
