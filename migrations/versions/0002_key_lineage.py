"""key lineage, revocation horizon, wider revocation values

* ``api_keys.parent_id``: the key a key derives from (created by a non-ADMIN key), DESIGN §8.
* ``tenants.token_horizon_at``: until when tokens minted under an earlier, higher
  ``max_token_ttl_s`` may live, so revocations outlive them.
* ``revocations.value`` 200 → 255: an identity event is ``identity:`` + a 200-character id.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02 05:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import authsvc.db.types

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.add_column(sa.Column("parent_id", sa.String(length=40), nullable=True))
        batch_op.create_index(batch_op.f("ix_api_keys_parent_id"), ["parent_id"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_api_keys_parent_id_api_keys"), "api_keys", ["parent_id"], ["id"]
        )
    with op.batch_alter_table("tenants", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "token_horizon_at", authsvc.db.types.UTCDateTime(timezone=True), nullable=True
            )
        )
    with op.batch_alter_table("revocations", schema=None) as batch_op:
        batch_op.alter_column(
            "value", existing_type=sa.String(length=200), type_=sa.String(length=255)
        )


def downgrade() -> None:
    with op.batch_alter_table("revocations", schema=None) as batch_op:
        batch_op.alter_column(
            "value", existing_type=sa.String(length=255), type_=sa.String(length=200)
        )
    with op.batch_alter_table("tenants", schema=None) as batch_op:
        batch_op.drop_column("token_horizon_at")
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_api_keys_parent_id_api_keys"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_api_keys_parent_id"))
        batch_op.drop_column("parent_id")
