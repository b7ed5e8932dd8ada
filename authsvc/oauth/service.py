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
  subject token is a JWT of this tenant or an API key of this tenant, checked by the same
  pipeline as ``/v1/verify`` (and charged one unit, like any use). **The subject token is the
  parent** of the new token: the result is down-scoped from the subject's grants as they are
  now, never outlives it, keeps its ``sub``, ``client_id`` (the key that started the chain, so
  revoking that key or that sub revokes every exchanged token too), ``aud`` (an ``audience``
  may only name some of the subject's), ``limits`` and ``ratelimits`` (only lowerable), and
  lists the subject's jti (and its ancestors') in ``parent_jtis``, so revoking the subject by
  jti revokes the exchanged token as well. ``act.sub`` names the exchanging client (RFC 8693
  §4.1). An invalid subject token is ``invalid_request`` (§2.2.2); an audience the subject may
  not use is ``invalid_target``. ``actor_token`` is not supported.
* **every caller is charged** (DESIGN §8): client authentication and the Bearer caller of
  introspection and revocation go through the one authentication path, which charges one unit
  of the key's limits (and its ancestors'); a refused caller gets 429 ``rate_limited`` with
  ``Retry-After`` and the rate-limit headers.
* **introspection** (RFC 7662): the caller authenticates as a client or with a Bearer API key,
  and needs ``TOKENS:VERIFY``. The token is checked without consuming its limits (cost 0).
  JWTs and API keys of the tenant can be introspected; anything
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

from collections.abc import Mapping
from typing import Any

from authsvc.errors import (
    AuthsvcError,
    Code,
    InvalidRequest,
    InvalidScope,
    OAuthError,
    RateLimited,
    ScopeEscalation,
    TtlTooLong,
    Unauthenticated,
)
from authsvc.keys import secret as keysecret
from authsvc.oauth.client import client_credentials, invalid_client
from authsvc.oauth.federation import SUBJECT_TOKEN_TYPES, FederatedExchange
from authsvc.oauth.form import (
    ACCESS_TOKEN_TYPE,
    SUBJECT_TYPES,
    audience_param,
    exchange_subject,
    scope_param,
)
from authsvc.principal import Principal
from authsvc.scopes import Grant
from authsvc.tenants.policy import TenantCache, TenantPolicy
from authsvc.tokens.claims import TokenRequest, data_grants
from authsvc.tokens.service import MintedToken, TokenService
from authsvc.verify.service import VerifyService

CLIENT_CREDENTIALS = "client_credentials"
TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"  # noqa: S105 (RFC 8693 §2.1)


