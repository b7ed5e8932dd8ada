"""Interim: replaced by the raw-path module of the forward-auth work."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit

from authsvc.errors import InvalidScope
from authsvc.scopes import Scope, parse_scope

_PIPE = re.compile(r"/v0/pipes/(?P<name>[^/]+)\.(?P<fmt>[A-Za-z0-9]+)\Z")


@dataclass(frozen=True, slots=True)
class PathRefused:
    reason: str


def scope_from_uri(uri: str) -> Scope | PathRefused | None:
    m = _PIPE.match(unquote(urlsplit(uri).path))
    if m is None:
        return None
    try:
        return parse_scope(f"PIPES:READ:{m.group('name')}")
    except InvalidScope:
        return None


def query_token(uri: str) -> str | None:
    values = parse_qs(urlsplit(uri).query).get("token")
    return values[0] if values else None
