"""Tenant routes for API keys (``Authorization: Bearer <API key>``)."""

from __future__ import annotations

from litestar import Controller, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody

from authsvc.keys.schemas import KeyCreate, KeyCreated, KeyOut, KeyPage, KeyPatch, RerollIn
from authsvc.keys.service import KeyService
from authsvc.keys.state import KeyInfo
from authsvc.web.deps import Caller
from authsvc.web.schemas import grants_in, grants_out, present, ratelimits_out

Keys = NamedDependency[KeyService]


def key_out(info: KeyInfo) -> KeyOut:
    return KeyOut(
        id=info.id,
        tenant_id=info.tenant_id,
        parent_id=info.parent_id,
        name=info.name,
        start=info.start,
        scopes=grants_out(info.grants),
        ratelimits=ratelimits_out(info.ratelimits),
        identity=info.identity,
        expires_at=info.expires_at,
        enabled=info.enabled,
        revoked_at=info.revoked_at,
        metadata=info.metadata,
        created_by=info.created_by,
        created_at=info.created_at,
        updated_at=info.updated_at,
        last_used_at=info.last_used_at,
        previous_expires_at=info.previous_expires_at,
    )


def key_created(info: KeyInfo, key: str) -> KeyCreated:
    out = key_out(info)
    return KeyCreated(**{f: getattr(out, f) for f in out.__struct_fields__}, key=key)


class KeyController(Controller):
    path = "/v1/keys"
    tags = ["keys"]

    @post("/")
    async def create_key(self, data: JSONBody[KeyCreate], keys: Keys, caller: Caller) -> KeyCreated:
        created = await keys.create(
            caller,
            name=data.name,
            scopes=grants_in(data.scopes),
            ratelimits=data.ratelimits,
            identity=data.identity,
            expires_at=data.expires_at,
            metadata=data.metadata,
        )
        return key_created(created.info, created.key)

    @get("/")
    async def list_keys(
        self,
        keys: Keys,
        caller: Caller,
        limit: FromQuery[int | None] = None,
        cursor: FromQuery[str | None] = None,
    ) -> KeyPage:
        infos, next_cursor = await keys.list(caller, limit=limit, cursor=cursor)
        return KeyPage([key_out(i) for i in infos], next_cursor)

    @get("/{key_id:str}")
    async def get_key(self, key_id: FromPath[str], keys: Keys, caller: Caller) -> KeyOut:
        return key_out(await keys.get(caller, key_id))

    @patch("/{key_id:str}")
    async def update_key(
        self,
        key_id: FromPath[str],
        data: JSONBody[KeyPatch],
        keys: Keys,
        caller: Caller,
    ) -> KeyOut:
        changes = present(data)
        if "scopes" in changes:
            changes["scopes"] = grants_in(changes["scopes"])
        return key_out(await keys.update(caller, key_id, changes))

    @delete("/{key_id:str}", status_code=200)
    async def revoke_key(self, key_id: FromPath[str], keys: Keys, caller: Caller) -> KeyOut:
        return key_out(await keys.revoke(caller, key_id))

    @post("/{key_id:str}/reroll", status_code=200)
    async def reroll_key(
        self,
        key_id: FromPath[str],
        keys: Keys,
        caller: Caller,
        data: JSONBody[RerollIn | None] = None,
    ) -> KeyCreated:
        created = await keys.reroll(caller, key_id, data.grace_s if data else 0)
        return key_created(created.info, created.key)
