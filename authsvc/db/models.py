"""The relational schema. Every row except operator keys belongs to exactly one tenant.

Secrets are never stored in clear: API and operator keys as HMAC-SHA256 (``key_hash``),
signing keys AES-GCM encrypted (``private_key_enc``). Migrations under
``migrations/`` must match these models (a test compares them).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from authsvc.db.types import BigIntPK, JsonType, UTCDateTime

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JsonType}


class Tenant(Base):
    __tablename__ = "tenants"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    slug: Mapped[str] = mapped_column(String(63), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    default_token_ttl_s: Mapped[int] = mapped_column(Integer)
    max_token_ttl_s: Mapped[int] = mapped_column(Integer)
    audiences: Mapped[list[str]] = mapped_column(JsonType, default=list)
    signing_alg: Mapped[str] = mapped_column(String(10))
    signing_key_rotation_s: Mapped[int] = mapped_column(Integer)
    allow_query_token: Mapped[bool] = mapped_column(Boolean, default=False)
    token_horizon_at: Mapped[datetime | None]
    """Until when a token minted under an earlier, higher ``max_token_ttl_s`` may live."""
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class OperatorKey(Base):
    __tablename__ = "operator_keys"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    start: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]


class ApiKey(Base):
    __tablename__ = "api_keys"
    __table_args__ = (Index("ix_api_keys_tenant_id_id", "tenant_id", "id"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    parent_id: Mapped[str | None] = mapped_column(ForeignKey("api_keys.id"), index=True)
    """The key this one derives from (created by a non-ADMIN key); ``None`` for roots."""
    name: Mapped[str] = mapped_column(String(200))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    start: Mapped[str] = mapped_column(String(20))
    previous_key_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    previous_expires_at: Mapped[datetime | None]
    grants: Mapped[list[dict[str, Any]]] = mapped_column(JsonType)
    ratelimits: Mapped[list[dict[str, Any]]] = mapped_column(JsonType, default=list)
    identity: Mapped[str | None] = mapped_column(String(200))
    expires_at: Mapped[datetime | None]
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    revoked_at: Mapped[datetime | None]
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", JsonType, default=dict)
    created_by: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    last_used_at: Mapped[datetime | None]


class Identity(Base):
    __tablename__ = "identities"

    tenant_id: Mapped[str] = mapped_column(
        ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True
    )
    external_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    ratelimits: Mapped[list[dict[str, Any]]] = mapped_column(JsonType, default=list)
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", JsonType, default=dict)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class SigningKey(Base):
    __tablename__ = "signing_keys"
    __table_args__ = (Index("ix_signing_keys_tenant_id_state", "tenant_id", "state"),)

    kid: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    alg: Mapped[str] = mapped_column(String(10))
    state: Mapped[str] = mapped_column(String(10))  # next | active | retired
    public_jwk: Mapped[dict[str, Any]]
    private_key_enc: Mapped[bytes] = mapped_column(LargeBinary)
    master_key_version: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime]
    activated_at: Mapped[datetime | None]
    retired_at: Mapped[datetime | None]
    remove_after: Mapped[datetime | None]


class Revocation(Base):
    """An append-only log of revocations, also the feed every instance polls.

    kinds: ``jti`` (one token), ``sub`` (tokens of a subject issued up to ``cutoff``),
    ``key_tokens`` (tokens minted from key ``value`` up to ``cutoff``), ``key`` (drop the key
    record from caches: revoked, disabled, changed), ``tenant`` (tenant disabled or changed),
    ``signing_key`` (a signing key removed).
    """

    __tablename__ = "revocations"
    __table_args__ = (Index("ix_revocations_tenant_id_kind_value", "tenant_id", "kind", "value"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))
    value: Mapped[str] = mapped_column(String(255))
    cutoff: Mapped[datetime]
    expires_at: Mapped[datetime | None] = mapped_column(index=True)
    created_at: Mapped[datetime] = mapped_column(index=True)


class TrustedIssuer(Base):
    """An identity provider whose tokens a tenant exchanges for data tokens (DESIGN §9)."""

    __tablename__ = "trusted_issuers"
    __table_args__ = (UniqueConstraint("tenant_id", "issuer"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    issuer: Mapped[str] = mapped_column(String(500))
    jwks_uri: Mapped[str | None] = mapped_column(String(500))
    jwks: Mapped[dict[str, Any] | None]
    audiences: Mapped[list[str]] = mapped_column(JsonType)
    algorithms: Mapped[list[str]] = mapped_column(JsonType)
    subject_claim: Mapped[str] = mapped_column(String(200))
    conditions: Mapped[dict[str, Any]]
    grants: Mapped[list[dict[str, Any]]] = mapped_column(JsonType)
    ttl_s: Mapped[int | None] = mapped_column(Integer)
    limits: Mapped[dict[str, Any] | None]
    ratelimits: Mapped[list[dict[str, Any]]] = mapped_column(JsonType, default=list)
    allowed_origins: Mapped[list[str]] = mapped_column(JsonType)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class AuditEntry(Base):
    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_tenant_id_id", "tenant_id", "id"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant_id: Mapped[str | None] = mapped_column(String(40))
    actor: Mapped[str] = mapped_column(String(80))
    action: Mapped[str] = mapped_column(String(64))
    target_type: Mapped[str] = mapped_column(String(32))
    target_id: Mapped[str | None] = mapped_column(String(200))
    details: Mapped[dict[str, Any]] = mapped_column(JsonType, default=dict)
    created_at: Mapped[datetime]
