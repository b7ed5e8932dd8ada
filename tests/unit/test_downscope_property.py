"""Property: a minted token is never wider than its parent (scopes, resources, fixed params,
expiry), and a refusal is only ever SCOPE_ESCALATION, INVALID_SCOPE or TTL_TOO_LONG.

Generated parents (grants with fixed params, ADMIN or management scopes, an expiry) and
requests go through the same claim builder every issuing path uses; accepted tokens are signed,
decoded with PyJWT (an implementation nobody here wrote) and checked against the parent.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import jwt as pyjwt
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from authsvc.errors import AuthsvcError
from authsvc.principal import Principal
from authsvc.scopes import Grant, Scope, covers, parse_scope
from authsvc.signing import crypto
from authsvc.tokens.claims import TokenRequest, build_claims
from authsvc.tokens.jwt import encode_access_token
from tests.factories import ISSUER, tenant_policy

POLICY = tenant_policy()
PRIVATE = crypto.load_private_key(crypto.generate_private_key("ES256"))
PUBLIC = crypto.public_key_of(PRIVATE)
ALLOWED_REFUSALS = {"SCOPE_ESCALATION", "INVALID_SCOPE", "TTL_TOO_LONG"}

scalars = st.one_of(
    st.integers(0, 3), st.sampled_from(["x", "y", "0"]), st.booleans(), st.sampled_from([1.5])
)
values = st.one_of(
    scalars, st.lists(scalars, min_size=1, max_size=3, unique_by=lambda v: (type(v), v))
)
params = st.dictionaries(st.sampled_from(["org", "region", "shop"]), values, max_size=3)
data_scopes = st.builds(
    lambda kind, resource: parse_scope(f"{kind}:{resource}"),
    st.sampled_from(["PIPES:READ", "DATASOURCES:READ", "DATASOURCES:APPEND"]),
    st.sampled_from(["a", "b", "c", "*"]),
)
management = st.sampled_from(["ADMIN", "TOKENS:CREATE", "KEYS:READ"]).map(parse_scope)


@st.composite
def grants(draw: st.DrawFn, *, allow_management: bool) -> tuple[Grant, ...]:
    scopes = draw(
        st.lists(
            st.one_of(data_scopes, data_scopes, data_scopes, management)
            if allow_management
            else data_scopes,
            min_size=1,
            max_size=4,
            unique_by=str,
        )
    )
    return tuple(Grant(s) if s.management else Grant(s, draw(params)) for s in scopes)


def _set(value: Any) -> set[tuple[str, Any]]:
    items = value if isinstance(value, list) else [value]
    return {(type(v).__name__, v) for v in items}


def narrower(parent: Grant, child_scope: Scope, child_params: dict[str, Any]) -> bool:
    if not covers(parent.scope, child_scope):
        return False
    return all(
        name in child_params and _set(child_params[name]) <= _set(value)
        for name, value in parent.fixed_params.items()
    )


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    parent_grants=grants(allow_management=True),
    requested=st.one_of(grants(allow_management=False), grants(allow_management=True)),
    expiry_in=st.one_of(st.none(), st.integers(2, 10_000)),
    ttl=st.one_of(st.none(), st.integers(1, 5000)),
)
def test_minted_token_is_never_wider_than_its_parent(
    parent_grants: tuple[Grant, ...],
    requested: tuple[Grant, ...],
    expiry_in: int | None,
    ttl: int | None,
) -> None:
    now = time.time()
    parent = Principal(
        kind="key",
        id="key_parent",
        tenant_id=POLICY.id,
        grants=parent_grants,
        expires_at=None if expiry_in is None else datetime.fromtimestamp(now + expiry_in, UTC),
    )
    try:
        claims = build_claims(
            parent, TokenRequest(grants=requested, ttl_s=ttl), POLICY, now=now, jti="jti_x"
        )
    except AuthsvcError as exc:
        refusal: str | None = exc.code
    else:
        refusal = None
    event(f"outcome: {refusal or 'minted'}")
    if refusal is not None:
        assert refusal in ALLOWED_REFUSALS
        return
    token = encode_access_token(claims, private_key=PRIVATE, kid="k1", alg="ES256")
    # the signature, iss and aud by PyJWT; the times are asserted against ``now`` below (the
    # wall clock could pass a 1 s expiry on a slow machine)
    decoded = pyjwt.decode(
        token,
        PUBLIC,
        algorithms=["ES256"],
        audience=ISSUER,
        issuer=ISSUER,
        options={"verify_exp": False, "verify_iat": False, "verify_nbf": False},
    )
    assert decoded["iat"] == int(now)
    assert decoded["exp"] <= now + (ttl or POLICY.default_token_ttl_s)
    assert decoded["exp"] - decoded["iat"] <= POLICY.max_token_ttl_s
    if parent.expires_at is not None:
        assert decoded["exp"] <= parent.expires_at.timestamp()
    assert len(decoded["scopes"]) == len(requested)
    scope_names = []
    for item in decoded["scopes"]:
        scope = parse_scope(f"{item['type']}:{item['resource']}")
        assert not scope.management
        child_params = item.get("fixed_params", {})
        assert any(narrower(p, scope, child_params) for p in parent_grants), (item, parent_grants)
        scope_names.append(str(scope))
    assert decoded["scope"].split(" ") == scope_names
