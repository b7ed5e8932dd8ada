"""Scopes, grants and the down-scoping rule.

A scope is ``TYPE:ACTION[:RESOURCE]`` (data scopes, e.g. ``PIPES:READ:orders``) or one of the
management scopes (``ADMIN``, ``KEYS:READ`` …). A grant is a scope plus ``fixed_params``: row-
level-security filters the resource server must apply and callers cannot override.

Down-scoping (DESIGN §1) is the one security rule every issuing path goes through
(:func:`downscope`): a credential hands out only what it holds, only narrower.

* A data scope is covered by a parent grant of the same type and action whose resource is equal
  or ``*``; ``ADMIN`` covers every data scope (with no filters).
* The child inherits every fixed param of the covering grant; it may restate one with the same
  value or, for lists, a non-empty subset (a scalar from the list counts as a subset of one);
  it may add new ones. Values compare by type as well as value (``1`` is not ``True``).
* A management scope is granted only by a holder of the same scope or ``ADMIN``; ``ADMIN`` only
  by ``ADMIN``. Management scopes carry no fixed params.
* Anything else is a :class:`~authsvc.errors.ScopeEscalation` naming the scope: nothing is
  silently dropped.

Bounding (DESIGN §8, "a descendant never exercises more than each of its ancestors holds now"):
:func:`intersect` gives the grants usable when holding some grants under an ancestor's grants,
and :func:`meet` the filter that satisfies two filters at once. Filters never fail open: two
filters on the same name with no common value have no meet, and the grant (or the check)
that needs it is refused rather than left unfiltered.

Everything here is pure: no I/O, no clock.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from authsvc.errors import InvalidFixedParams, InvalidScope, ScopeEscalation

Scalar = str | int | float | bool
ParamValue = Scalar | list[Scalar]

ADMIN = "ADMIN"
MANAGEMENT_SCOPES = frozenset(
    {ADMIN, "KEYS:READ", "KEYS:WRITE", "TOKENS:CREATE", "TOKENS:VERIFY", "TOKENS:REVOKE"}
)
_RESERVED_TYPES = frozenset({"ADMIN", "KEYS", "TOKENS"})
#: Holding the key scope also satisfies the value scopes when *checking* a permission.
_IMPLIES = {"KEYS:WRITE": frozenset({"KEYS:READ"})}

_PART = re.compile(r"[A-Z][A-Z0-9_]*\Z")
_RESOURCE = re.compile(r"(\*|[A-Za-z0-9_][A-Za-z0-9_.\-]{0,127})\Z")
_PARAM_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}\Z")
MAX_SCOPE_LEN = 300
MAX_GRANTS = 100
MAX_PARAMS = 32
MAX_LIST = 1000
MAX_STRING = 1024
_INT_RANGE = (-(2**63), 2**63 - 1)


@dataclass(frozen=True, slots=True)
class Scope:
    type: str
    action: str | None = None
    resource: str | None = None

    @property
    def management(self) -> bool:
        return str(self) in MANAGEMENT_SCOPES

    @property
    def kind(self) -> str:
        """``TYPE:ACTION``, the Tinybird JWT ``type``."""
        return self.type if self.action is None else f"{self.type}:{self.action}"

    def __str__(self) -> str:
        return self.kind if self.resource is None else f"{self.kind}:{self.resource}"


@dataclass(frozen=True, slots=True)
class Grant:
    scope: Scope
    fixed_params: Mapping[str, ParamValue] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"scope": str(self.scope), "fixed_params": dict(self.fixed_params)}

    def to_claim(self) -> dict[str, Any]:
        """Tinybird's JWT form: ``{"type", "resource", "fixed_params"}``."""
        claim: dict[str, Any] = {"type": self.scope.kind}
        if self.scope.resource is not None:
            claim["resource"] = self.scope.resource
        if self.fixed_params:
            claim["fixed_params"] = dict(self.fixed_params)
        return claim


