"""Tenant routes for API keys (``Authorization: Bearer <API key>``)."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Controller, delete, get, patch, post
from litestar.di import Provide
from litestar.params import FromPath, FromQuery, JSONBody

from authsvc.db.models import ApiKey
from authsvc.keys.schemas import KeyCreate, KeyCreated, KeyOut, KeyPage, KeyPatch, RerollIn
from authsvc.web.auth import provide_principal
from authsvc.web.deps import PrincipalDep, ServicesDep
from authsvc.web.schemas import grants_in, grants_out, ratelimits_out


def key_out(row: ApiKey) -> dict[str, Any]:
    return {
        "id": row.id,
        "tenant_id": row.tenant_id,
        "name": row.name,
        "start": row.start,
        "scopes": grants_out(row.grants),
        "ratelimits": ratelimits_out(row.ratelimits),
        "identity": row.identity,
        "expires_at": row.expires_at,
        "enabled": row.enabled,
        "revoked_at": row.revoked_at,
        "metadata": row.meta,
        "created_by": row.created_by,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
        "last_used_at": row.last_used_at,
        "previous_expires_at": row.previous_expires_at,
    }


class KeyController(Controller):
    path = "/v1/keys"
    tags = ["keys"]
    dependencies = {"principal": Provide(provide_principal)}

    @post("/")
    async def create_key(
        self, data: JSONBody[KeyCreate], services: ServicesDep, principal: PrincipalDep
    ) -> KeyCreated:
        created = await services.keys.create(
            principal,
            name=data.name,
            scopes=grants_in(data.scopes),
            ratelimits=data.ratelimits,
            identity=data.identity,
            expires_at=data.expires_at,
            metadata=data.metadata,
        )
        return KeyCreated(**key_out(created.record), key=created.key)

    @get("/")
    async def list_keys(
        self,
        services: ServicesDep,
        principal: PrincipalDep,
        limit: FromQuery[int | None] = None,
        cursor: FromQuery[str | None] = None,
    ) -> KeyPage:
        rows, next_cursor = await services.keys.list(principal, limit=limit, cursor=cursor)
        return KeyPage([KeyOut(**key_out(r)) for r in rows], next_cursor)

    @get("/{key_id:str}")
    async def get_key(
        self, key_id: FromPath[str], services: ServicesDep, principal: PrincipalDep
    ) -> KeyOut:
        return KeyOut(**key_out(await services.keys.get(principal, key_id)))

    @patch("/{key_id:str}")
    async def update_key(
        self,
        key_id: FromPath[str],
        data: JSONBody[KeyPatch],
        services: ServicesDep,
        principal: PrincipalDep,
    ) -> KeyOut:
        changes = {
            f: getattr(data, f)
            for f in data.__struct_fields__
            if getattr(data, f) is not msgspec.UNSET
        }
        if "scopes" in changes:
            changes["scopes"] = grants_in(changes["scopes"])
        return KeyOut(**key_out(await services.keys.update(principal, key_id, changes)))

    @delete("/{key_id:str}", status_code=200)
    async def revoke_key(
        self, key_id: FromPath[str], services: ServicesDep, principal: PrincipalDep
    ) -> KeyOut:
        return KeyOut(**key_out(await services.keys.revoke(principal, key_id)))

    @post("/{key_id:str}/reroll", status_code=200)
    async def reroll_key(
        self,
        key_id: FromPath[str],
        services: ServicesDep,
        principal: PrincipalDep,
        data: JSONBody[RerollIn | None] = None,
    ) -> KeyCreated:
        grace = data.grace_s if data else 0
        created = await services.keys.reroll(principal, key_id, grace)
        return KeyCreated(**key_out(created.record), key=created.key)
