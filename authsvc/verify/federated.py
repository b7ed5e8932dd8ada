"""Tokens exchanged from an identity provider's (DESIGN §9): their trusted issuer, as it is now,
stands where a key's lineage stands for other tokens. Off the warm path of
:mod:`authsvc.verify.service`, which hands such a token here and decides the result."""

from __future__ import annotations

from dataclasses import replace

from authsvc.errors import Code
from authsvc.issuers.cache import IssuerCache
from authsvc.issuers.state import IssuerState
from authsvc.principal import Principal
from authsvc.ratelimit.limits import specs
from authsvc.ratelimit.types import LimitSpec
from authsvc.tokens.reader import ReadToken
from authsvc.verify.refusals import wrong_audience
from authsvc.verify.verdict import Verdict

#: The ``client_id`` of a token minted through a trusted issuer starts with this prefix.
ISSUER_PREFIX = "tis_"


async def federated(
    issuers: IssuerCache, read: ReadToken, base: Principal, audience: str | None
) -> Verdict | tuple[Principal, list[LimitSpec]]:
    """A refusal, or the principal and the issuer's limits to decide on (the token's own limits
    are the caller's to add)."""
    issuer = await issuers.by_id(read.tenant_id, read.client_id)
    if issuer is None:
        return Verdict(
            Code.NOT_FOUND, "jwt", reason="The trusted issuer of the token does not exist."
        )
    if not issuer.enabled:
        return Verdict(Code.DISABLED, "jwt", base, reason="Its trusted issuer is disabled.")
    principal = replace(base, grants=tuple(g for g in read.grants if issuer.covers(g.scope)))
    if audience is not None and audience not in read.audiences:
        return wrong_audience(principal)
    return principal, _issuer_specs(issuer, read.sub)


def _issuer_specs(issuer: IssuerState, sub: str) -> list[LimitSpec]:
    """A trusted issuer's limits apply per subject (DESIGN §9), as the issuer is now."""
    holder = f"issuer:{issuer.id}:{sub}"
    out = specs(holder, issuer.ratelimits)
    if issuer.rps is not None:
        out.append(LimitSpec(f"{holder}:rps", "rps", issuer.rps, 1.0, issuer.rps))
    return out