class OAuthService:
    def __init__(
        self,
        *,
        tenants: TenantCache,
        verify: VerifyService,
        tokens: TokenService,
        federation: FederatedExchange,
    ) -> None:
        self._tenants = tenants
        self._verify, self._tokens, self._federation = verify, tokens, federation

    # --- the tenant and the browser's origin ---------------------------------------------------

    async def tenant(self, slug: str) -> TenantPolicy:
        """The enabled tenant of ``/t/<slug>/``; else a 404 with an RFC 6749 body."""
        tenant = await self.find_tenant(slug)
        if tenant is None:
            raise OAuthError("invalid_request", "No such tenant.", not_found=True)
        return tenant

    async def find_tenant(self, slug: str) -> TenantPolicy | None:
        tenant = await self._tenants.by_slug(slug)
        return tenant if tenant is not None and tenant.enabled else None

    async def allowed_origin(self, tenant: TenantPolicy, origin: str | None) -> str | None:
        """``origin`` if an enabled trusted issuer of the tenant allows it (RFC 6454 §7), the
        only origin CORS headers ever name (DESIGN §9); ``None`` for anything else."""
        if origin is None or origin not in await self._federation.origins(tenant):
            return None
        return origin

    # --- authentication --------------------------------------------------------------------

    async def client(
        self, tenant: TenantPolicy, authorization: str | None, form: Mapping[str, str]
    ) -> Principal:
        """A client authenticated by ``client_secret_basic`` or ``client_secret_post``."""
        creds = client_credentials(authorization, form, realm=tenant.issuer)
        if creds is None:
            raise invalid_client(tenant.issuer, "Client authentication is required.")
        principal = await self._authenticate(tenant, creds.secret, bearer=False)
        if principal.id != creds.client_id:
            raise invalid_client(tenant.issuer)
        return principal

    async def caller(
        self, tenant: TenantPolicy, authorization: str | None, form: Mapping[str, str]
    ) -> Principal:
        """Introspection and revocation: a client, or a Bearer API key (RFC 6750 §2.1)."""
        scheme, _, value = (authorization or "").strip().partition(" ")
        if scheme.lower() != "bearer":
            return await self.client(tenant, authorization, form)
        return await self._authenticate(tenant, value.strip(), bearer=True)

    async def _authenticate(self, tenant: TenantPolicy, secret: str, *, bearer: bool) -> Principal:
        try:
            principal, _ = await self._verify.authenticate(secret, tenant_id=tenant.id)
        except RateLimited as exc:
            raise OAuthError(
                "rate_limited", exc.message, realm=tenant.issuer, headers=exc.headers
            ) from None
        except Unauthenticated:
            if not bearer:
                raise invalid_client(tenant.issuer) from None
            raise OAuthError(
                "invalid_token",
                "The bearer credential is not a valid API key of this tenant.",
                realm=tenant.issuer,
            ) from None
        return principal

    # --- token endpoint --------------------------------------------------------------------

    async def token(
        self,
        tenant: TenantPolicy,
        authorization: str | None,
        form: Mapping[str, str],
        *,
        origin: str | None = None,
        address: str = "",
    ) -> dict[str, Any]:
        grant_type = form.get("grant_type")
        if grant_type is None:
            raise OAuthError("invalid_request", "grant_type is required.")
        if grant_type not in (CLIENT_CREDENTIALS, TOKEN_EXCHANGE):
            raise OAuthError(
                "unsupported_grant_type",
                "Supported grant types: client_credentials and token exchange (RFC 8693).",
            )
        public = client_credentials(authorization, form, realm=tenant.issuer) is None
        if grant_type == TOKEN_EXCHANGE and public:
            return await self._federated(tenant, form, origin, address)
        client = await self.client(tenant, authorization, form)
        if grant_type == CLIENT_CREDENTIALS:
            return await self._client_credentials(client, form)
        return await self._exchange(tenant, client, form)

    async def _client_credentials(
        self, client: Principal, form: Mapping[str, str]
    ) -> dict[str, Any]:
        grants = scope_param(form.get("scope"))
        if grants is None:
            held = data_grants(client.grants)
            if not held:
                raise OAuthError(
                    "invalid_scope", "The client holds no data scope; name the scopes wanted."
                )
            grants = tuple(Grant(g.scope) for g in held)  # fixed params are inherited
        minted = await self.mint(client, TokenRequest(grants=grants, aud=audience_param(form)))
        return token_response(minted)

    async def _exchange(
        self, tenant: TenantPolicy, client: Principal, form: Mapping[str, str]
    ) -> dict[str, Any]:
        if not client.has("TOKENS:CREATE"):
            raise OAuthError(
                "unauthorized_client", "Token exchange needs a client with TOKENS:CREATE."
            )
        subject, subject_type = exchange_subject(form, SUBJECT_TYPES)
        if keysecret.looks_like_key(subject) and subject_type != ACCESS_TOKEN_TYPE:
            raise OAuthError("invalid_request", "An API key is not a JWT subject token.")
        verdict = await self._verify.check(subject, tenant_id=tenant.id)
        parent = verdict.principal
        if not verdict.valid or parent is None:
            # RFC 8693 §2.2.2: an invalid subject token is invalid_request.
            raise OAuthError("invalid_request", f"subject_token is not valid ({verdict.code}).")
        grants = scope_param(form.get("scope"))
        if grants is None:
            grants = data_grants(parent.grants)
            if not grants:
                raise OAuthError("invalid_scope", "The subject holds no data scope.")
        request = TokenRequest(grants=grants, aud=audience_param(form), actor=client.id)
        body = token_response(await self.mint(parent, request))
        body["issued_token_type"] = ACCESS_TOKEN_TYPE  # RFC 8693 §2.2.1: REQUIRED
        return body

    async def _federated(
        self, tenant: TenantPolicy, form: Mapping[str, str], origin: str | None, address: str
    ) -> dict[str, Any]:
        """A public client exchanges an identity provider's token (DESIGN §9; the steps are in
        :mod:`authsvc.oauth.federation`)."""
        subject, _ = exchange_subject(form, SUBJECT_TOKEN_TYPES)
        federation = self._federation
        issuer = await federation.issuer_for(tenant, subject, origin, address)
        parent = await federation.parent(tenant, issuer, subject)
        request = federation.request(
            tenant, issuer, parent, scope_param(form.get("scope")), audience_param(form)
        )
        body = token_response(await self.mint(parent, request))
        body["issued_token_type"] = ACCESS_TOKEN_TYPE  # RFC 8693 §2.2.1: REQUIRED
        return body

    async def mint(self, parent: Principal, request: TokenRequest) -> MintedToken:
        """Mint, with domain refusals turned into RFC 6749 §5.2 / RFC 8693 §2.2.2 errors."""
        try:
            return await self._tokens.mint(parent, request)
        except (InvalidScope, ScopeEscalation) as exc:
            raise OAuthError("invalid_scope", exc.message) from None
        except TtlTooLong as exc:
            raise OAuthError("invalid_request", exc.message) from None
        except InvalidRequest as exc:
            error = "invalid_target" if exc.code is Code.INVALID_AUDIENCE else "invalid_request"
            raise OAuthError(error, exc.message) from None
        except Unauthenticated as exc:
            raise OAuthError("invalid_grant", exc.message) from None

    # --- introspection (RFC 7662) ----------------------------------------------------------

    async def introspect(
        self, tenant: TenantPolicy, authorization: str | None, form: Mapping[str, str]
    ) -> dict[str, Any]:
        caller = await self.caller(tenant, authorization, form)
        if not caller.has("TOKENS:VERIFY"):
            raise OAuthError(
                "insufficient_scope",
                "This endpoint requires the TOKENS:VERIFY scope.",
                realm=tenant.issuer,
                scope="TOKENS:VERIFY",
            )
        token = form.get("token")
        if token is None:  # RFC 7662 §2.1: REQUIRED
            raise OAuthError("invalid_request", "token is required.")
        verdict = await self._verify.check(token, tenant_id=tenant.id, cost=0)
        if not verdict.valid or verdict.principal is None:
            return {"active": False}  # RFC 7662 §2.2: nothing else about an inactive token
        return _introspection(verdict.principal)

    # --- revocation (RFC 7009) -------------------------------------------------------------

    async def revoke(
        self, tenant: TenantPolicy, authorization: str | None, form: Mapping[str, str]
    ) -> None:
        caller = await self.caller(tenant, authorization, form)
        token = form.get("token")
        if token is None:  # RFC 7009 §2.1: REQUIRED
            raise OAuthError("invalid_request", "token is required.")
        if keysecret.looks_like_key(token):
            raise OAuthError(
                "unsupported_token_type",
                "API keys are not revoked here; use DELETE /v1/keys/{id}.",
            )
        verdict = await self._verify.check(token, tenant_id=tenant.id, cost=0)
        subject = verdict.principal
        if not verdict.valid or subject is None or subject.token is None:
            return  # RFC 7009 §2.2: invalid tokens do not cause an error
        if not (caller.has("TOKENS:REVOKE") or caller.id == subject.id):
            raise OAuthError(
                "unauthorized_client",
                "The token was not issued to this client and the client lacks TOKENS:REVOKE.",
            )
        exp = subject.token.claims.get("exp")
        try:
            await self._tokens.revoke_jti(
                tenant.id,
                subject.token.jti,
                exp=float(exp) if isinstance(exp, int | float) else None,
                actor=caller.actor,
            )
        except AuthsvcError as exc:  # the tenant went away meanwhile
            raise OAuthError("invalid_request", exc.message) from None


def token_response(minted: MintedToken) -> dict[str, Any]:
    # RFC 6749 §5.1
    return {
        "access_token": minted.token,
        "token_type": "Bearer",
        "expires_in": minted.expires_in,
        "scope": minted.claims["scope"],
    }


def _introspection(principal: Principal) -> dict[str, Any]:
    if principal.token is not None:
        claims = principal.token.claims
        body: dict[str, Any] = {"active": True, "token_type": "Bearer"}
        for name in ("scope", "client_id", "sub", "aud", "iss", "exp", "iat", "nbf", "jti"):
            if name in claims:
                body[name] = claims[name]  # RFC 7662 §2.2 members
        for name in ("scopes", "limits", "ratelimits", "name", "act"):
            if name in claims:
                body[name] = claims[name]  # authsvc / Tinybird extensions
        return body
    body = {
        "active": True,
        "token_type": "api_key",
        "client_id": principal.id,
        "sub": principal.id,
        "scope": " ".join(str(g.scope) for g in principal.grants),
        "scopes": [g.to_json() for g in principal.grants],
    }
    if principal.expires_at is not None:
        body["exp"] = int(principal.expires_at.timestamp())
    return body
