"""Claim references: how a trusted issuer's configuration points into an IdP token's claims.

A reference is either a **claim name** (``sub``, ``org_id``, ``https://acme.com/org``: any
string not starting with ``/`` names one top-level member, exactly) or an **RFC 6901 JSON
Pointer** (starts with ``/``: ``/org/id``, ``/groups/0``, ``/https:~1~1acme.com~1org``).
Pointers are evaluated here (RFC 6901 §4), not by a library: ``~1`` → ``/`` then ``~0`` → ``~``
per token; an object member by exact name; an array element by a decimal index without
leading zeros; ``-`` and anything else on an array, or any token on a scalar, is "missing".

Conditions (:func:`first_failed_condition`) compare a referenced claim to a required scalar:

* a boolean matches only the same boolean (``true`` is not ``1``);
* a number matches a number of equal value (JSON has one number type: ``1`` matches ``1.0``);
* a string matches the identical string (case-sensitive, no normalisation);
* a list claim satisfies a scalar condition when one of its elements matches (``groups``
  containing ``"admins"``);
* a missing claim, ``null``, an object, or a list without a match fails.

Required values are scalars only (validated by :func:`parse_conditions`): "one of several
values" would be ambiguous against a list claim, so it is not offered.

Pure: no I/O, no clock. Failures name the reference, never the claim's value.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, TypeAlias

from authsvc.errors import Code, InvalidRequest

__all__ = [
    "MAX_CONDITIONS",
    "MISSING",
    "ClaimRef",
    "Conditions",
    "Scalar",
    "first_failed_condition",
    "parse_claim_ref",
    "parse_conditions",
]

Scalar: TypeAlias = str | int | float | bool
MAX_REF_LENGTH: Final = 256
MAX_REF_DEPTH: Final = 16
MAX_CONDITIONS: Final = 16
_INDEX: Final = re.compile(r"0|[1-9][0-9]{0,8}")  # RFC 6901 §4: no leading zeros
_BAD_ESCAPE: Final = re.compile(r"~(?![01])")  # RFC 6901 §3: escaped = "~" ( "0" / "1" )


class _Missing:
    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Final = _Missing()


@dataclass(frozen=True, slots=True)
class ClaimRef:
    """A parsed reference. ``text`` is what the admin wrote (and what errors show)."""

    text: str
    tokens: tuple[str, ...]
    pointer: bool

    def resolve(self, claims: Mapping[str, Any]) -> Any:
        """The referenced value, or :data:`MISSING`."""
        if not self.pointer:
            return claims.get(self.tokens[0], MISSING)
        current: Any = claims
        for token in self.tokens:  # RFC 6901 §4, one reference token at a time
            if isinstance(current, Mapping):
                if token not in current:
                    return MISSING
                current = current[token]
            elif isinstance(current, list):
                if not _INDEX.fullmatch(token):  # also "-": the element after the last
                    return MISSING
                index = int(token)
                if index >= len(current):
                    return MISSING
                current = current[index]
            else:
                return MISSING
        return current

    def __str__(self) -> str:
        return self.text


def _invalid(message: str) -> InvalidRequest:
    return InvalidRequest(message, code=Code.INVALID_CLAIM_REF)


def parse_claim_ref(text: object) -> ClaimRef:
    """A claim name or JSON Pointer; :class:`InvalidRequest` (``INVALID_CLAIM_REF``) if not."""
    if not isinstance(text, str) or not text or len(text) > MAX_REF_LENGTH:
        raise _invalid(f"A claim reference is a non-empty string of at most {MAX_REF_LENGTH}.")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in text):
        raise _invalid("A claim reference must not contain control characters.")
    if not text.startswith("/"):
        return ClaimRef(text, (text,), pointer=False)
    raw_tokens = text[1:].split("/")  # RFC 6901 §3: *( "/" reference-token )
    if len(raw_tokens) > MAX_REF_DEPTH:
        raise _invalid(f"A claim pointer has at most {MAX_REF_DEPTH} levels.")
    if any(_BAD_ESCAPE.search(token) for token in raw_tokens):
        raise _invalid("A claim pointer may only use the escapes ~0 and ~1.")
    # RFC 6901 §4: "~1" first, then "~0", so "~01" becomes "~1" and not "/".
    tokens = tuple(token.replace("~1", "/").replace("~0", "~") for token in raw_tokens)
    return ClaimRef(text, tokens, pointer=True)


# --------------------------------------------------------------------------- conditions

Conditions: TypeAlias = Sequence[tuple[ClaimRef, Scalar]]


def _is_scalar(value: object) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    return isinstance(value, str | int | bool)


def parse_conditions(obj: object) -> tuple[tuple[ClaimRef, Scalar], ...]:
    """A trusted issuer's ``conditions`` (creation time): ``{claim ref: scalar}``.

    :class:`InvalidRequest` with ``INVALID_CLAIM_REF`` or ``INVALID_CONDITIONS``.
    """
    if obj is None:
        return ()
    if not isinstance(obj, Mapping):
        raise InvalidRequest("conditions must be an object.", code=Code.INVALID_CONDITIONS)
    if len(obj) > MAX_CONDITIONS:
        raise InvalidRequest(f"At most {MAX_CONDITIONS} conditions.", code=Code.INVALID_CONDITIONS)
    out: list[tuple[ClaimRef, Scalar]] = []
    for text, required in obj.items():
        ref = parse_claim_ref(text)
        if not _is_scalar(required):
            raise InvalidRequest(
                f"Condition '{ref.text}' must require a string, number or boolean.",
                code=Code.INVALID_CONDITIONS,
            )
        out.append((ref, required))
    return tuple(out)


def _matches(value: Any, required: Scalar) -> bool:
    if isinstance(required, bool) or isinstance(value, bool):
        return type(value) is type(required) and value == required
    if isinstance(required, int | float):
        return isinstance(value, int | float) and value == required
    return isinstance(value, str) and value == required


def first_failed_condition(claims: Mapping[str, Any], conditions: Conditions) -> ClaimRef | None:
    """The reference of the first condition the claims do not meet, or ``None``."""
    for ref, required in conditions:
        value = ref.resolve(claims)
        if isinstance(value, list):
            if not any(_matches(item, required) for item in value):
                return ref
        elif not _matches(value, required):
            return ref
    return None
