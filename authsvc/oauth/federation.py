"""Token exchange by a public client: an identity provider's JWT for a data token (DESIGN §9).

RFC 8693 §2.1 at the tenant's token endpoint, with no client authentication: the subject token
itself is the credential, vouched for by a trusted issuer of the tenant. In order:

1. the exchange is rate limited per client address (before any parsing, fetch or crypto);
2. the token's unverified ``iss`` picks the tenant's trusted issuer with exactly that issuer
   (none, or a disabled one: ``invalid_grant``); a browser ``Origin`` must be one of that
   issuer's ``allowed_origins`` (``unauthorized_client``);
3. :func:`~authsvc.issuers.subject.verify_subject_token` verifies it fully with the issuer's
   keys (JWKS, cached, refetched on an unknown kid at most every few seconds): signature with
   the algorithm pinned by the JWK, ``iss`` exact, ``aud``, ``exp``/``nbf``/``iat`` with a
   leeway of 60 s at most, ``conditions``. No key ever fetched: 503; anything else:
   ``invalid_grant`` (a 400 RFC 6749 body, never 5xx);
4. the subject claim names the subject, and the exchange is rate limited per subject;
5. the issuer's grant templates are filled from the claims; a missing, null, empty or mistyped
   claim refuses the exchange (``invalid_grant``): a filter is never dropped;
6. the requested ``scope`` and ``audience`` are down-scoped from those grants by §1's rule, and
   the token is minted with ``sub`` = the subject and ``client_id`` = the trusted issuer's id,
   never outliving the subject token. It is refused by ``POST /v1/tokens/revoke {sub}`` and by
   disabling or deleting its issuer (checked on every use, :mod:`authsvc.verify.service`).
"""

from __future__ import annotations

from datetime import UTC, datetime

from authsvc.clock import Clock
from authsvc.compact_jws import unverified_issuer
from authsvc.errors import OAuthError
from authsvc.issuers.cache import IssuerCache
from authsvc.issuers.jwks_cache import JwksClient, JwksUnavailable
from authsvc.issuers.mapping import ClaimRefused, map_grants, subject_of
from authsvc.issuers.state import IssuerState
from authsvc.issuers.subject import Rejected, verify_subject_token
from authsvc.principal import Principal
from authsvc.ratelimit.types import Limiter, LimitSpec
from authsvc.scopes import Grant
from authsvc.tenants.policy import TenantPolicy
from authsvc.tokens.claims import TokenRequest

SUBJECT_TOKEN_TYPES = (
    "urn:ietf:params:oauth:token-type:jwt",  # RFC 8693 §3
    "urn:ietf:params:oauth:token-type:id_token",
    "urn:ietf:params:oauth:token-type:access_token",
)
LEEWAY_S = 60.0


class FederatedExchange:
    def __init__(
        self,
        *,
        issuers: IssuerCache,
        jwks: JwksClient,
        limiter: Limiter,
        clock: Clock,
        per_subject: int,
        per_address: int,
    ) -> None:
        self._issuers, self._jwks, self._limiter, self._clock = issuers, jwks, limiter, clock
        self._per_subject = LimitSpec("exchange", "exchange", per_subject, 60.0, per_subject)
        self._per_address = LimitSpec("exchange", "exchange", per_address, 60.0, per_address)

    async def origins(self, tenant: TenantPolicy) -> frozenset[str]:
        """Every origin an enabled issuer of the tenant allows (CORS)."""
        return await self._issuers.origins(tenant.id)

    async def issuer_for(
        self, tenant: TenantPolicy, subject_token: str, origin: str | None, address: str
    ) -> IssuerState:
        """Steps 1-2: the trusted issuer the subject token claims to come from."""
        await self._charge(tenant, self._per_address, f"exchange:addr:{address}")
        iss = unverified_issuer(subject_token)
        issuer = None if iss is None else await self._issuers.by_issuer(tenant.id, iss)
        if issuer is None or not issuer.enabled:
            raise OAuthError("invalid_grant", "subject_token is not from a trusted issuer.")
        if origin is not None and origin not in issuer.allowed_origins:
            raise OAuthError(
                "unauthorized_client", "This origin may not exchange tokens of this issuer."
            )
        return issuer

    async def parent(
        self, tenant: TenantPolicy, issuer: IssuerState, subject_token: str
    ) -> Principal:
        """Steps 3-5: the verified subject token as the parent of the data token."""
        try:
            verified = await verify_subject_token(
                subject_token,
                resolve_key=self._jwks.resolver(issuer.source),
                issuer=issuer.issuer,
                audiences=issuer.audiences,
                algorithms=issuer.algorithms,
                now=self._clock.time(),
                conditions=issuer.conditions,
                leeway_s=LEEWAY_S,
            )
        except JwksUnavailable as exc:
            raise OAuthError(
                "temporarily_unavailable",
                f"The identity provider's keys are unavailable ({exc.reason}).",
                unavailable=True,
            ) from None
        if isinstance(verified, Rejected):
            raise OAuthError("invalid_grant", f"subject_token is not valid ({verified.reason}).")
        claims = verified.claims
        subject = subject_of(claims, issuer.subject_claim)
        if isinstance(subject, ClaimRefused):
            raise OAuthError("invalid_grant", subject.message)
        await self._charge(tenant, self._per_subject, f"exchange:sub:{issuer.id}:{subject}")
        grants = map_grants(issuer.grants, claims)
        if isinstance(grants, ClaimRefused):
            raise OAuthError("invalid_grant", grants.message)
        exp = claims.get("exp")
        return Principal(
            kind="issuer",
            id=issuer.id,
            tenant_id=tenant.id,
            tenant_slug=tenant.slug,
            grants=grants,
            expires_at=datetime.fromtimestamp(float(exp), UTC) if exp is not None else None,
            sub=subject,
        )

    def request(
        self,
        tenant: TenantPolicy,
        issuer: IssuerState,
        parent: Principal,
        grants: tuple[Grant, ...] | None,
        audience: tuple[str, ...] | None,
    ) -> TokenRequest:
        """Step 6: what the data token asks for (every mapped grant when no scope is named)."""
        wanted = grants if grants is not None else tuple(Grant(g.scope) for g in parent.grants)
        ttl = None if issuer.ttl_s is None else min(issuer.ttl_s, tenant.max_token_ttl_s)
        return TokenRequest(grants=wanted, aud=audience, ttl_s=ttl)

    async def _charge(self, tenant: TenantPolicy, spec: LimitSpec, counter: str) -> None:
        decision = await self._limiter.check(
            tenant.id,
            [LimitSpec(counter, spec.name, spec.limit, spec.period_s, spec.burst)],
        )
        if not decision.allowed:
            raise OAuthError(
                "rate_limited",
                "Too many token exchanges; retry later.",
                headers={"Retry-After": str(max(1, round(decision.retry_after_s + 0.5)))},
            )
