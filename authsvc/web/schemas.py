"""msgspec shapes shared by several domains' request and response bodies."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Any, TypeVar

import msgspec

from authsvc.ratelimit.limits import RateLimitDef
from authsvc.scopes import Grant

Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Cursor = Annotated[str, msgspec.Meta(max_length=64)]

S = TypeVar("S", bound=msgspec.Struct)


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


def struct_from(schema: type[S], source: object, **converted: Any) -> S:
    """``schema`` filled from the same-named attributes of ``source`` (a domain value), except
    the fields given in ``converted`` (those whose wire form differs from the domain's)."""
    same = {f: getattr(source, f) for f in schema.__struct_fields__ if f not in converted}
    return schema(**same, **converted)


def grants_out(grants: Iterable[Grant]) -> list[GrantOut]:
    return [GrantOut(str(g.scope), dict(g.fixed_params)) for g in grants]


def ratelimits_out(defs: Iterable[RateLimitDef]) -> list[RateLimitOut]:
    return [RateLimitOut(d.name, d.limit, d.period_s, d.burst) for d in defs]


def present(struct: msgspec.Struct) -> dict[str, Any]:
    """The fields of a PATCH-style body that were sent (``UNSET`` ones left out)."""
    return {
        name: value
        for name, value in msgspec.structs.asdict(struct).items()
        if value is not msgspec.UNSET
    }
