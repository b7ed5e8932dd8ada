"""The one verification function for authsvc JWTs: token + the caller's tenant → TokenCheck.

Order of checks (the first failure is the result; a denial is data, never an exception):

==  ==================  ===================================================================
1   NOT_FOUND           the caller's tenant does not exist
2   MALFORMED /         :func:`authsvc.tokens.jwt.verify_access_token` against the tenant's
    INVALID_SIGNATURE / keys, issuer and audiences: compact form, header (``typ: at+jwt``,
    EXPIRED             no ``crit``, never ``jku``/``x5u``/``jwk``/``x5c``), the algorithm
                        pinned to the ``kid``, signature, ``iss``, ``aud``, required claims,
                        ``exp``/``nbf``/``iat`` with a 10 s leeway (≤ 30 s)
3   MALFORMED           the ``scopes`` claim is not a list of valid data grants
4   DISABLED            the tenant is disabled
5   REVOKED             the denylist: the ``jti``, a ``sub`` cutoff, a cutoff on the minting
                        key (``client_id``), or the jti of a JWT it was exchanged from
6   NOT_FOUND /         the minting key (``client_id``): gone → NOT_FOUND, disabled →
    DISABLED /          DISABLED, revoked → REVOKED, past its expiry → EXPIRED (a token
    REVOKED / EXPIRED   never outlives its parent, even when the key's expiry was moved up)
==  ==================  ===================================================================

A token of **another tenant** is ``INVALID_SIGNATURE``: its ``kid`` is not one of the caller's
tenant's keys, and telling "signed by someone else" from "forged" would need a global kid
lookup that leaks which kids exist. It is never ``VALID`` (its ``iss`` would not match either).

Warm path, no I/O: the tenant policy, the tenant's public keys and the minting key's state are
cached in process. Public keys are refreshed on an unknown kid at most once per second per
tenant (:class:`~authsvc.signing.keyring.Keyring`); key states are dropped on ``key``
revocation events and age out after ``key_ttl_s`` (served stale while the database is down);
the tenant policy is dropped on ``tenant`` events. Register :meth:`TokenVerifier.on_event` and
the policy cache's ``on_event`` in ``Denylist.listeners``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from authsvc.clock import Clock
from authsvc.errors import AuthsvcError
from authsvc.keys.service import KeyRecord, KeyService
from authsvc.revocation.denylist import Denylist
from authsvc.revocation.events import RevocationEvent
from authsvc.scopes import Grant, parse_fixed_params, parse_scope
from authsvc.signing.service import SigningKeyService
from authsvc.tokens.jwt import Rejected, ResolvedKey, unverified_kid, verify_access_token
from authsvc.tokens.policy import PolicyCache, TenantPolicy

LEEWAY_S = 10.0
MAX_GRANTS_IN_TOKEN = 100


@dataclass(frozen=True, slots=True)
class TokenCheck:
    code: str  # VALID | MALFORMED | INVALID_SIGNATURE | EXPIRED | REVOKED | DISABLED | NOT_FOUND
    tenant_id: str | None
    tenant_slug: str | None
    claims: Mapping[str, Any] | None
    grants: tuple[Grant, ...]
    """Parsed from the Tinybird ``scopes`` claim."""
    sub: str | None
    client_id: str | None
    jti: str | None
    expires_at: datetime | None
    reason: str = ""

    @property
    def valid(self) -> bool:
        return self.code == "VALID"


def parse_token_grants(claim: object) -> tuple[Grant, ...] | None:
    """Grants from the ``scopes`` claim (``[{type, resource?, fixed_params?}]``), or ``None``
    if it is not a list of data grants."""
    if not isinstance(claim, list) or len(claim) > MAX_GRANTS_IN_TOKEN:
        return None
    grants: list[Grant] = []
    try:
        for item in claim:
            if not isinstance(item, dict) or set(item) - {"type", "resource", "fixed_params"}:
                return None
            kind, resource = item.get("type"), item.get("resource")
            if not isinstance(kind, str) or not (resource is None or isinstance(resource, str)):
                return None
            scope = parse_scope(kind if resource is None else f"{kind}:{resource}")
            if scope.management:
                return None
            grants.append(Grant(scope, parse_fixed_params(item.get("fixed_params") or {})))
    except AuthsvcError:
        return None
    return tuple(grants)


class TokenVerifier:
    def __init__(
        self,
        *,
        policies: PolicyCache,
        signing: SigningKeyService,
        keys: KeyService,
        denylist: Denylist,
        clock: Clock,
        leeway_s: float = LEEWAY_S,
        key_ttl_s: float = 300.0,
        max_entries: int = 100_000,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._policies, self._signing, self._keys = policies, signing, keys
        self._denylist, self._clock, self.leeway_s = denylist, clock, leeway_s
        self.key_ttl_s, self.max_entries, self._now = key_ttl_s, max_entries, monotonic
        self._key_states: dict[tuple[str, str], tuple[KeyRecord | None, float]] = {}
        self._epoch = 0

    async def verify(self, token: str, *, tenant_id: str) -> TokenCheck:
        policy = await self._policies.get(tenant_id)
        if policy is None:
            return _check("NOT_FOUND", tenant_id, None, reason="unknown tenant")
        key: ResolvedKey | None = None
        kid = unverified_kid(token) if isinstance(token, str | bytes) else None
        if kid is not None and not self._denylist.signing_key_removed(tenant_id, kid):
            key = await self._signing.public_key(tenant_id, kid)
        result = verify_access_token(
            token,
            resolve_key=lambda k: key if key is not None and k == key.kid else None,
            issuer=policy.issuer,
            audiences=policy.audiences,
            now=self._clock.time(),
            leeway_s=self.leeway_s,
        )
        if isinstance(result, Rejected):
            return _check(result.code, tenant_id, policy.slug, reason=result.reason)
        claims = result.claims
        grants = parse_token_grants(claims.get("scopes"))
        if grants is None:
            return _check("MALFORMED", tenant_id, policy.slug, reason="claim scopes is invalid")
        chain = claims.get("parent_jtis", [])
        if not isinstance(chain, list) or not all(isinstance(j, str) for j in chain):
            return _check("MALFORMED", tenant_id, policy.slug, reason="claim parent_jtis invalid")
        return await self._state(policy, claims, grants, chain)

    async def _state(
        self,
        policy: TenantPolicy,
        claims: Mapping[str, Any],
        grants: tuple[Grant, ...],
        chain: list[str],
    ) -> TokenCheck:
        sub, client_id, jti = str(claims["sub"]), str(claims["client_id"]), str(claims["jti"])

        def check(code: str, reason: str = "") -> TokenCheck:
            return TokenCheck(
                code=code,
                tenant_id=policy.id,
                tenant_slug=policy.slug,
                claims=claims,
                grants=grants,
                sub=sub,
                client_id=client_id,
                jti=jti,
                expires_at=datetime.fromtimestamp(float(claims["exp"]), UTC),
                reason=reason,
            )

        if not policy.enabled:
            return check("DISABLED", "the tenant is disabled")
        iat = float(claims["iat"])
        if self._denylist.token_revoked(policy.id, jti=jti, sub=sub, client_id=client_id, iat=iat):
            return check("REVOKED", "the token has been revoked")
        for parent_jti in chain:
            if self._denylist.token_revoked(
                policy.id, jti=parent_jti, sub=None, client_id=None, iat=iat
            ):
                return check("REVOKED", "the token it was exchanged from has been revoked")
        record = await self._key_state(policy.id, client_id)
        if record is None:
            return check("NOT_FOUND", "the key that minted the token does not exist")
        if not record.enabled:
            return check("DISABLED", "the key that minted the token is disabled")
        if record.revoked_at is not None:
            return check("REVOKED", "the key that minted the token has been revoked")
        if record.expires_at is not None and record.expires_at <= self._clock.now():
            return check("EXPIRED", "the key that minted the token has expired")
        return check("VALID")

    async def _key_state(self, tenant_id: str, key_id: str) -> KeyRecord | None:
        cache_key = (tenant_id, key_id)
        entry = self._key_states.get(cache_key)
        if entry is not None and self._now() - entry[1] < self.key_ttl_s:
            return entry[0]
        epoch = self._epoch
        try:
            record = await self._keys.record_by_id(tenant_id, key_id)
        except Exception:
            if entry is None:
                raise
            return entry[0]  # database down: serve the last known state
        if epoch == self._epoch:
            while len(self._key_states) >= self.max_entries:
                del self._key_states[next(iter(self._key_states))]
            self._key_states[cache_key] = (record, self._now())
        return record

    def on_event(self, event: RevocationEvent) -> None:
        """Denylist listener: a ``key`` event means that key's state changed."""
        if event.kind == "key":
            self._epoch += 1
            self._key_states.pop((event.tenant_id, event.value), None)
        elif event.kind == "tenant":
            self._epoch += 1
            for cached in [k for k in self._key_states if k[0] == event.tenant_id]:
                del self._key_states[cached]


def _check(code: str, tenant_id: str, slug: str | None, *, reason: str) -> TokenCheck:
    return TokenCheck(
        code=code,
        tenant_id=tenant_id,
        tenant_slug=slug,
        claims=None,
        grants=(),
        sub=None,
        client_id=None,
        jti=None,
        expires_at=None,
        reason=reason,
    )
