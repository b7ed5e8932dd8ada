"""Tenant routes for API keys (``Authorization: Bearer <API key>``)."""

from __future__ import annotations

from litestar import Controller, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody

from authsvc.keys.schemas import KeyCreate, KeyCreated, KeyOut, KeyPage, KeyPatch, RerollIn
from authsvc.keys.service import KeyService
from authsvc.keys.state import KeyInfo
from authsvc.web.deps import Caller
from authsvc.web.schemas import grants_in, grants_out, present, ratelimits_out, struct_from

Keys = NamedDependency[KeyService]


def key_out(info: KeyInfo) -> KeyOut:
    return struct_from(
        KeyOut,
        info,
        scopes=grants_out(info.grants),
        ratelimits=ratelimits_out(info.ratelimits),
    )


def key_created(info: KeyInfo, key: str) -> KeyCreated:
    return struct_from(KeyCreated, key_out(info), key=key)


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
