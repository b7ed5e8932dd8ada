"""The scope of a forwarded request, read from its raw target (authsvc/verify/uri.py, DESIGN §8).

The property tests model what upstreams do to a path before they route it (RFC 3986 §5.2.4
dot-segment removal, decoding before or after it, decoding twice, merging slashes, Java's
``;params``, backslashes as slashes) and check that none of them reaches another pipe than
the one whose scope authsvc required.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from urllib.parse import quote, unquote

import pytest
from hypothesis import HealthCheck, find, given, settings
from hypothesis import strategies as st

from authsvc.scopes import Scope
from authsvc.verify.uri import (
    MAX_PATH_LENGTH,
    RefusalReason,
    Refused,
    query_token,
    required_scope,
    uri_after_prefix,
)

# --- what the finding reported, and its variants -------------------------------------------

ATTACKS: list[tuple[str, RefusalReason]] = [
    ("/v0/pipes/public.json%3F/../secret.json", "DOT_SEGMENT"),
    ("/v0/pipes/public.json%3f/../secret.json", "DOT_SEGMENT"),
    ("/v0/pipes/public.json%23/../secret.json", "DOT_SEGMENT"),
    ("/v0/pipes/public.json%3F/%2e%2e/secret.json", "DOT_SEGMENT"),
    ("/v0/pipes/public%252Ejson", "ENCODED_DELIMITER"),
    ("/v0/pipes/public%252ejson%252F..%252Fsecret.json", "ENCODED_DELIMITER"),
    ("/v0/pipes/secret.json%3F.json", "ENCODED_DELIMITER"),
    ("/v0/pipes/secret.json%3f.json", "ENCODED_DELIMITER"),
    ("/v0/pipes/secret.json%23.json", "ENCODED_DELIMITER"),
    ("/v0/pipes/secret%2Ejson", "ENCODED_DELIMITER"),
    ("/v0/pipes/secret%2ejson.json", "ENCODED_DELIMITER"),
    ("/v0/pipes/public.json%2F..%2Fsecret.json", "ENCODED_DELIMITER"),
    ("/v0/pipes/public.json%2f..%2fsecret.json", "ENCODED_DELIMITER"),
    ("/v0/pipes/public.json%5C..%5Csecret.json", "ENCODED_DELIMITER"),
    ("/v0/pipes/public.json%5c..%5csecret.json", "ENCODED_DELIMITER"),
    ("/v0/pipes/secret%25.json", "ENCODED_DELIMITER"),
    ("/v0/pipes/public.json/../secret.json", "DOT_SEGMENT"),
    ("/v0/pipes/public.json/./../secret.json", "DOT_SEGMENT"),
    ("/v0/pipes/%2e%2e/pipes/secret.json", "DOT_SEGMENT"),
    ("/v0/pipes/%2E%2E/pipes/secret.json", "DOT_SEGMENT"),
    ("/v0/pipes/.%2e/pipes/secret.json", "DOT_SEGMENT"),
    ("/v0/pipes/%2e/secret.json", "DOT_SEGMENT"),
    ("/v0/pipes/public.json/..;/secret.json", "DOT_SEGMENT"),
    ("/v0/pipes/public.json/..;x=1/secret.json", "DOT_SEGMENT"),
    ("/v0/other/../pipes/secret.json", "DOT_SEGMENT"),
    ("/v0/pipes/public.json/..", "DOT_SEGMENT"),
    ("//v0/pipes/secret.json", "EMPTY_SEGMENT"),
    ("/v0//pipes/secret.json", "EMPTY_SEGMENT"),
    ("/v0/pipes//secret.json", "EMPTY_SEGMENT"),
    ("//evil.example/v0/pipes/public.json", "EMPTY_SEGMENT"),
    ("/v0/pipes/public.json\\..\\secret.json", "INVALID_CHARACTER"),
    ("/v0/pipes/secret.json\x00.json", "INVALID_CHARACTER"),
    ("/v0/pipes/secret.json%00.json", "ENCODED_CONTROL"),
    ("/v0/pipes/secret%0a.json", "ENCODED_CONTROL"),
    ("/v0/pipes/secret%7F.json", "ENCODED_CONTROL"),
    ("/v0/pipes/secret.json#/../public.json", "INVALID_CHARACTER"),
    ("/v0/pipes/sécret.json", "INVALID_CHARACTER"),
    ("/v0/pipes/secret\u2024json", "INVALID_CHARACTER"),
    ("/v0/pipes/s%C3%A9cret.json", "INVALID_PIPE_NAME"),
    ("/v0/pipes/secret .json", "INVALID_CHARACTER"),
    ("/v0/pipes/{secret}.json", "INVALID_CHARACTER"),
    ("/v0/pipes/secret%zz.json", "INVALID_ESCAPE"),
    ("/v0/pipes/secret%4.json", "INVALID_ESCAPE"),
    ("/v0/pipes/secret.json%", "INVALID_ESCAPE"),
    ("/v0/pipes/public.secret.json", "INVALID_PIPE_NAME"),
    ("/v0/pipes/*.json", "INVALID_PIPE_NAME"),
    ("/v0/pipes/%2A.json", "INVALID_PIPE_NAME"),
    ("/v0/pipes/.json", "INVALID_PIPE_NAME"),
    ("/v0/pipes/sec;ret.json", "INVALID_PIPE_NAME"),
    ("/v0/pipes/sec%3Bret.json", "INVALID_PIPE_NAME"),
    ("/v0/pipes/sec:ret.json", "INVALID_PIPE_NAME"),
    ("/v0/pipes/" + "a" * 129 + ".json", "INVALID_PIPE_NAME"),
    ("/v0/pipes/" + "a" * MAX_PATH_LENGTH + ".json", "TOO_LONG"),
    ("http://evil.example/v0/pipes/public.json", "NOT_ORIGIN_FORM"),
    ("v0/pipes/public.json", "NOT_ORIGIN_FORM"),
    ("*", "NOT_ORIGIN_FORM"),
]


@pytest.mark.parametrize(("uri", "reason"), ATTACKS)
def test_ambiguous_or_malformed_path_is_refused_with_its_reason(
    uri: str, reason: RefusalReason
) -> None:
    assert required_scope(uri) == Refused(reason)


@pytest.mark.parametrize(
    ("uri", "scope"),
    [
        ("/v0/pipes/top_10.json", "PIPES:READ:top_10"),
        ("/v0/pipes/top_10.csv?token=x&q=1", "PIPES:READ:top_10"),
        ("/v0/pipes/top-10.ndjson", "PIPES:READ:top-10"),
        ("/v0/pipes/top%5F10.parquet", "PIPES:READ:top_10"),
        ("/v0/pipes/%74op_10.json", "PIPES:READ:top_10"),
        ("/v0/pipes/public.json?/../secret.json", "PIPES:READ:public"),
        ("/v0/pipes/public.json?x=%2e%2e/%2Fsecret#frag", "PIPES:READ:public"),
        ("/v0/pipes/" + "a" * 128 + ".json", "PIPES:READ:" + "a" * 128),
    ],
)
def test_pipe_path_maps_to_pipes_read_of_its_name(uri: str, scope: str) -> None:
    found = required_scope(uri)
    assert isinstance(found, Scope)
    assert str(found) == scope


@pytest.mark.parametrize(
    "uri",
    [
        "",
        "?token=x",
        "/",
        "/v0/sql?q=select+1",
        "/v0/pipes/top_10",
        "/v0/pipes/",
        "/v0/pipes",
        "/v0/pipes/top_10.json/",
        "/v0/pipes/top_10.json/data",
        "/v0/pipes/top_10.json;x",
        "/v0/pipes/top_10.js%6Fn",
        "/v0/%70ipes/top_10.json",
        "/V0/PIPES/top_10.json",
        "/v1/authz/v0/pipes/top_10.json",
    ],
)
def test_well_formed_path_that_names_no_pipe_has_no_scope(uri: str) -> None:
    assert required_scope(uri) is None


def test_refusal_message_is_fixed_and_never_echoes_the_target() -> None:
    refused = required_scope("/v0/pipes/a%zz.json?token=eyJ.secret.sig")
    assert isinstance(refused, Refused)
    assert refused.reason == "INVALID_ESCAPE"
    assert "secret" not in refused.message
    assert "%zz" not in refused.message
    assert refused.message == Refused("INVALID_ESCAPE").message


# --- upstream normalisations -----------------------------------------------------------------


def remove_dot_segments(path: str) -> str:
    """RFC 3986 §5.2.4, step by step (buffer of output segments, each with its leading '/')."""
    rest, out = path, []
    while rest:
        if rest.startswith("../"):
            rest = rest[3:]
        elif rest.startswith("./") or rest.startswith("/./"):
            rest = rest[2:]
        elif rest == "/.":
            rest = "/"
        elif rest.startswith("/../"):
            rest = rest[3:]
            out = out[:-1]
        elif rest == "/..":
            rest = "/"
            out = out[:-1]
        elif rest in (".", ".."):
            rest = ""
        else:
            end = rest.find("/", 1 if rest.startswith("/") else 0)
            end = len(rest) if end < 0 else end
            out.append(rest[:end])
            rest = rest[end:]
    return "".join(out)


def cut(path: str) -> str:
    """What a server that re-parses a decoded path keeps: up to a '?' or '#' it now sees."""
    return re.split(r"[?#]", path, maxsplit=1)[0]


def merge_slashes(path: str) -> str:
    return re.sub("/+", "/", path)


def drop_params(path: str) -> str:
    return "/".join(segment.partition(";")[0] for segment in path.split("/"))


def route(path: str) -> str | None:
    """The pipe a Tinybird-style data API serves for an already-normalised path."""
    m = re.fullmatch(r"/v0/pipes/([^/]+)\.([A-Za-z0-9]+)", path)
    return m.group(1) if m else None


def route_first_dot(path: str) -> str | None:
    """A router that ends the name at its first dot (``a.b.json`` is pipe ``a``)."""
    m = re.fullmatch(r"/v0/pipes/([^/.]+)\.[^/]+", path)
    return m.group(1) if m else None


def routed_raw(path: str) -> str | None:
    name = route(path)
    return None if name is None else unquote(name)


UPSTREAMS: dict[str, Callable[[str], str | None]] = {
    "as is, name decoded": routed_raw,
    "dot-segments removed, then decoded": lambda p: routed_raw(remove_dot_segments(p)),
    "decoded, then dot-segments removed": lambda p: route(remove_dot_segments(cut(unquote(p)))),
    "decoded without re-parsing": lambda p: route(remove_dot_segments(unquote(p))),
    "decoded twice": lambda p: route(remove_dot_segments(cut(unquote(unquote(p))))),
    "slashes merged first": lambda p: routed_raw(remove_dot_segments(merge_slashes(p))),
    "slashes merged last": lambda p: routed_raw(merge_slashes(remove_dot_segments(p))),
    "decoded, slashes merged": lambda p: route(merge_slashes(remove_dot_segments(cut(unquote(p))))),
    "java path parameters dropped": lambda p: routed_raw(remove_dot_segments(drop_params(p))),
    "name ends at the first dot": lambda p: route_first_dot(remove_dot_segments(cut(unquote(p)))),
    "backslash is a slash": lambda p: route(
        remove_dot_segments(cut(unquote(p)).replace("\\", "/"))
    ),
}

FREE_PIECES = [
    "/", "//", ".", "..", "./", "../", "/..", "/.",
    "%2e", "%2E", "%2e%2e", "%2f", "%2F", "%3f", "%3F", "%23", "%25", "%252e", "%252F",
    "%5c", "%5C", "\\", "?", "#", ";", ";x=1", "%3B",
    "v0", "pipes", "public", "secret", ".json", "json", ".csv",
    "%5F", "_", "-", "a", "%41", "%61", "%00", "%7f", "%zz", "%", "é", "\x00", " ", "*", ":", "+",
]  # fmt: skip
FREE_PREFIXES = ["", "/", "/v0/", "/v0/pipes/", "/v0/pipes/public", "/v0/pipes/public.json"]
# Weighted towards what maps to a scope, so that the property below is rarely vacuous.
LEADS = ["/v0/pipes/"] * 6 + ["//v0/pipes/", "/v0/x/../pipes/", "/v0/pipes/./", "/v0/%70ipes/"]
SAFE_NAME_PIECES = ["public", "secret", "a", "_", "-", "%41", "%61", "%5F", "%5f", "%2D"]
RISKY_NAME_PIECES = [
    "%2e", "%2F", "%3F", "%23", "%25", "%252e", ".", ";", "/", "..", "%00", "\\", "*",
]  # fmt: skip
NAME_PIECES = SAFE_NAME_PIECES * 4 + RISKY_NAME_PIECES
FORMATS = ["json", "csv", "JSON", "js%6Fn"]
TAILS = [
    "?", "?", "?q=1", "?/../secret.json", "?token=t", "#", "/", "/..", "/../secret.json", "%3F",
    "%3F/../secret.json", "%23/../secret.json", ";x", "%2F..%2Fsecret.json", "/./",
]  # fmt: skip

free_paths = st.builds(
    lambda prefix, pieces: prefix + "".join(pieces),
    st.sampled_from(FREE_PREFIXES),
    st.lists(st.sampled_from(FREE_PIECES), max_size=10),
)
pipe_paths = st.builds(
    lambda lead, name, fmt, tail: f"{lead}{''.join(name)}.{fmt}{''.join(tail)}",
    st.sampled_from(LEADS),
    st.lists(st.sampled_from(NAME_PIECES), min_size=1, max_size=5),
    st.sampled_from(FORMATS),
    st.lists(st.sampled_from(TAILS), max_size=2),
)
paths = st.one_of(free_paths, pipe_paths)


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(paths)
def test_no_upstream_normalisation_reaches_another_pipe_than_the_scope(uri: str) -> None:
    found = required_scope(uri)
    if not isinstance(found, Scope):
        return
    path = uri.partition("?")[0]
    for upstream, serve in UPSTREAMS.items():
        served = serve(path)
        assert served in (None, found.resource), (upstream, uri, served)


def test_path_generator_reaches_scoped_paths_with_escapes_and_queries() -> None:
    def scoped_with_escape_and_query(uri: str) -> bool:
        path, has_query, _ = uri.partition("?")
        return isinstance(required_scope(uri), Scope) and "%" in path and bool(has_query)

    assert scoped_with_escape_and_query(find(paths, scoped_with_escape_and_query))


names = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_\-]{0,127}", fullmatch=True)


@settings(max_examples=500, deadline=None)
@given(names, st.data())
def test_canonical_pipe_url_of_a_name_round_trips_through_every_upstream(
    name: str, data: st.DataObject
) -> None:
    encoded = ""
    for c in name:
        escape = f"%{ord(c):02X}"
        if data.draw(st.booleans()):
            encoded += escape if data.draw(st.booleans()) else escape.lower()
        else:
            encoded += c
    for quoted in (quote(name, safe=""), encoded):
        uri = f"/v0/pipes/{quoted}.json"
        assert required_scope(uri) == Scope("PIPES", "READ", name)
        assert remove_dot_segments(uri) == uri
        for serve in UPSTREAMS.values():
            assert serve(uri) == name


@settings(max_examples=1000, deadline=None)
@given(st.one_of(st.text(), paths, st.text(alphabet="/.%2eEfF3?#\\;a", max_size=40)))
def test_required_scope_and_query_token_return_for_any_input(uri: str) -> None:
    assert isinstance(required_scope(uri), Scope | Refused | None)
    assert isinstance(query_token(uri), str | None)


# --- ?token= -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("uri", "token"),
    [
        ("/v0/pipes/a.json?token=eyJ.a.b", "eyJ.a.b"),
        ("/v0/pipes/a.json?q=1&token=eyJ.a.b&x=2", "eyJ.a.b"),
        ("/v0/pipes/a.json?token=a%2Bb", "a+b"),
        ("/v0/pipes/a.json?token=a%252B", "a%2B"),
        ("/v0/pipes/a.json?to%6Ben=t", "t"),
        ("/v0/pipes/a.json?token=t#frag", "t"),
        ("/v0/pipes/a.json?token=t1&token=t2", None),
        ("/v0/pipes/a.json?token=", None),
        ("/v0/pipes/a.json?token", None),
        ("/v0/pipes/a.json?tokens=t", None),
        ("/v0/pipes/a.json", None),
        ("/v0/pipes/a.json#?token=t", None),
        ("", None),
    ],
)
def test_query_token_is_the_single_token_parameter_decoded_once(
    uri: str, token: str | None
) -> None:
    assert query_token(uri) == token


# --- Envoy's path_prefix form ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw_path", "query", "uri"),
    [
        (b"/v1/authz/v0/pipes/a.json", b"", "/v0/pipes/a.json"),
        (b"/v1/authz/v0/pipes/a.json", b"token=t", "/v0/pipes/a.json?token=t"),
        (b"/v1/authz/v0/pipes/a.json%3F/../b.json", b"", "/v0/pipes/a.json%3F/../b.json"),
        (b"/v1/authz//v0/pipes/a.json", b"", "//v0/pipes/a.json"),
        (b"/v1/authz/v0/pipes/\xc3\xa9.json", b"", "/v0/pipes/\xc3\xa9.json"),
        (b"/v1/authz", b"", None),
        (b"/v1/authzz/v0/pipes/a.json", b"", None),
        (b"/v0/pipes/a.json", b"", None),
    ],
)
def test_uri_after_prefix_keeps_the_target_undecoded(
    raw_path: bytes, query: bytes, uri: str | None
) -> None:
    assert uri_after_prefix(raw_path, query, "/v1/authz") == uri


def test_uri_after_prefix_hands_ambiguous_targets_to_a_refusal() -> None:
    attack = uri_after_prefix(b"/v1/authz/v0/pipes/public.json%3F/../secret.json", b"", "/v1/authz")
    assert attack is not None
    assert required_scope(attack) == Refused("DOT_SEGMENT")
    non_ascii = uri_after_prefix(b"/v1/authz/v0/pipes/\xc3\xa9.json", b"", "/v1/authz")
    assert non_ascii is not None
    assert required_scope(non_ascii) == Refused("INVALID_CHARACTER")
