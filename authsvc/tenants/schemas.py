from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec

from authsvc.web.schemas import Name


class TenantCreate(msgspec.Struct, forbid_unknown_fields=True):
    name: Name
    slug: Annotated[str, msgspec.Meta(max_length=63)] | None = None


class TenantPatchIn(msgspec.Struct, forbid_unknown_fields=True):
    name: Name | None = None
    enabled: bool | None = None
    default_token_ttl_s: int | None = None
    max_token_ttl_s: int | None = None
    audiences: list[str] | None = None
    signing_alg: str | None = None
    signing_key_rotation_s: int | None = None
    allow_query_token: bool | None = None


class TenantOut(msgspec.Struct):
    id: str
    slug: str
    name: str
    enabled: bool
    issuer: str
    audiences: list[str]
    default_token_ttl_s: int
    max_token_ttl_s: int
    signing_alg: str
    signing_key_rotation_s: int
    allow_query_token: bool
    created_at: datetime
    updated_at: datetime


class AdminKeyOut(msgspec.Struct):
    id: str
    key: str


class TenantCreated(msgspec.Struct):
    tenant: TenantOut
    admin_key: AdminKeyOut


class TenantPage(msgspec.Struct):
    data: list[TenantOut]
    next_cursor: str | None
