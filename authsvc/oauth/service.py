"""OAuth 2.0 endpoints of a tenant: token (client credentials, token exchange), introspection,
revocation. No HTTP here: the controller hands over the form and the ``Authorization`` header,
this module returns response bodies or raises :class:`~authsvc.errors.OAuthError`.

Decisions where the RFCs leave room
-----------------------------------
* **client_credentials** (RFC 6749 §4.4): the client (an API key of the tenant) gets a token
  for itself: ``sub`` = ``client_id`` = the key id. ``scope`` down-scopes exactly like
  ``POST /v1/tokens`` (fixed params inherited); without ``scope`` the token carries every data
  scope of the key (an ``ADMIN`` key holds no concrete data scope and must name them). It does
  not need ``TOKENS:CREATE``: the client only trades its own secret for a shorter-lived, never
  wider token of itself; minting for another ``sub`` (``/v1/tokens``) or exchanging someone
  else's token does.
* **token exchange** (RFC 8693): the client authenticates and needs ``TOKENS:CREATE``. The
  subject token is a JWT of this tenant or an API key of this tenant. **The subject token is
  the parent** of the new token: the result is down-scoped from the subject's grants, never
  outlives it, keeps its ``sub``, ``client_id`` (the key that started the chain, so revoking
  that key or that sub revokes every exchanged token too) and ``limits`` (only lowerable), and
  lists the subject's jti (and its ancestors') in ``parent_jtis``, so revoking the subject by
  jti revokes the exchanged token as well. ``act.sub`` names the exchanging client (RFC 8693
  §4.1). An invalid subject token is ``invalid_request`` (§2.2.2); an audience that is not the
  tenant's is ``invalid_target``. ``actor_token`` is not supported.
* **introspection** (RFC 7662): the caller authenticates as a client or with a Bearer API key,
  and needs ``TOKENS:VERIFY``. JWTs and API keys of the tenant can be introspected; anything
  invalid, expired, revoked, disabled or of another tenant is ``{"active": false}`` and
  nothing else (§2.2), so the endpoint does not say why.
* **revocation** (RFC 7009): same caller authentication; a JWT is revoked (its jti, until its
  ``exp``) when the caller holds ``TOKENS:REVOKE`` or is the client the token was issued to
  (``client_id``, §2.1); a valid token of someone else without that scope is
  ``unauthorized_client``. Unknown, invalid, expired or already revoked tokens get 200 (§2.2).
  **An API key presented as the token is not revoked** but refused with
  ``unsupported_token_type`` (§2.2.1): API keys are long-lived credentials managed with
  ``DELETE /v1/keys/{id}`` (``KEYS:WRITE``, audited); letting a ``TOKENS:REVOKE`` holder, or
  anyone who found a key, kill them through this endpoint would widen that power, and
  silently ignoring them would be worse.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from authsvc.clock import Clock
from authsvc.errors import (
    AuthsvcError,
    InvalidRequest,
    InvalidScope,
    OAuthError,
    ScopeEscalation,
    TtlTooLong,
    Unauthenticated,
)
from authsvc.keys import secret as keysecret
from authsvc.keys.service import KeyRecord, key_status
from authsvc.oauth.client import client_credentials, invalid_client
from authsvc.scopes import Grant, find_grant, parse_scope
from authsvc.tokens.claims import Parent, TokenRequest, data_grants
from authsvc.tokens.policy import TenantPolicy
from authsvc.tokens.service import MintedToken, TokenService
from authsvc.verify.jwt_cache import TokenCheckLike, TokenVerifierLike

CLIENT_CREDENTIALS = "client_credentials"
TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"  # noqa: S105 (RFC 8693 §2.1)
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"  # noqa: S105 (RFC 8693 §3)
JWT_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:jwt"  # noqa: S105 (RFC 8693 §3, RFC 7519 §9)
SUBJECT_TYPES = (ACCESS_TOKEN_TYPE, JWT_TOKEN_TYPE)
MAX_SCOPE_PARAM = 4096

Lookup = Callable[[str], Awaitable[KeyRecord | None]]


@dataclass(frozen=True, slots=True)
class Caller:
    """An authenticated caller of the OAuth endpoints: an API key of the tenant."""

    record: KeyRecord

    @property
    def id(self) -> str:
        return self.record.id

    def has(self, scope: str) -> bool:
        return find_grant(self.record.grants, parse_scope(scope)) is not None


class OAuthService:
    def __init__(
        self, *, tokens: TokenService, verifier: TokenVerifierLike, lookup: Lookup, clock: Clock
    ) -> None:
        self._tokens, self._verifier, self._lookup, self._clock = tokens, verifier, lookup, clock

    # --- authentication --------------------------------------------------------------------

    async def client(
        self, policy: TenantPolicy, authorization: str | None, form: Mapping[str, str]
    ) -> Caller:
        """A client authenticated by ``client_secret_basic`` or ``client_secret_post``."""
        creds = client_credentials(authorization, form, realm=policy.issuer)
        if creds is None:
            raise invalid_client(policy.issuer, "Client authentication is required.")
        record = await self._key(policy, creds.secret)
        if record is None or record.id != creds.client_id:
            raise invalid_client(policy.issuer)
        return Caller(record)

    async def caller(
        self, policy: TenantPolicy, authorization: str | None, form: Mapping[str, str]
    ) -> Caller:
        """Introspection and revocation: a client, or a Bearer API key (RFC 6750 §2.1)."""
        scheme, _, value = (authorization or "").strip().partition(" ")
        if scheme.lower() != "bearer":
            return await self.client(policy, authorization, form)
        record = await self._key(policy, value.strip())
        if record is None:
            raise OAuthError(
                "invalid_token",
                "The bearer credential is not a valid API key of this tenant.",
                status=401,
                challenge=f'Bearer realm="{policy.issuer}", error="invalid_token"',
            )
        return Caller(record)

    async def _key(self, policy: TenantPolicy, secret: str) -> KeyRecord | None:
        if keysecret.kind_of(secret) != "api":  # malformed: refused without a lookup
            return None
        record = await self._lookup(secret)
        if record is None or record.tenant_id != policy.id:
            return None
        if key_status(record, self._clock.now()) != "VALID":
            return None
        return record

    # --- token endpoint --------------------------------------------------------------------

    async def token(
        self, policy: TenantPolicy, authorization: str | None, form: Mapping[str, str]
    ) -> dict[str, Any]:
        grant_type = form.get("grant_type")
        if grant_type is None:
            raise OAuthError("invalid_request", "grant_type is required.")
        if grant_type not in (CLIENT_CREDENTIALS, TOKEN_EXCHANGE):
            raise OAuthError(
                "unsupported_grant_type",
                "Supported grant types: client_credentials and token exchange (RFC 8693).",
            )
        client = await self.client(policy, authorization, form)
        if grant_type == CLIENT_CREDENTIALS:
            return await self._client_credentials(policy, client, form)
        return await self._exchange(policy, client, form)

    async def _client_credentials(
        self, policy: TenantPolicy, client: Caller, form: Mapping[str, str]
    ) -> dict[str, Any]:
        record = client.record
        grants = _scope_param(form.get("scope"))
        if grants is None:
            grants = data_grants(record.grants)
            if not grants:
                raise OAuthError(
                    "invalid_scope", "The client holds no data scope; name the scopes wanted."
                )
            grants = tuple(Grant(g.scope) for g in grants)  # fixed params are inherited
        parent = Parent(
            tenant_id=policy.id,
            client_id=record.id,
            grants=record.grants,
            expires_at=None if record.expires_at is None else record.expires_at.timestamp(),
            default_sub=record.id,
        )
        request = TokenRequest(grants=grants, aud=_audience_param(form))
        minted = await self._mint(parent, request)
        return _token_response(minted)

    async def _exchange(
        self, policy: TenantPolicy, client: Caller, form: Mapping[str, str]
    ) -> dict[str, Any]:
        if not client.has("TOKENS:CREATE"):
            raise OAuthError(
                "unauthorized_client", "Token exchange needs a client with TOKENS:CREATE."
            )
        subject, subject_type = form.get("subject_token"), form.get("subject_token_type")
        if subject is None or subject_type is None:  # RFC 8693 §2.1: both REQUIRED
            raise OAuthError(
                "invalid_request", "subject_token and subject_token_type are required."
            )
        if subject_type not in SUBJECT_TYPES:
            raise OAuthError("invalid_request", "subject_token_type is not supported.")
        if "actor_token" in form or "actor_token_type" in form:
            raise OAuthError("invalid_request", "actor_token is not supported.")
        requested = form.get("requested_token_type")
        if requested is not None and requested not in SUBJECT_TYPES:
            raise OAuthError("invalid_request", "requested_token_type is not supported.")
        parent = await self._subject(policy, subject, subject_type)
        grants = _scope_param(form.get("scope"))
        if grants is None:
            grants = data_grants(parent.grants)
            if not grants:
                raise OAuthError("invalid_scope", "The subject holds no data scope.")
        request = TokenRequest(grants=grants, aud=_audience_param(form), actor=client.id)
        minted = await self._mint(parent, request)
        body = _token_response(minted)
        body["issued_token_type"] = ACCESS_TOKEN_TYPE  # RFC 8693 §2.2.1: REQUIRED
        return body

    async def _subject(self, policy: TenantPolicy, token: str, token_type: str) -> Parent:
        if keysecret.looks_like_key(token):
            if token_type != ACCESS_TOKEN_TYPE:
                raise OAuthError("invalid_request", "An API key is not a JWT subject token.")
            record = await self._key(policy, token)
            if record is None:
                raise OAuthError("invalid_request", "subject_token is not valid.")
            return Parent(
                tenant_id=policy.id,
                client_id=record.id,
                grants=record.grants,
                expires_at=None if record.expires_at is None else record.expires_at.timestamp(),
                default_sub=record.id,
            )
        check = await self._verifier.verify(token, tenant_id=policy.id)
        if check.code != "VALID" or check.claims is None:
            # RFC 8693 §2.2.2: an invalid subject token is invalid_request.
            raise OAuthError("invalid_request", f"subject_token is not valid ({check.code}).")
        claims = check.claims
        limits = claims.get("limits")
        return Parent(
            tenant_id=policy.id,
            client_id=str(check.client_id),
            grants=check.grants,
            expires_at=float(claims["exp"]),
            default_sub=str(check.sub),
            limits=limits if isinstance(limits, dict) else None,
            chain=(*claims.get("parent_jtis", []), str(check.jti)),
            name=claims["name"] if isinstance(claims.get("name"), str) else None,
        )

    async def _mint(self, parent: Parent, request: TokenRequest) -> MintedToken:
        """Mint, with domain refusals turned into RFC 6749 §5.2 / RFC 8693 §2.2.2 errors."""
        try:
            return await self._tokens.mint(parent, request)
        except (InvalidScope, ScopeEscalation) as exc:
            raise OAuthError("invalid_scope", exc.message) from None
        except TtlTooLong as exc:
            raise OAuthError("invalid_request", exc.message) from None
        except InvalidRequest as exc:
            error = "invalid_target" if exc.code == "INVALID_AUDIENCE" else "invalid_request"
            raise OAuthError(error, exc.message) from None
        except Unauthenticated as exc:
            raise OAuthError("invalid_grant", exc.message) from None

    # --- introspection (RFC 7662) ----------------------------------------------------------

    async def introspect(
        self, policy: TenantPolicy, authorization: str | None, form: Mapping[str, str]
    ) -> dict[str, Any]:
        caller = await self.caller(policy, authorization, form)
        if not caller.has("TOKENS:VERIFY"):
            raise _insufficient(policy, "TOKENS:VERIFY")
        token = form.get("token")
        if token is None:  # RFC 7662 §2.1: REQUIRED
            raise OAuthError("invalid_request", "token is required.")
        if keysecret.looks_like_key(token):
            record = await self._key(policy, token)
            return _inactive() if record is None else _key_introspection(record)
        check = await self._verifier.verify(token, tenant_id=policy.id)
        return _jwt_introspection(check) if check.code == "VALID" else _inactive()

    # --- revocation (RFC 7009) -------------------------------------------------------------

    async def revoke(
        self, policy: TenantPolicy, authorization: str | None, form: Mapping[str, str]
    ) -> None:
        caller = await self.caller(policy, authorization, form)
        token = form.get("token")
        if token is None:  # RFC 7009 §2.1: REQUIRED
            raise OAuthError("invalid_request", "token is required.")
        if keysecret.looks_like_key(token):
            raise OAuthError(
                "unsupported_token_type",
                "API keys are not revoked here; use DELETE /v1/keys/{id}.",
            )
        check = await self._verifier.verify(token, tenant_id=policy.id)
        if check.code != "VALID" or check.claims is None or check.jti is None:
            return  # RFC 7009 §2.2: invalid tokens do not cause an error
        if not (caller.has("TOKENS:REVOKE") or caller.id == check.client_id):
            raise OAuthError(
                "unauthorized_client",
                "The token was not issued to this client and the client lacks TOKENS:REVOKE.",
            )
        try:
            await self._tokens.revoke_jti(
                policy.id, check.jti, exp=float(check.claims["exp"]), actor=f"key:{caller.id}"
            )
        except AuthsvcError as exc:  # the tenant went away meanwhile
            raise OAuthError("invalid_request", exc.message) from None


def _scope_param(value: str | None) -> tuple[Grant, ...] | None:
    """RFC 6749 §3.3: space-delimited, case-sensitive scope tokens (ours: DESIGN §1 scopes)."""
    if value is None:
        return None
    if len(value) > MAX_SCOPE_PARAM:
        raise OAuthError("invalid_scope", "scope is too long.")
    names = value.split(" ")
    if "" in names:
        raise OAuthError("invalid_scope", "scope tokens are separated by single spaces.")
    try:
        scopes = [parse_scope(name) for name in dict.fromkeys(names)]
    except InvalidScope as exc:
        raise OAuthError("invalid_scope", exc.message) from None
    return tuple(Grant(s) for s in scopes)


def _audience_param(form: Mapping[str, str]) -> tuple[str, ...] | None:
    # RFC 8693 §2.1 "audience"; one value here (parameters do not repeat, RFC 6749 §3.1).
    audience = form.get("audience")
    return None if audience is None else (audience,)


def _token_response(minted: MintedToken) -> dict[str, Any]:
    # RFC 6749 §5.1
    return {
        "access_token": minted.token,
        "token_type": "Bearer",
        "expires_in": minted.expires_in,
        "scope": minted.claims["scope"],
    }


def _inactive() -> dict[str, Any]:
    return {"active": False}  # RFC 7662 §2.2: nothing else about an inactive token


def _jwt_introspection(check: TokenCheckLike) -> dict[str, Any]:
    claims = dict(check.claims or {})
    body: dict[str, Any] = {"active": True, "token_type": "Bearer"}
    for name in ("scope", "client_id", "sub", "aud", "iss", "exp", "iat", "nbf", "jti"):
        if name in claims:
            body[name] = claims[name]  # RFC 7662 §2.2 members
    for name in ("scopes", "limits", "name", "act"):
        if name in claims:
            body[name] = claims[name]  # authsvc / Tinybird extensions
    return body


def _key_introspection(record: KeyRecord) -> dict[str, Any]:
    body: dict[str, Any] = {
        "active": True,
        "token_type": "api_key",
        "client_id": record.id,
        "sub": record.id,
        "scope": " ".join(str(g.scope) for g in record.grants),
        "scopes": [g.to_json() for g in record.grants],
    }
    if record.expires_at is not None:
        body["exp"] = int(record.expires_at.timestamp())
    return body


def _insufficient(policy: TenantPolicy, scope: str) -> OAuthError:
    # RFC 6750 §3.1
    return OAuthError(
        "insufficient_scope",
        f"This endpoint requires the {scope} scope.",
        status=403,
        challenge=f'Bearer realm="{policy.issuer}", error="insufficient_scope", scope="{scope}"',
    )
