"""Security finding 7, on both backends: a cold lookup racing a disabling call.

The race: a check misses a cache, reads the source of truth (the key, the tenant, the signing
keys, the trusted issuers) *before* a disabling call commits, and comes back to the cache
*after* that call returned. Storing what it read would serve the pre-disable state (``VALID``)
to requests made after the disable returned, until the entry ages out.

Each test makes the window deterministic: the lookup is wrapped by a :class:`Gate` that lets it
read, then holds it until the disabling call (over HTTP, the real path) has returned; a second
check is started while the stale lookup is still held (a request that arrived after the disable
returned), then the lookup is released. The request that started before the disable may
answer with what it read; every check started after the disable returned must refuse, and the
cache must hold nothing read before the disable.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from hashlib import sha256
from pathlib import Path
from typing import Any

import httpx
import pytest

from authsvc.clock import FrozenClock
from authsvc.keys.store import Chain
from authsvc.services import Services
from authsvc.settings import Settings
from authsvc.tokens.jwt import sign_access_token
from tests.api.tokens_helpers import claims_of, code, mint
from tests.conftest import bearer, make_settings, new_key
from tests.idp import Keys, sign

Client = httpx.AsyncClient
AUD = "urn:example:data"
PAGE = "https://app.example"
ISSUER = "http://127.0.0.1:9"  # never contacted: the issuer's JWKS is given inline


@pytest.fixture
def settings(tmp_path: Path, backend: str, request: pytest.FixtureRequest) -> Settings:
    return make_settings(tmp_path, backend, request, allow_private_issuers=True)


class Gate:
    """Wraps a loader: the first matching call reads, records what it read, then waits for
    :meth:`open`; later calls pass straight through."""

    def __init__(self) -> None:
        self.held = asyncio.Event()
        self._open = asyncio.Event()
        self.read: Any = None
        self.calls = 0

    def wrap(
        self, load: Callable[..., Awaitable[Any]], when: Callable[..., bool] = lambda *a: True
    ) -> Callable[..., Awaitable[Any]]:
        async def gated(*args: Any) -> Any:
            value = await load(*args)
            self.calls += 1
            if when(*args) and not self.held.is_set():
                self.read = value
                self.held.set()
                await self._open.wait()
            return value

        return gated

    def open(self) -> None:
        self._open.set()


async def race(
    gate: Gate,
    check: Callable[[], Awaitable[str]],
    disable: Callable[[], Awaitable[None]],
) -> tuple[str, str]:
    """``(verdict of the check that raced the disable, verdict of a check started after the
    disable returned while the stale lookup was still held)``."""
    before = asyncio.create_task(check())
    await asyncio.wait_for(gate.held.wait(), timeout=10)
    await asyncio.wait_for(disable(), timeout=10)
    after = asyncio.create_task(check())
    for _ in range(5):  # let it reach the cache: a miss joins the load still in flight
        await asyncio.sleep(0)
    gate.open()
    return await asyncio.wait_for(before, 10), await asyncio.wait_for(after, 10)


@pytest.fixture
async def verifier(client: Client, admin_key: str) -> str:
    return str((await new_key(client, admin_key, ["TOKENS:VERIFY"], name="gateway"))["key"])


@pytest.fixture
async def minter(client: Client, admin_key: str) -> dict[str, Any]:
    return await new_key(client, admin_key, ["PIPES:READ:orders", "TOKENS:CREATE"], name="backend")


async def http_code(client: Client, verifier: str, token: str) -> str:
    r = await client.post("/v1/verify", json={"token": token}, headers=bearer(verifier))
    assert r.status_code == 200, r.text
    return str(r.json()["code"])


async def disable_key(client: Client, admin_key: str, key_id: str) -> None:
    r = await client.patch(f"/v1/keys/{key_id}", json={"enabled": False}, headers=bearer(admin_key))
    assert r.status_code == 200, r.text


# --- a key disabled ------------------------------------------------------------------------


async def test_key_disabled_during_a_cold_lineage_read_of_its_jwt_is_never_valid_afterwards(
    client: Client,
    services: Services,
    tenant: dict[str, Any],
    admin_key: str,
    verifier: str,
    minter: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    token = (await mint(client, minter["key"], ["PIPES:READ:orders"]))["token"]
    await http_code(client, verifier, verifier)  # the caller's own lineage is warm
    services.key_cache.states.invalidate(minter["id"])  # the minting key is cold
    store = services.key_cache._store
    gate = Gate()
    monkeypatch.setattr(
        store, "by_id", gate.wrap(store.by_id, lambda _tenant, key_id: key_id == minter["id"])
    )

    first, joined = await race(
        gate,
        lambda: code(services, token, tenant),
        lambda: disable_key(client, admin_key, minter["id"]),
    )
    read: Chain = gate.read
    assert read.states[0].enabled  # the lookup read the key before the disable committed
    assert first in ("VALID", "DISABLED")
    assert joined == "DISABLED"
    cached = services.key_cache.states.peek(minter["id"])
    assert getattr(cached, "enabled", False) is False  # what was read before is not stored
    assert await code(services, token, tenant) == "DISABLED"
    assert await http_code(client, verifier, token) == "DISABLED"
    assert await http_code(client, verifier, minter["key"]) == "DISABLED"


async def test_key_disabled_during_a_cold_secret_lookup_is_never_valid_afterwards(
    client: Client,
    services: Services,
    tenant: dict[str, Any],
    admin_key: str,
    verifier: str,
    minter: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await http_code(client, verifier, verifier)
    services.key_cache.secrets.invalidate_tag(minter["id"])
    services.key_cache.states.invalidate(minter["id"])
    digest = services.key_cache.digest(minter["key"])
    store = services.key_cache._store
    gate = Gate()
    monkeypatch.setattr(
        store, "by_secret", gate.wrap(store.by_secret, lambda digests: digest.hex() in digests)
    )

    first, joined = await race(
        gate,
        lambda: code(services, minter["key"], tenant),
        lambda: disable_key(client, admin_key, minter["id"]),
    )
    read: tuple[Chain, float | None] = gate.read
    assert read[0].states[0].enabled
    assert first in ("VALID", "DISABLED")
    assert joined == "DISABLED"
    assert getattr(services.key_cache.states.peek(minter["id"]), "enabled", False) is False
    kept = services.key_cache.secrets.peek(digest)
    assert kept is not read[0].states[0]  # what was read is not kept
    assert getattr(kept, "enabled", False) is False
    assert await http_code(client, verifier, minter["key"]) == "DISABLED"
    assert await code(services, minter["key"], tenant) == "DISABLED"


# --- the tenant disabled -------------------------------------------------------------------


@pytest.mark.parametrize("held", ["tenant_load", "token_read"])
async def test_tenant_disabled_during_a_cold_check_is_never_valid_afterwards(
    client: Client,
    services: Services,
    tenant: dict[str, Any],
    operator_key: str,
    verifier: str,
    minter: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    held: str,
) -> None:
    tenant_id = tenant["tenant"]["id"]
    token = (await mint(client, minter["key"], ["PIPES:READ:orders"]))["token"]
    gate = Gate()
    if held == "tenant_load":
        services.tenant_cache.by_id.invalidate(tenant_id)
        tenants = services.tenant_cache
        monkeypatch.setattr(tenants, "_load", gate.wrap(tenants._load))
    else:
        reader = services.token_reader
        monkeypatch.setattr(reader, "_read", gate.wrap(reader._read))

    async def disable_tenant() -> None:
        r = await client.patch(
            f"/v1/tenants/{tenant_id}", json={"enabled": False}, headers=bearer(operator_key)
        )
        assert r.status_code == 200, r.text

    first, joined = await race(gate, lambda: code(services, token, tenant), disable_tenant)
    if held == "tenant_load":
        assert gate.read.enabled  # read before the disable committed
    assert first in ("VALID", "DISABLED")
    assert joined == "DISABLED"
    cached = services.tenant_cache.by_id.peek(tenant_id)
    assert getattr(cached, "enabled", False) is False
    if held == "token_read":  # a read that raced a tenant event is not kept
        entry = services.token_reader._reads.peek((tenant_id, sha256(token.encode()).digest()))
        assert entry is not gate.read
    assert await code(services, token, tenant) == "DISABLED"
    assert await code(services, minter["key"], tenant) == "DISABLED"
    r = await client.post("/v1/verify", json={"token": token}, headers=bearer(verifier))
    assert r.status_code == 401  # the tenant's own keys stop working too


# --- a signing key removed -----------------------------------------------------------------


async def test_signing_key_removed_during_a_cold_key_set_load_is_not_kept_nor_accepted(
    client: Client,
    services: Services,
    tenant: dict[str, Any],
    admin_key: str,
    verifier: str,
    minter: dict[str, Any],
    clock: FrozenClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tenant_id = tenant["tenant"]["id"]
    minted = (await mint(client, minter["key"], ["PIPES:READ:orders"]))["token"]
    signer = await services.keyring.signer(tenant_id)
    assert signer is not None
    # Tokens of that key that would outlive its removal (as if the key had leaked): only the
    # removal stands between them and VALID.
    long_lived = {**claims_of(minted), "exp": int(clock.time()) + 30 * 86400}
    warm = sign_access_token({**long_lived, "jti": long_lived["jti"] + "w"}, signer.jws)
    cold = sign_access_token(long_lived, signer.jws)
    assert await http_code(client, verifier, warm) == "VALID"
    r = await client.post("/v1/signing-keys/rotate", headers=bearer(admin_key))
    assert r.status_code == 200, r.text
    retired = next(k for k in r.json()["data"] if k["kid"] == signer.kid)
    assert retired["state"] == "retired"
    clock.advance(3600 * 2)
    services.keyring.invalidate(tenant_id)
    gate = Gate()
    monkeypatch.setattr(services.keyring, "_load_public", gate.wrap(services.keyring._load_public))

    async def remove() -> None:
        assert await services.rotation.remove_expired(clock.now()) == [signer.kid]

    first, joined = await race(gate, lambda: code(services, cold, tenant), remove)
    assert signer.kid in gate.read.keys  # the load read the key before it was removed
    assert "VALID" not in (first, joined)
    assert services.keyring._sets.peek(tenant_id) is not gate.read  # not stored
    assert await code(services, cold, tenant) != "VALID"
    assert await code(services, warm, tenant) != "VALID"
    jwks = (await client.get(f"/t/{tenant['tenant']['slug']}/.well-known/jwks.json")).json()
    assert signer.kid not in {k["kid"] for k in jwks["keys"]}
    assert signer.kid not in services.keyring._sets.peek(tenant_id).keys  # type: ignore[union-attr]


# --- a trusted issuer disabled -------------------------------------------------------------


async def test_issuer_disabled_during_a_cold_issuer_load_is_never_valid_afterwards(
    client: Client,
    services: Services,
    tenant: dict[str, Any],
    admin_key: str,
    verifier: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    keys = Keys()
    r = await client.post(
        "/v1/trusted-issuers",
        json={
            "issuer": ISSUER,
            "jwks": {"keys": [keys.jwks()["keys"][1]]},
            "audiences": [AUD],
            "grants": ["PIPES:READ:orders"],
            "allowed_origins": [PAGE],
        },
        headers=bearer(admin_key),
    )
    assert r.status_code == 201, r.text
    issuer = r.json()
    now = int(time.time())
    subject = sign(
        {"alg": "ES256", "kid": "ec-1"},
        {"iss": ISSUER, "sub": "alice", "aud": AUD, "iat": now, "exp": now + 600},
        keys.ec,
        "ES256",
    )
    r = await client.post(
        f"/t/{tenant['tenant']['slug']}/oauth2/token",
        data={
            "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
            "subject_token": subject,
            "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
        },
        headers={"Origin": PAGE},
    )
    assert r.status_code == 200, r.text
    token = r.json()["access_token"]
    tenant_id = tenant["tenant"]["id"]
    await http_code(client, verifier, verifier)
    issuers = services.issuer_cache
    issuers._by_tenant.invalidate(tenant_id)
    gate = Gate()
    monkeypatch.setattr(issuers, "_load", gate.wrap(issuers._load))

    async def disable() -> None:
        r = await client.patch(
            f"/v1/trusted-issuers/{issuer['id']}",
            json={"enabled": False},
            headers=bearer(admin_key),
        )
        assert r.status_code == 200, r.text

    first, joined = await race(gate, lambda: code(services, token, tenant), disable)
    assert [s.enabled for s in gate.read] == [True]
    assert first in ("VALID", "DISABLED")
    assert joined == "DISABLED"
    cached = issuers._by_tenant.peek(tenant_id)
    assert cached is not gate.read
    assert await code(services, token, tenant) == "DISABLED"
    assert await http_code(client, verifier, token) == "DISABLED"
