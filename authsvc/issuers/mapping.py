"""Grant templates of a trusted issuer and their mapping onto a verified IdP token's claims.

A template is a request-form grant (:func:`authsvc.scopes.parse_grant`) in which any
fixed-param value may be ``{"claim": "<claim reference>"}`` (:mod:`authsvc.issuers.claims`).

* :func:`parse_grant_templates` validates templates when a trusted issuer is created or
  changed: the same scope grammar, names and literal values as any grant (each claim
  placeholder is checked in place of a value), data scopes only (a management scope is a 400
  ``INVALID_SCOPE``: an IdP token must never yield management rights), and well-formed claim
  references (``INVALID_CLAIM_REF``).
* :func:`map_grants` turns templates into concrete grants: each placeholder becomes the
  referenced claim's value, which must be a string, number or boolean, or a non-empty list of
  them, under the same rules as :func:`~authsvc.scopes.parse_fixed_params` (length, range,
  finiteness, list size). A claim that is missing, ``null``, empty (``""``, ``[]``, or a list
  holding ``""``) or of another type refuses the whole exchange with a :class:`ClaimRefused`
  naming the reference, never the value. A filter is never dropped and never widened: the
  concrete grant carries exactly the template's params, each literal or equal to its claim.
* :func:`subject_of` reads the subject (the minted token's ``sub``): a non-empty printable
  string of at most :data:`MAX_SUBJECT` characters.

Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal, TypeAlias

from authsvc.errors import InvalidFixedParams, InvalidScope
from authsvc.issuers.claims import MISSING, ClaimRef, parse_claim_ref
from authsvc.scopes import Grant, ParamValue, Scope, parse_fixed_params, parse_grants

__all__ = [
    "MAX_SUBJECT",
    "ClaimRefused",
    "GrantTemplate",
    "RefusalReason",
    "map_grants",
    "parse_grant_templates",
    "parse_subject_claim",
    "subject_of",
]

MAX_SUBJECT: Final = 200  # the bound of a minted token's sub (authsvc.tokens.claims.MAX_SUB)
DEFAULT_SUBJECT_CLAIM: Final = "sub"
_PLACEHOLDER: Final = "x"  # stands for a claim while the grant grammar is checked

RefusalReason: TypeAlias = Literal["missing", "null", "empty", "wrong_type"]


@dataclass(frozen=True, slots=True)
class GrantTemplate:
    scope: Scope
    #: Literal filters, copied as they are.
    fixed_params: Mapping[str, ParamValue] = field(default_factory=dict)
    #: Filters taken from the token: param name → claim reference.
    claim_params: Mapping[str, ClaimRef] = field(default_factory=dict)
    #: Param names in the order the admin wrote them.
    order: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """The request form again (for storage and for the admin API)."""
        params: dict[str, Any] = {}
        for name in self.order:
            ref = self.claim_params.get(name)
            params[name] = {"claim": ref.text} if ref is not None else self.fixed_params[name]
        return {"scope": str(self.scope), "fixed_params": params}


@dataclass(frozen=True, slots=True)
class ClaimRefused:
    """The exchange is refused because of this claim (``invalid_grant``)."""

    claim: str
    reason: RefusalReason

    @property
    def message(self) -> str:
        detail = {
            "missing": "is missing",
            "null": "is null",
            "empty": "is empty",
            "wrong_type": "is not a string, number, boolean or a list of them",
        }[self.reason]
        return f"Claim '{self.claim}' {detail}."


def _claim_placeholder(name: object, value: Mapping[Any, Any]) -> ClaimRef:
    if set(value) != {"claim"}:
        raise InvalidFixedParams(
            f"Fixed param '{name}': an object value must be exactly {{\"claim\": <reference>}}."
        )
    return parse_claim_ref(value["claim"])


def parse_grant_templates(items: object) -> tuple[GrantTemplate, ...]:
    """Validate a trusted issuer's ``grants``; ``InvalidScope``/``InvalidFixedParams``/
    ``InvalidRequest`` (``INVALID_CLAIM_REF``) on the first problem."""
    if not isinstance(items, list | tuple):
        raise InvalidScope("grants must be a list.")
    substituted: list[object] = []
    refs: list[dict[str, ClaimRef]] = []
    for item in items:
        claim_refs: dict[str, ClaimRef] = {}
        if isinstance(item, Mapping) and isinstance(item.get("fixed_params"), Mapping):
            params: dict[object, object] = {}
            for name, value in item["fixed_params"].items():
                if isinstance(value, Mapping):
                    claim_refs[str(name)] = _claim_placeholder(name, value)
                    params[name] = _PLACEHOLDER
                else:
                    params[name] = value
            item = {**item, "fixed_params": params}
        substituted.append(item)
        refs.append(claim_refs)
    grants = parse_grants(substituted)  # grammar, names, literals, count, duplicates
    templates: list[GrantTemplate] = []
    for grant, claim_refs in zip(grants, refs, strict=True):
        if grant.scope.management:
            raise InvalidScope(
                f"Scope '{grant.scope}' is a management scope; an issuer grants data scopes only."
            )
        literal = {n: v for n, v in grant.fixed_params.items() if n not in claim_refs}
        templates.append(GrantTemplate(grant.scope, literal, claim_refs, tuple(grant.fixed_params)))
    return tuple(templates)


def _claim_value(name: str, ref: ClaimRef, claims: Mapping[str, Any]) -> ParamValue | ClaimRefused:
    value = ref.resolve(claims)
    if value is MISSING:
        return ClaimRefused(ref.text, "missing")
    if value is None:
        return ClaimRefused(ref.text, "null")
    if value == "" or value == [] or (isinstance(value, list) and "" in value):
        return ClaimRefused(ref.text, "empty")
    try:
        return parse_fixed_params({name: value})[name]  # the one rule for filter values
    except InvalidFixedParams:
        return ClaimRefused(ref.text, "wrong_type")


def map_grants(
    templates: Sequence[GrantTemplate], claims: Mapping[str, Any]
) -> tuple[Grant, ...] | ClaimRefused:
    """Concrete grants for a verified token, or the first claim that refuses the exchange."""
    grants: list[Grant] = []
    for template in templates:
        params: dict[str, ParamValue] = {}
        for name in template.order:
            ref = template.claim_params.get(name)
            if ref is None:
                literal = template.fixed_params[name]
                params[name] = list(literal) if isinstance(literal, list) else literal
                continue
            value = _claim_value(name, ref, claims)
            if isinstance(value, ClaimRefused):
                return value
            params[name] = value
        grants.append(Grant(template.scope, params))
    return tuple(grants)


def parse_subject_claim(value: object) -> ClaimRef:
    """A trusted issuer's ``subject_claim`` (creation time); ``None`` means ``sub``."""
    return parse_claim_ref(DEFAULT_SUBJECT_CLAIM if value is None else value)


def subject_of(claims: Mapping[str, Any], ref: ClaimRef) -> str | ClaimRefused:
    """The subject of the minted token: a non-empty printable string of the referenced claim."""
    value = ref.resolve(claims)
    if value is MISSING:
        return ClaimRefused(ref.text, "missing")
    if value is None:
        return ClaimRefused(ref.text, "null")
    if value == "":
        return ClaimRefused(ref.text, "empty")
    if not isinstance(value, str) or len(value) > MAX_SUBJECT or not value.isprintable():
        return ClaimRefused(ref.text, "wrong_type")
    return value
