"""msgspec shapes shared by several domains' request and response bodies."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Cursor = Annotated[str, msgspec.Meta(max_length=64)]


class GrantIn(msgspec.Struct, forbid_unknown_fields=True):
    scope: Annotated[str, msgspec.Meta(max_length=300)]
    fixed_params: dict[str, Any] = {}


ScopeIn = str | GrantIn


class GrantOut(msgspec.Struct):
    scope: str
    fixed_params: dict[str, Any]


class RateLimitIn(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    limit: int
    period_s: float
    burst: int | None = None


class RateLimitOut(msgspec.Struct):
    name: str
    limit: int
    period_s: float
    burst: int


def grants_in(scopes: list[ScopeIn]) -> list[Any]:
    """Request grants to the plain form the domain parser takes."""
    return [
        s if isinstance(s, str) else {"scope": s.scope, "fixed_params": s.fixed_params}
        for s in scopes
    ]


def grants_out(stored: list[dict[str, Any]]) -> list[GrantOut]:
    return [GrantOut(g["scope"], dict(g.get("fixed_params") or {})) for g in stored]


def ratelimits_out(stored: list[dict[str, Any]]) -> list[RateLimitOut]:
    return [RateLimitOut(r["name"], r["limit"], r["period_s"], r["burst"]) for r in stored]