def parse_scope(text: object) -> Scope:
    if not isinstance(text, str) or not text or len(text) > MAX_SCOPE_LEN:
        raise InvalidScope("A scope must be a non-empty string of at most 300 characters.")
    parts = text.split(":")
    if len(parts) == 1 and parts[0].upper() == ADMIN:
        return Scope(ADMIN)
    if len(parts) not in (2, 3):
        raise InvalidScope(f"Scope '{_show(text)}' is not TYPE:ACTION[:RESOURCE].")
    type_, action = parts[0].upper(), parts[1].upper()
    if not _PART.match(type_) or not _PART.match(action):
        raise InvalidScope(f"Scope '{_show(text)}' is not TYPE:ACTION[:RESOURCE].")
    resource = parts[2] if len(parts) == 3 else None
    if resource is not None and not _RESOURCE.match(resource):
        raise InvalidScope(f"Scope '{_show(text)}' has an invalid resource name.")
    scope = Scope(type_, action, resource)
    if type_ in _RESERVED_TYPES and (resource is not None or str(scope) not in MANAGEMENT_SCOPES):
        raise InvalidScope(f"Scope '{_show(text)}' is not a known management scope.")
    return scope


def parse_grant(obj: object) -> Grant:
    """A grant from its request form: a scope string or ``{"scope", "fixed_params"?}``."""
    if isinstance(obj, str):
        return Grant(parse_scope(obj))
    if not isinstance(obj, Mapping):
        raise InvalidScope("A grant is a scope string or an object with 'scope'.")
    unknown = set(obj) - {"scope", "fixed_params"}
    if unknown:
        raise InvalidScope(f"Unknown grant field '{_show(sorted(unknown)[0])}'.")
    scope = parse_scope(obj.get("scope"))
    params = parse_fixed_params(obj.get("fixed_params") or {})
    if params and scope.management:
        raise InvalidScope(f"Management scope '{scope}' cannot carry fixed_params.")
    return Grant(scope, params)


def parse_grants(items: object, *, allow_empty: bool = False) -> tuple[Grant, ...]:
    if not isinstance(items, list | tuple):
        raise InvalidScope("scopes must be a list.")
    if not items and not allow_empty:
        raise InvalidScope("scopes must not be empty.")
    if len(items) > MAX_GRANTS:
        raise InvalidScope(f"At most {MAX_GRANTS} scopes.")
    grants = tuple(parse_grant(i) for i in items)
    seen: set[str] = set()
    for g in grants:
        if str(g.scope) in seen:
            raise InvalidScope(f"Scope '{g.scope}' is listed twice.")
        seen.add(str(g.scope))
    return grants


def parse_fixed_params(obj: object) -> dict[str, ParamValue]:
    if not isinstance(obj, Mapping):
        raise InvalidFixedParams()
    if len(obj) > MAX_PARAMS:
        raise InvalidFixedParams(f"At most {MAX_PARAMS} fixed params per grant.")
    out: dict[str, ParamValue] = {}
    for name, value in obj.items():
        if not isinstance(name, str) or not _PARAM_NAME.match(name):
            raise InvalidFixedParams(f"Fixed param name '{_show(name)}' is not an identifier.")
        if isinstance(value, list):
            if not value or len(value) > MAX_LIST:
                raise InvalidFixedParams(
                    f"Fixed param '{name}': a list needs 1 to {MAX_LIST} values."
                )
            out[name] = [_scalar(name, v) for v in value]
        else:
            out[name] = _scalar(name, value)
    return out


def _scalar(name: str, value: object) -> Scalar:
    if isinstance(value, bool | str | int | float):
        if isinstance(value, str) and len(value) > MAX_STRING:
            raise InvalidFixedParams(f"Fixed param '{name}' is longer than {MAX_STRING}.")
        if isinstance(value, float) and not math.isfinite(value):
            raise InvalidFixedParams(f"Fixed param '{name}' is not a finite number.")
        if type(value) is int and not _INT_RANGE[0] <= value <= _INT_RANGE[1]:
            raise InvalidFixedParams(f"Fixed param '{name}' is out of the 64-bit range.")
        return value
    raise InvalidFixedParams(
        f"Fixed param '{name}' must be a string, number, boolean or a list of them."
    )


def grant_from_json(obj: Mapping[str, Any]) -> Grant:
    """A grant as stored (trusted: it was validated on the way in)."""
    return Grant(parse_scope(obj["scope"]), dict(obj.get("fixed_params") or {}))


# --- coverage -------------------------------------------------------------------------------


