"""Scope grammar, coverage and the down-scoping rule (DESIGN §1)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from authsvc.errors import InvalidFixedParams, InvalidScope, ScopeEscalation
from authsvc.scopes import (
    Grant,
    covers,
    downscope,
    find_grant,
    narrow_params,
    parse_grant,
    parse_grants,
    parse_scope,
)


def g(scope: str, **params: Any) -> Grant:
    return parse_grant({"scope": scope, "fixed_params": params})


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("pipes:read:orders", "PIPES:READ:orders"),
        ("DATASOURCES:APPEND:events", "DATASOURCES:APPEND:events"),
        ("PIPES:READ:*", "PIPES:READ:*"),
        ("admin", "ADMIN"),
        ("keys:write", "KEYS:WRITE"),
        ("PIPES:READ", "PIPES:READ"),
    ],
)
def test_scope_input_is_case_insensitive_and_output_canonical(text: str, canonical: str) -> None:
    assert str(parse_scope(text)) == canonical


@pytest.mark.parametrize(
    "text",
    [
        "",
        "PIPES",
        "PIPES:",
        ":READ",
        "PIPES:READ:a:b",
        "PIPES:READ:bad name",
        "1PIPES:READ",
        "KEYS:DELETE",
        "TOKENS:READ:x",
        "KEYS:READ:x",
        "PIPES:READ:" + "a" * 200,
        42,
        None,
    ],
)
def test_invalid_scope_is_refused(text: Any) -> None:
    with pytest.raises(InvalidScope):
        parse_scope(text)


@pytest.mark.parametrize(
    "params",
    [
        {"1bad": 1},
        {"x": []},
        {"x": {"nested": 1}},
        {"x": [[1]]},
        {"x": None},
        {"x": float("nan")},
        {"x": 2**70},
        {"x": "a" * 2000},
    ],
)
def test_invalid_fixed_params_are_refused(params: dict[str, Any]) -> None:
    with pytest.raises(InvalidFixedParams):
        parse_grant({"scope": "PIPES:READ:x", "fixed_params": params})


def test_management_scope_with_fixed_params_is_invalid() -> None:
    with pytest.raises(InvalidScope):
        parse_grant({"scope": "KEYS:READ", "fixed_params": {"a": 1}})


def test_duplicate_scopes_are_refused() -> None:
    with pytest.raises(InvalidScope):
        parse_grants(["PIPES:READ:x", "pipes:read:x"])


def test_wildcard_covers_named_resource_but_not_other_action() -> None:
    assert covers(parse_scope("PIPES:READ:*"), parse_scope("PIPES:READ:orders"))
    assert not covers(parse_scope("PIPES:READ:*"), parse_scope("PIPES:APPEND:orders"))
    assert not covers(parse_scope("PIPES:READ:orders"), parse_scope("PIPES:READ:*"))
    assert not covers(parse_scope("PIPES:READ:orders"), parse_scope("PIPES:READ:other"))


def test_admin_covers_everything_and_only_admin_grants_admin() -> None:
    assert covers(parse_scope("ADMIN"), parse_scope("KEYS:WRITE"))
    assert covers(parse_scope("ADMIN"), parse_scope("PIPES:READ:*"))
    assert not covers(parse_scope("KEYS:WRITE"), parse_scope("ADMIN"))
    assert not covers(parse_scope("KEYS:WRITE"), parse_scope("TOKENS:CREATE"))


def test_child_inherits_parent_fixed_params() -> None:
    (child,) = downscope([g("PIPES:READ:*", org_id=42)], parse_grants(["PIPES:READ:orders"]))
    assert child.fixed_params == {"org_id": 42}


def test_child_may_add_params_and_narrow_lists() -> None:
    (child,) = downscope(
        [g("PIPES:READ:orders", org=[1, 2, 3])],
        [g("PIPES:READ:orders", org=[2], region="eu")],
    )
    assert child.fixed_params == {"org": [2], "region": "eu"}


def test_scalar_member_of_parent_list_is_narrower() -> None:
    (child,) = downscope([g("PIPES:READ:x", org=[1, 2])], [g("PIPES:READ:x", org=2)])
    assert child.fixed_params == {"org": 2}


@pytest.mark.parametrize(
    "child_params",
    [{"org_id": 43}, {"org_id": [42, 43]}, {"org_id": "42"}, {"org_id": True}, {"org_id": 42.0}],
)
def test_loosening_a_fixed_param_is_scope_escalation(child_params: dict[str, Any]) -> None:
    with pytest.raises(ScopeEscalation) as err:
        downscope([g("PIPES:READ:*", org_id=42)], [g("PIPES:READ:orders", **child_params)])
    assert err.value.scope == "PIPES:READ:orders"
    assert "org_id" in err.value.message


def test_wider_resource_is_scope_escalation_naming_the_scope() -> None:
    with pytest.raises(ScopeEscalation) as err:
        downscope([g("PIPES:READ:orders")], parse_grants(["PIPES:READ:*"]))
    assert "PIPES:READ:*" in err.value.message


def test_specific_grant_is_preferred_over_wildcard() -> None:
    held = [g("PIPES:READ:*", org=1), g("PIPES:READ:orders", org=2)]
    (child,) = downscope(held, parse_grants(["PIPES:READ:orders"]))
    assert child.fixed_params == {"org": 2}
    found = find_grant(held, parse_scope("PIPES:READ:orders"))
    assert found is not None
    assert found.fixed_params == {"org": 2}


def test_keys_write_satisfies_keys_read_check_but_cannot_grant_it() -> None:
    held = [Grant(parse_scope("KEYS:WRITE"))]
    assert find_grant(held, parse_scope("KEYS:READ")) is not None
    with pytest.raises(ScopeEscalation):
        downscope(held, parse_grants(["KEYS:READ"]))


# --- properties ------------------------------------------------------------------------------

scalars = st.one_of(st.integers(-5, 5), st.sampled_from(["a", "b", "c"]), st.booleans())
values = st.one_of(
    scalars, st.lists(scalars, min_size=1, max_size=4, unique_by=lambda v: (type(v), v))
)
param_maps = st.dictionaries(st.sampled_from(["org", "region", "tier"]), values, max_size=3)
resources = st.sampled_from(["orders", "events", "*"])
kinds = st.sampled_from(["PIPES:READ", "DATASOURCES:READ", "DATASOURCES:APPEND"])
grants = st.builds(lambda k, r, p: g(f"{k}:{r}", **p), kinds, resources, param_maps)
mgmt = st.sampled_from(["ADMIN", "KEYS:READ", "KEYS:WRITE", "TOKENS:CREATE", "TOKENS:VERIFY"])


def _as_set(v: Any) -> set[tuple[str, Any]]:
    items = v if isinstance(v, list) else [v]
    return {(type(x).__name__, x) for x in items}


@settings(max_examples=400)
@given(
    held=st.lists(grants, max_size=4),
    held_mgmt=st.lists(mgmt, max_size=2, unique=True),
    wanted=st.lists(grants, min_size=1, max_size=3, unique_by=lambda x: str(x.scope)),
    wanted_mgmt=st.lists(mgmt, max_size=1, unique=True),
)
def test_downscoped_grants_are_never_wider_than_the_parent(
    held: list[Grant], held_mgmt: list[str], wanted: list[Grant], wanted_mgmt: list[str]
) -> None:
    parent = held + [Grant(parse_scope(m)) for m in held_mgmt]
    request = wanted + [Grant(parse_scope(m)) for m in wanted_mgmt]
    try:
        result = downscope(parent, request)
    except ScopeEscalation:
        return
    assert [str(r.scope) for r in result] == [str(w.scope) for w in request]
    for child in result:
        # some parent grant covers the child and every one of its filters is kept or narrowed
        ok = False
        for p in parent:
            if not covers(p.scope, child.scope):
                continue
            if all(
                name in child.fixed_params and _as_set(child.fixed_params[name]) <= _as_set(v)
                for name, v in p.fixed_params.items()
            ):
                ok = True
        assert ok, (child, parent)
        if str(child.scope) == "ADMIN":
            assert any(str(p.scope) == "ADMIN" for p in parent)


@given(parent=param_maps, child=param_maps)
def test_narrow_params_keeps_every_parent_filter(
    parent: dict[str, Any], child: dict[str, Any]
) -> None:
    merged = narrow_params(parent, child)
    if isinstance(merged, str):
        assert merged in parent
        assert merged in child
        return
    for name, value in parent.items():
        assert _as_set(merged[name]) <= _as_set(value)
