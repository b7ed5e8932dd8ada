"""The scope a forwarded request needs, read from its raw request target (DESIGN §8).

A gateway (nginx ``$request_uri``, Traefik ``X-Forwarded-Uri``, Envoy's ``path_prefix`` path)
hands authsvc the request target as the client sent it. The data API behind the gateway may
decode it, remove dot-segments, merge slashes or strip ``;`` parameters before it routes, so
authsvc must never derive a scope from a reading of the path that an upstream could resolve
to another pipe. :func:`required_scope` therefore works on the *undecoded* path and refuses
anything whose meaning depends on who decodes it:

1. The query is split off at the first raw ``?`` and the path must be origin-form (``/`` first).
2. Every character of the path is a URI path character (``pchar`` or ``/``, RFC 3986 §3.3);
   every ``%`` starts a well-formed escape (§2.1). Anything else — space, controls, NUL, ``\\``,
   a raw ``#``, non-ASCII — is refused.
3. No dot-segment (``.`` / ``..``, also percent-encoded, also with a ``;`` parameter as Java
   servers read them): RFC 3986 §5.2.4 lets any normaliser rewrite the path around one.
4. No empty segment (``//``): a gateway or upstream that merges slashes (nginx's default
   ``merge_slashes``, Envoy's option) forwards another path than the one checked, and a
   leading ``//`` reads as an authority to URI parsers (§4.2). No client needs one.
5. No percent-encoded ``/ ? # % . \\`` nor control octet anywhere in the path: an upstream that
   decodes before it splits or normalises (or decodes twice) sees other delimiters than authsvc.
6. Only ``/v0/pipes/<name>.<format>`` (literal prefix, one segment, raw alphanumeric format)
   maps to a scope, ``PIPES:READ:<name>``; the name is percent-decoded exactly once, after the
   path was split (§2.4), and must satisfy the scope resource grammar. A pipe name is never the
   wildcard ``*`` and holds no ``.``: with two dots in the segment, an upstream that splits name
   and format at the first one would serve another pipe than the one checked.

Anything else that is well-formed is "no scope" (``None``), which the caller answers with 403
as well, with a different reason. Refusals are values (:class:`Refused`), never exceptions:
these functions return for every input string. They are pure: no I/O, no framework.

Trade-off: a few paths some upstream would accept (``//v0/...``, ``%2E`` in a name) are
refused although they might be harmless; clients never need them, and a refusal costs a 403
where a wrong reading costs another tenant's data.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal
from urllib.parse import unquote_plus

from authsvc.errors import InvalidScope
from authsvc.scopes import Scope, parse_scope

RefusalReason = Literal[
    "TOO_LONG",
    "NOT_ORIGIN_FORM",
    "INVALID_CHARACTER",
    "INVALID_ESCAPE",
    "DOT_SEGMENT",
    "EMPTY_SEGMENT",
    "ENCODED_DELIMITER",
    "ENCODED_CONTROL",
    "INVALID_PIPE_NAME",
]

MAX_PATH_LENGTH = 2048
PIPE_PREFIX = "/v0/pipes/"

_MESSAGES: dict[RefusalReason, str] = {
    "TOO_LONG": f"The request path is longer than {MAX_PATH_LENGTH} characters.",
    "NOT_ORIGIN_FORM": "The request target must be a path starting with '/'.",
    "INVALID_CHARACTER": "The request path holds a character a URI path cannot hold.",
    "INVALID_ESCAPE": "The request path holds a '%' that is not followed by two hex digits.",
    "DOT_SEGMENT": "The request path holds a '.' or '..' segment.",
    "EMPTY_SEGMENT": "The request path holds an empty segment ('//').",
    "ENCODED_DELIMITER": "The request path holds a percent-encoded / ? # % . or backslash.",
    "ENCODED_CONTROL": "The request path holds a percent-encoded control character.",
    "INVALID_PIPE_NAME": "The pipe name in the request path is not a valid resource name.",
}

# RFC 3986 §3.3: pchar = unreserved / pct-encoded / sub-delims / ":" / "@", plus the "/" separators.
_PATH_CHARS = re.compile(r"[A-Za-z0-9\-._~!$&'()*+,;=:@/%]*\Z")
_ESCAPE = re.compile(r"%(?P<hex>[0-9A-Fa-f]{2})")
_FORMAT = re.compile(r"[A-Za-z0-9]+\Z")
_ENCODED_DELIMITERS = frozenset(b"/?#%.\\")
_DOT_SEGMENTS = frozenset({".", ".."})


@dataclass(frozen=True, slots=True)
class Refused:
    """The request target is refused (403): reading a scope from it would be ambiguous."""

    reason: RefusalReason

    @property
    def message(self) -> str:
        """A fixed sentence for the reason; never echoes the target (it may carry a token)."""
        return _MESSAGES[self.reason]


def required_scope(raw_uri: str) -> Scope | Refused | None:
    """The scope the raw request target ``raw_uri`` (path, optionally ``?query``) needs.

    ``Scope`` for ``/v0/pipes/<name>.<format>``; :class:`Refused` when the path is malformed or
    ambiguous (rules in the module docstring); ``None`` when it is well-formed but no pipe path
    (or empty). Never raises.
    """
    path = raw_uri.partition("?")[0]
    if not path:
        return None
    refusal = _refusal(path)
    if refusal is not None:
        return refusal
    return _pipe_scope(path)


def query_token(raw_uri: str) -> str | None:
    """The ``token`` query parameter of the raw request target, decoded once.

    ``None`` when there is no query, no ``token``, an empty one, or more than one (a duplicated
    parameter is ambiguous: frameworks disagree on which wins). Never raises.
    """
    # RFC 3986 §3.4-3.5: the query runs from the first "?" to the first "#", which ends it.
    _, has_query, query = raw_uri.partition("#")[0].partition("?")
    if not has_query:
        return None
    values = [
        unquote_plus(value)
        for name, _, value in (pair.partition("=") for pair in query.split("&"))
        if unquote_plus(name) == "token"
    ]
    if len(values) != 1 or not values[0]:
        return None
    return values[0]


def uri_after_prefix(raw_path: bytes, query_string: bytes, prefix: str) -> str | None:
    """The raw request target a gateway appended to ``prefix`` (Envoy ``path_prefix``).

    ``raw_path`` and ``query_string`` are the ASGI scope's undecoded bytes. ``None`` when the
    path is not ``prefix`` followed by ``/``. Bytes are mapped one to one (latin-1), so a
    non-ASCII octet stays non-ASCII and :func:`required_scope` refuses it.
    """
    head = prefix.encode("ascii")
    if not raw_path.startswith(head + b"/"):
        return None
    target = raw_path[len(head) :].decode("latin-1")
    if query_string:
        target += "?" + query_string.decode("latin-1")
    return target


def _refusal(path: str) -> Refused | None:
    if len(path) > MAX_PATH_LENGTH:
        return Refused("TOO_LONG")
    if not path.startswith("/"):
        return Refused("NOT_ORIGIN_FORM")
    if not _PATH_CHARS.match(path):
        return Refused("INVALID_CHARACTER")
    # RFC 3986 §2.1: a "%" always introduces two hex digits.
    if path.count("%") != len(_ESCAPE.findall(path)):
        return Refused("INVALID_ESCAPE")
    # RFC 3986 §3.3 / §5.2.4: "." and ".." segments are what dot-segment removal rewrites; an
    # encoded dot (§2.3, unreserved) is the same segment to a normaliser, and Java servers drop
    # ";params" before they resolve one.
    for segment in path.split("/")[1:]:
        bare = _ESCAPE.sub(_decoded_dot, segment.partition(";")[0])
        if bare in _DOT_SEGMENTS:
            return Refused("DOT_SEGMENT")
    if "//" in path:
        return Refused("EMPTY_SEGMENT")
    for escape in _ESCAPE.finditer(path):
        octet = int(escape.group("hex"), 16)
        if octet in _ENCODED_DELIMITERS:
            return Refused("ENCODED_DELIMITER")
        if octet < 0x20 or octet == 0x7F:
            return Refused("ENCODED_CONTROL")
    return None


def _decoded_dot(escape: re.Match[str]) -> str:
    return "." if escape.group("hex") in ("2e", "2E") else escape.group(0)


def _pipe_scope(path: str) -> Scope | Refused | None:
    if not path.startswith(PIPE_PREFIX):
        return None
    last = path[len(PIPE_PREFIX) :]
    if "/" in last:
        return None
    raw_name, dot, fmt = last.rpartition(".")
    if not dot or not _FORMAT.match(fmt):
        return None
    if "." in raw_name:
        return Refused("INVALID_PIPE_NAME")
    # RFC 3986 §2.4: decode once, and only now that the path is split into its parts.
    octets = _ESCAPE.sub(lambda m: chr(int(m.group("hex"), 16)), raw_name)
    if not octets or not octets.isascii() or octets == "*":
        return Refused("INVALID_PIPE_NAME")
    try:
        return parse_scope(f"PIPES:READ:{octets}")
    except InvalidScope:
        return Refused("INVALID_PIPE_NAME")
