"""Refuse JSON bodies that name a member twice.

msgspec (like most parsers) lets the last duplicate win, while other parsers keep the first: a
proxy or audit tool in front of authsvc could read ``{"scopes": ["X"], "scopes": ["ADMIN"]}``
as granting ``X`` while authsvc grants ``ADMIN``. A body with a duplicated member is therefore a
400 ``DUPLICATE_MEMBER`` before any handler uses it: :func:`reject_duplicate_members` runs before
every handler that lets Litestar decode its body, and :func:`decode_strict` is the one-pass
decoder of handlers that decode their own (``POST /v1/verify``), with the same check.
"""

from __future__ import annotations

import json
from typing import Any

import msgspec
from litestar import Request

from authsvc.errors import Code, InvalidRequest

SELF_DECODED = frozenset({"/v1/verify"})


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    names = [name for name, _ in pairs]
    if len(set(names)) != len(names):
        raise InvalidRequest(
            "A JSON object names the same member twice.", code=Code.DUPLICATE_MEMBER
        )
    return dict(pairs)


def check_members(body: bytes) -> None:
    """Raise ``DUPLICATE_MEMBER`` if a JSON object in ``body`` names a member twice; anything
    that is not JSON is left to the handler's own decoding."""
    if b"{" not in body:
        return
    try:
        json.loads(body, object_pairs_hook=_no_duplicates)
    except InvalidRequest:
        raise
    except (ValueError, RecursionError):
        return


def decode_strict(body: bytes, type_: type[msgspec.Struct]) -> msgspec.Struct:
    """The member check, then strict msgspec decoding (no coercion: ``"1"`` is not an
    integer): a duplicated member is ``DUPLICATE_MEMBER`` here as on every other route."""
    check_members(body)
    try:
        value = msgspec.json.decode(body, type=type_, strict=True)
    except msgspec.ValidationError as exc:
        raise InvalidRequest(f"Invalid request: {exc}") from None
    except msgspec.DecodeError:
        raise InvalidRequest("The request body is not valid JSON.") from None
    return value


async def reject_duplicate_members(request: Request[Any, Any, Any]) -> None:
    scope = request.scope
    if scope["method"] not in ("POST", "PUT", "PATCH") or scope["path"] in SELF_DECODED:
        return
    check_members(await request.body())
