"""Helpers shared by the token, signing and OAuth API tests."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx

from authsvc.services import Services
from authsvc.verify.verdict import Verdict
from tests.conftest import bearer

Client = httpx.AsyncClient


def segment(token: str, index: int) -> dict[str, Any]:
    part = token.split(".")[index]
    out: dict[str, Any] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return out


def header_of(token: str) -> dict[str, Any]:
    return segment(token, 0)


def claims_of(token: str) -> dict[str, Any]:
    return segment(token, 1)


async def mint_response(client: Client, key: str, **body: Any) -> httpx.Response:
    return await client.post("/v1/tokens", json=body, headers=bearer(key))


async def mint(client: Client, key: str, scopes: list[Any], **body: Any) -> dict[str, Any]:
    r = await mint_response(client, key, scopes=scopes, **body)
    assert r.status_code == 201, r.text
    out: dict[str, Any] = r.json()
    return out


async def check(services: Services, token: str, tenant: dict[str, Any]) -> Verdict:
    return await services.verify.check(token, tenant_id=tenant["tenant"]["id"], cost=0)


async def code(services: Services, token: str, tenant: dict[str, Any]) -> str:
    return (await check(services, token, tenant)).code
