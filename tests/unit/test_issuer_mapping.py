"""Grant templates of a trusted issuer and their mapping onto an IdP token's claims.

The security property (hypothesis): a mapped grant is either refused, or carries every fixed
param of its template, each equal (type and value) to the literal or to the referenced claim;
a filter is never dropped and never widened.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from authsvc.errors import InvalidFixedParams, InvalidRequest, InvalidScope
from authsvc.issuers.mapping import (
    MAX_SUBJECT,
    ClaimRefused,
    GrantTemplate,
    RefusalReason,
    map_grants,
    parse_grant_templates,
    parse_subject_claim,
    subject_of,
)
from authsvc.scopes import MAX_LIST, MAX_STRING, Grant
from authsvc.tokens.claims import MAX_SUB


def test_literal_and_claim_params_are_split_and_kept_in_order() -> None:
    (template,) = parse_grant_templates(
        [
            {
                "scope": "pipes:read:orders",
                "fixed_params": {"region": "eu", "org_id": {"claim": "org_id"}, "tier": [1, 2]},
            }
        ]
    )
    assert str(template.scope) == "PIPES:READ:orders"
    assert template.fixed_params == {"region": "eu", "tier": [1, 2]}
    assert {n: r.text for n, r in template.claim_params.items()} == {"org_id": "org_id"}
    assert template.order == ("region", "org_id", "tier")
    assert template.to_json() == {
        "scope": "PIPES:READ:orders",
        "fixed_params": {"region": "eu", "org_id": {"claim": "org_id"}, "tier": [1, 2]},
    }


def test_plain_scope_strings_are_templates_without_params() -> None:
    templates = parse_grant_templates(["DATASOURCES:READ:events", "PIPES:READ:*"])
    assert [str(t.scope) for t in templates] == ["DATASOURCES:READ:events", "PIPES:READ:*"]
    assert all(not t.fixed_params and not t.claim_params for t in templates)


@pytest.mark.parametrize(
    "scope", ["ADMIN", "KEYS:READ", "KEYS:WRITE", "TOKENS:CREATE", "TOKENS:REVOKE"]
)
def test_management_scopes_are_refused(scope: str) -> None:
    with pytest.raises(InvalidScope):
        parse_grant_templates([scope])


@pytest.mark.parametrize(
    ("grants", "error", "code"),
    [
        ([], InvalidScope, "INVALID_SCOPE"),
        ("PIPES:READ:x", InvalidScope, "INVALID_SCOPE"),
        (["PIPES:READ:x", "pipes:read:x"], InvalidScope, "INVALID_SCOPE"),
        (["not a scope"], InvalidScope, "INVALID_SCOPE"),
        ([{"scope": "PIPES:READ:x", "extra": 1}], InvalidScope, "INVALID_SCOPE"),
        ([{"scope": "PIPES:READ:x", "fixed_params": {"bad name": 1}}], InvalidFixedParams, None),
        ([{"scope": "PIPES:READ:x", "fixed_params": {"a": None}}], InvalidFixedParams, None),
        ([{"scope": "PIPES:READ:x", "fixed_params": {"a": []}}], InvalidFixedParams, None),
        ([{"scope": "PIPES:READ:x", "fixed_params": {"a": {}}}], InvalidFixedParams, None),
        (
            [{"scope": "PIPES:READ:x", "fixed_params": {"a": {"claim": "x", "or": 1}}}],
            InvalidFixedParams,
            None,
        ),
        (
            [{"scope": "PIPES:READ:x", "fixed_params": {"a": {"value": "x"}}}],
            InvalidFixedParams,
            None,
        ),
        (
            [{"scope": "PIPES:READ:x", "fixed_params": {"a": {"claim": ""}}}],
            InvalidRequest,
            "INVALID_CLAIM_REF",
        ),
        (
            [{"scope": "PIPES:READ:x", "fixed_params": {"a": {"claim": "/a~9"}}}],
            InvalidRequest,
            "INVALID_CLAIM_REF",
        ),
        (
            [{"scope": "PIPES:READ:x", "fixed_params": {"a": {"claim": 5}}}],
            InvalidRequest,
            "INVALID_CLAIM_REF",
        ),
        (
            [{"scope": "PIPES:READ:x", "fixed_params": {"a": [{"claim": "x"}]}}],
            InvalidFixedParams,
            None,
        ),
        (
            [
                {
                    "scope": "PIPES:READ:x",
                    "fixed_params": {f"p{i}": {"claim": "x"} for i in range(33)},
                }
            ],
            InvalidFixedParams,
            None,
        ),
    ],
)
def test_invalid_templates_are_a_400(grants: Any, error: type[Exception], code: str | None) -> None:
    with pytest.raises(error) as caught:
        parse_grant_templates(grants)
    assert isinstance(caught.value, InvalidRequest)
    if code is not None:
        assert caught.value.code == code


TEMPLATES = parse_grant_templates(
    [
        {
            "scope": "PIPES:READ:orders",
            "fixed_params": {"org_id": {"claim": "org_id"}, "region": "eu"},
        },
        {"scope": "PIPES:READ:teams", "fixed_params": {"team": {"claim": "/groups"}}},
        "DATASOURCES:READ:events",
    ]
)


def test_claims_fill_the_placeholders() -> None:
    grants = map_grants(TEMPLATES, {"org_id": 42, "groups": ["a", "b"]})
    assert grants == (
        Grant(TEMPLATES[0].scope, {"org_id": 42, "region": "eu"}),
        Grant(TEMPLATES[1].scope, {"team": ["a", "b"]}),
        Grant(TEMPLATES[2].scope, {}),
    )


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"groups": ["a"]}, "missing"),
        ({"org_id": None, "groups": ["a"]}, "null"),
        ({"org_id": "", "groups": ["a"]}, "empty"),
        ({"org_id": [], "groups": ["a"]}, "empty"),
        ({"org_id": ["x", ""], "groups": ["a"]}, "empty"),
        ({"org_id": {"id": 1}, "groups": ["a"]}, "wrong_type"),
        ({"org_id": [["x"]], "groups": ["a"]}, "wrong_type"),
        ({"org_id": [1, None], "groups": ["a"]}, "wrong_type"),
        ({"org_id": "x" * (MAX_STRING + 1), "groups": ["a"]}, "wrong_type"),
        ({"org_id": list(range(MAX_LIST + 1)), "groups": ["a"]}, "wrong_type"),
        ({"org_id": 2**64, "groups": ["a"]}, "wrong_type"),
        ({"org_id": math.inf, "groups": ["a"]}, "wrong_type"),
    ],
)
def test_an_unusable_claim_refuses_the_exchange_naming_the_reference(
    claims: dict[str, Any], reason: RefusalReason
) -> None:
    result = map_grants(TEMPLATES, claims)
    assert result == ClaimRefused("org_id", reason)
    assert "org_id" in result.message


def test_the_refusal_never_carries_the_claim_value() -> None:
    result = map_grants(TEMPLATES, {"org_id": {"secret": "s3cr3t-value"}, "groups": ["a"]})
    assert isinstance(result, ClaimRefused)
    assert "s3cr3t" not in result.message
    assert "s3cr3t" not in repr(result)


def test_a_pointer_refusal_names_the_pointer() -> None:
    result = map_grants(TEMPLATES, {"org_id": 1, "groups": []})
    assert result == ClaimRefused("/groups", "empty")


def test_mapped_lists_are_copies_of_the_claims() -> None:
    claims: dict[str, Any] = {"org_id": 1, "groups": ["a"]}
    grants = map_grants(TEMPLATES, claims)
    assert not isinstance(grants, ClaimRefused)
    claims["groups"].append("b")
    assert grants[1].fixed_params["team"] == ["a"]


# --------------------------------------------------------------------------- subject


def test_the_subject_claim_defaults_to_sub() -> None:
    ref = parse_subject_claim(None)
    assert subject_of({"sub": "user-1"}, ref) == "user-1"


def test_the_subject_may_come_from_a_pointer() -> None:
    ref = parse_subject_claim("/https:~1~1acme.com~1user/id")
    assert subject_of({"https://acme.com/user": {"id": "u-9"}}, ref) == "u-9"


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({}, "missing"),
        ({"sub": None}, "null"),
        ({"sub": ""}, "empty"),
        ({"sub": 42}, "wrong_type"),
        ({"sub": ["a"]}, "wrong_type"),
        ({"sub": "a\nb"}, "wrong_type"),
        ({"sub": "x" * (MAX_SUBJECT + 1)}, "wrong_type"),
    ],
)
def test_an_unusable_subject_refuses_the_exchange(
    claims: dict[str, Any], reason: RefusalReason
) -> None:
    assert subject_of(claims, parse_subject_claim(None)) == ClaimRefused("sub", reason)


def test_the_subject_bound_is_the_minted_tokens_sub_bound() -> None:
    assert MAX_SUBJECT == MAX_SUB


# --------------------------------------------------------------------------- property


names = st.from_regex(r"[a-z_][a-z0-9_]{0,6}", fullmatch=True)
scalars = st.one_of(
    st.text(max_size=5),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
)
claim_values = st.recursive(
    st.one_of(st.none(), scalars),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.sampled_from(["a", "b", "c"]), inner, max_size=3),
    ),
    max_leaves=8,
)
refs = st.one_of(
    names,
    names.map(lambda n: f"/{n}"),
    names.map(lambda n: f"/{n}/0"),
    names.map(lambda n: f"/{n}/a"),
)
literal_values = st.one_of(
    st.text(min_size=1, max_size=5),
    st.integers(-100, 100),
    st.booleans(),
    st.lists(st.integers(0, 5), min_size=1, max_size=3),
)


usable_values = st.one_of(
    st.text(min_size=1, max_size=5),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
    st.lists(st.one_of(st.integers(0, 9), st.text(min_size=1, max_size=3)), min_size=1, max_size=4),
)


def place(claims: dict[str, Any], ref: str, value: Any) -> None:
    """Put ``value`` where ``ref`` (one of the shapes ``refs`` draws) points."""
    if not ref.startswith("/"):
        claims[ref] = value
    elif ref.endswith("/0"):
        claims[ref[1:-2]] = [value, "other"]
    elif ref.endswith("/a"):
        claims[ref[1:-2]] = {"a": value, "b": "other"}
    else:
        claims[ref[1:]] = value


@st.composite
def templates_and_claims(draw: st.DrawFn) -> tuple[tuple[GrantTemplate, ...], dict[str, Any]]:
    resources = draw(st.lists(names, min_size=1, max_size=3, unique=True))
    grants: list[dict[str, Any]] = []
    for resource in resources:
        params = draw(
            st.dictionaries(
                names, st.one_of(literal_values, refs.map(lambda r: {"claim": r})), max_size=4
            )
        )
        grants.append({"scope": f"PIPES:READ:{resource}", "fixed_params": params})
    claims = draw(st.dictionaries(names, claim_values, max_size=4))
    for grant in grants:
        for value in grant["fixed_params"].values():
            if isinstance(value, dict) and draw(st.integers(0, 9)) > 0:
                place(claims, value["claim"], draw(st.one_of(usable_values, claim_values)))
    return parse_grant_templates(grants), claims


def same(a: Any, b: Any) -> bool:
    if isinstance(a, list) or isinstance(b, list):
        return (
            isinstance(a, list)
            and isinstance(b, list)
            and len(a) == len(b)
            and all(same(x, y) for x, y in zip(a, b, strict=True))
        )
    return type(a) is type(b) and a == b


def usable_scalar(value: Any) -> bool:
    if isinstance(value, bool):
        return True
    if isinstance(value, str):
        return 0 < len(value) <= MAX_STRING
    if isinstance(value, int):
        return -(2**63) <= value < 2**63
    if isinstance(value, float):
        return math.isfinite(value)
    return False


def usable(value: Any) -> bool:
    if isinstance(value, list):
        return 0 < len(value) <= MAX_LIST and all(usable_scalar(v) for v in value)
    return usable_scalar(value)


@settings(max_examples=200, deadline=None)
@given(templates_and_claims())
def test_mapped_filters_are_never_dropped_or_widened(
    case: tuple[tuple[GrantTemplate, ...], dict[str, Any]],
) -> None:
    templates, claims = case
    result = map_grants(templates, claims)
    first_unusable = next(
        (
            ref.text
            for template in templates
            for name in template.order
            if (ref := template.claim_params.get(name)) is not None
            and not usable(ref.resolve(claims))
        ),
        None,
    )
    if isinstance(result, ClaimRefused):
        assert result.claim == first_unusable
        return
    assert first_unusable is None
    assert len(result) == len(templates)
    for grant, template in zip(result, templates, strict=True):
        assert grant.scope == template.scope
        assert list(grant.fixed_params) == list(template.order)
        for name, value in grant.fixed_params.items():
            ref = template.claim_params.get(name)
            expected = template.fixed_params[name] if ref is None else ref.resolve(claims)
            assert same(value, expected)
