"""Reading the bearer credential of a request (RFC 6750 §2.1). No lookup here: the check
pipeline (:mod:`authsvc.verify.service`) decides what the credential is worth."""

from __future__ import annotations

from typing import Any

from litestar import Request


def bearer_token(request: Request[Any, Any, Any]) -> str | None:
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()
