"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-26 09:55:23.021893
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import authsvc.db.types

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "audit_log",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=True),
        sa.Column("actor", sa.String(length=80), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("target_type", sa.String(length=32), nullable=False),
        sa.Column("target_id", sa.String(length=200), nullable=True),
        sa.Column(
            "details", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
        ),
        sa.Column("created_at", authsvc.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.create_index("ix_audit_log_tenant_id_id", ["tenant_id", "id"], unique=False)

    op.create_table(
        "operator_keys",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("start", sa.String(length=20), nullable=False),
        sa.Column("created_at", authsvc.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", authsvc.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_operator_keys")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_operator_keys_key_hash")),
    )
    op.create_table(
        "tenants",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("slug", sa.String(length=63), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("default_token_ttl_s", sa.Integer(), nullable=False),
        sa.Column("max_token_ttl_s", sa.Integer(), nullable=False),
        sa.Column(
            "audiences", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
        ),
        sa.Column("signing_alg", sa.String(length=10), nullable=False),
        sa.Column("signing_key_rotation_s", sa.Integer(), nullable=False),
        sa.Column("allow_query_token", sa.Boolean(), nullable=False),
        sa.Column("created_at", authsvc.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", authsvc.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tenants")),
        sa.UniqueConstraint("slug", name=op.f("uq_tenants_slug")),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("start", sa.String(length=20), nullable=False),
        sa.Column("previous_key_hash", sa.String(length=64), nullable=True),
        sa.Column(
            "previous_expires_at", authsvc.db.types.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column(
            "grants", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
        ),
        sa.Column(
            "ratelimits", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
        ),
        sa.Column("identity", sa.String(length=200), nullable=True),
        sa.Column("expires_at", authsvc.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("revoked_at", authsvc.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column(
            "metadata", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
        ),
        sa.Column("created_by", sa.String(length=40), nullable=True),
        sa.Column("created_at", authsvc.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", authsvc.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", authsvc.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_api_keys_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_api_keys_key_hash")),
        sa.UniqueConstraint("previous_key_hash", name=op.f("uq_api_keys_previous_key_hash")),
    )
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.create_index("ix_api_keys_tenant_id_id", ["tenant_id", "id"], unique=False)

    op.create_table(
        "identities",
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("external_id", sa.String(length=200), nullable=False),
        sa.Column(
            "ratelimits", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
        ),
        sa.Column(
            "metadata", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
        ),
        sa.Column("created_at", authsvc.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", authsvc.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_identities_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "external_id", name=op.f("pk_identities")),
    )
    op.create_table(
        "revocations",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("value", sa.String(length=200), nullable=False),
        sa.Column("cutoff", authsvc.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", authsvc.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", authsvc.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_revocations_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_revocations")),
    )
    with op.batch_alter_table("revocations", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_revocations_created_at"), ["created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_revocations_expires_at"), ["expires_at"], unique=False)
        batch_op.create_index(
            "ix_revocations_tenant_id_kind_value", ["tenant_id", "kind", "value"], unique=False
        )

    op.create_table(
        "signing_keys",
        sa.Column("kid", sa.String(length=64), nullable=False),
        sa.Column("tenant_id", sa.String(length=40), nullable=False),
        sa.Column("alg", sa.String(length=10), nullable=False),
        sa.Column("state", sa.String(length=10), nullable=False),
        sa.Column(
            "public_jwk", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
        ),
        sa.Column("private_key_enc", sa.LargeBinary(), nullable=False),
        sa.Column("master_key_version", sa.String(length=16), nullable=False),
        sa.Column("created_at", authsvc.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("activated_at", authsvc.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("retired_at", authsvc.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("remove_after", authsvc.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_signing_keys_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("kid", name=op.f("pk_signing_keys")),
    )
    with op.batch_alter_table("signing_keys", schema=None) as batch_op:
        batch_op.create_index(
            "ix_signing_keys_tenant_id_state", ["tenant_id", "state"], unique=False
        )


def downgrade() -> None:

    with op.batch_alter_table("signing_keys", schema=None) as batch_op:
        batch_op.drop_index("ix_signing_keys_tenant_id_state")

    op.drop_table("signing_keys")
    with op.batch_alter_table("revocations", schema=None) as batch_op:
        batch_op.drop_index("ix_revocations_tenant_id_kind_value")
        batch_op.drop_index(batch_op.f("ix_revocations_expires_at"))
        batch_op.drop_index(batch_op.f("ix_revocations_created_at"))

    op.drop_table("revocations")
    op.drop_table("identities")
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.drop_index("ix_api_keys_tenant_id_id")

    op.drop_table("api_keys")
    op.drop_table("tenants")
    op.drop_table("operator_keys")
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_log_tenant_id_id")

    op.drop_table("audit_log")
