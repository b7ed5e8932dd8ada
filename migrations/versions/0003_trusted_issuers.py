"""trusted issuers (DESIGN §9)

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 06:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import authsvc.db.types

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "trusted_issuers",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("issuer", sa.String(length=500), nullable=False),
        sa.Column("jwks_uri", sa.String(length=500), nullable=True),
        sa.Column("jwks", JSON, nullable=True),
        sa.Column("audiences", JSON, nullable=False),
        sa.Column("algorithms", JSON, nullable=False),
        sa.Column("subject_claim", sa.String(length=200), nullable=False),
        sa.Column("conditions", JSON, nullable=False),
        sa.Column("grants", JSON, nullable=False),
        sa.Column("ttl_s", sa.Integer(), nullable=True),
        sa.Column("limits", JSON, nullable=True),
        sa.Column("ratelimits", JSON, nullable=False),
        sa.Column("allowed_origins", JSON, nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", authsvc.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", authsvc.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_trusted_issuers_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_trusted_issuers")),
        sa.UniqueConstraint("tenant_id", "issuer", name=op.f("uq_trusted_issuers_tenant_id")),
    )


def downgrade() -> None:
    op.drop_table("trusted_issuers")