def covers(parent: Scope, child: Scope) -> bool:
    """Whether holding ``parent`` allows handing out ``child`` (ignoring fixed params)."""
    if parent.type == ADMIN:
        return True
    if child.management or parent.management:
        return str(parent) == str(child)
    if parent.kind != child.kind:
        return False
    if parent.resource == "*":
        return child.resource is not None
    return parent.resource == child.resource


def satisfies(held: Scope, required: Scope) -> bool:
    """Whether holding ``held`` permits an operation that requires ``required``."""
    if covers(held, required):
        return True
    return str(required) in _IMPLIES.get(str(held), frozenset())


def find_grant(grants: Iterable[Grant], required: Scope) -> Grant | None:
    """The most specific held grant that permits ``required`` (exact resource before ``*``)."""
    best: Grant | None = None
    for g in grants:
        if satisfies(g.scope, required):
            if g.scope.resource == required.resource and g.scope.type != ADMIN:
                return g
            best = best or g
    return best


def _key(v: Scalar) -> tuple[str, Scalar]:
    return (type(v).__name__, v)


def _as_set(v: ParamValue) -> set[tuple[str, Scalar]]:
    return {_key(x) for x in v} if isinstance(v, list) else {_key(v)}


def narrow_params(
    parent: Mapping[str, ParamValue], child: Mapping[str, ParamValue]
) -> dict[str, ParamValue] | str:
    """Merged filters for the child, or the name of the first param the child would loosen."""
    merged: dict[str, ParamValue] = dict(parent)
    for name, value in child.items():
        if name in parent:
            wanted = _as_set(value)
            if not wanted or not wanted <= _as_set(parent[name]):
                return name
        merged[name] = value
    return merged


def meet(a: Mapping[str, ParamValue], b: Mapping[str, ParamValue]) -> dict[str, ParamValue] | None:
    """The filter satisfying both ``a`` and ``b``, or ``None`` if a name has no common value.

    Names of either side apply; a name both filter on keeps the values both admit (a scalar
    when either side is one, else the common list in ``a``'s order).
    """
    if not b:
        return dict(a)
    if not a:
        return dict(b)
    merged: dict[str, ParamValue] = dict(a)
    for name, theirs in b.items():
        mine = merged.get(name)
        if mine is None:
            merged[name] = theirs
            continue
        allowed = _as_set(theirs)
        if isinstance(mine, list):
            common = [v for v in mine if _key(v) in allowed]
            if not common:
                return None
            merged[name] = common if isinstance(theirs, list) else common[0]
        elif _key(mine) not in allowed:
            return None
    return merged


def intersect(held: Sequence[Grant], bound: Sequence[Grant]) -> tuple[Grant, ...]:
    """The grants usable when holding ``held`` under an ancestor holding ``bound``: each scope
    covered by both, with both filters applied (:func:`meet`). Nothing wider than either."""
    out: dict[tuple[str, str], Grant] = {}
    for mine in held:
        for theirs in bound:
            if covers(theirs.scope, mine.scope):
                scope = mine.scope
            elif covers(mine.scope, theirs.scope):
                scope = theirs.scope
            else:
                continue
            params = meet(mine.fixed_params, theirs.fixed_params)
            if params is None:
                continue
            grant = Grant(scope, params)
            out.setdefault((str(scope), repr(sorted(params.items()))), grant)
    return tuple(out.values())


def downscope(held: Sequence[Grant], requested: Sequence[Grant]) -> tuple[Grant, ...]:
    """The grants a child credential gets, or :class:`ScopeEscalation` for the first widening."""
    result: list[Grant] = []
    for want in requested:
        loosened: str | None = None
        granted: Grant | None = None
        candidates = sorted(
            (g for g in held if covers(g.scope, want.scope)),
            key=lambda g: (g.scope.type == ADMIN, g.scope.resource == "*"),
        )
        for parent in candidates:
            merged = narrow_params(parent.fixed_params, want.fixed_params)
            if isinstance(merged, str):
                loosened = loosened or merged
                continue
            granted = Grant(want.scope, merged)
            break
        if granted is None:
            if loosened is not None:
                raise ScopeEscalation(
                    str(want.scope), f"would loosen fixed param '{loosened}' of the credential"
                )
            raise ScopeEscalation(str(want.scope))
        result.append(granted)
    return tuple(result)


def _show(text: object) -> str:
    s = str(text)
    return s if len(s) <= 60 else s[:57] + "..."
