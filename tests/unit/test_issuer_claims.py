"""Claim references (names and RFC 6901 JSON Pointers) and conditions on claims."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from authsvc.errors import InvalidRequest
from authsvc.issuers.claims import (
    MISSING,
    first_failed_condition,
    parse_claim_ref,
    parse_conditions,
)

# RFC 6901 §5: the example document and every pointer listed there (except "", which is
# the whole document and not a claim).
RFC6901_DOC: dict[str, Any] = {
    "foo": ["bar", "baz"],
    "": 0,
    "a/b": 1,
    "c%d": 2,
    "e^f": 3,
    "g|h": 4,
    "i\\j": 5,
    'k"l': 6,
    " ": 7,
    "m~n": 8,
}


@pytest.mark.parametrize(
    ("pointer", "value"),
    [
        ("/foo", ["bar", "baz"]),
        ("/foo/0", "bar"),
        ("/", 0),
        ("/a~1b", 1),
        ("/c%d", 2),
        ("/e^f", 3),
        ("/g|h", 4),
        ("/i\\j", 5),
        ('/k"l', 6),
        ("/ ", 7),
        ("/m~0n", 8),
    ],
)
def test_the_rfc6901_examples_evaluate_as_specified(pointer: str, value: Any) -> None:
    assert parse_claim_ref(pointer).resolve(RFC6901_DOC) == value


def test_escapes_are_decoded_tilde_one_first() -> None:
    doc = {"~1": "tilde-one", "/": "slash"}
    assert parse_claim_ref("/~01").resolve(doc) == "tilde-one"
    assert parse_claim_ref("/~1").resolve(doc) == "slash"


def test_a_namespaced_claim_is_reachable_by_name_and_by_pointer() -> None:
    claims = {"https://acme.com/org": "acme", "https:": {"": {"acme.com": {"org": "nested"}}}}
    assert parse_claim_ref("https://acme.com/org").resolve(claims) == "acme"
    assert parse_claim_ref("/https:~1~1acme.com~1org").resolve(claims) == "acme"
    assert parse_claim_ref("/https:/").resolve(claims) == {"acme.com": {"org": "nested"}}


def test_a_name_is_one_top_level_member_only() -> None:
    claims = {"org": {"id": 7}, "org.id": 9}
    assert parse_claim_ref("org.id").resolve(claims) == 9
    assert parse_claim_ref("/org/id").resolve(claims) == 7
    assert parse_claim_ref("id").resolve(claims) is MISSING


@pytest.mark.parametrize(
    ("pointer", "expected"),
    [
        ("/groups/0", "a"),
        ("/groups/2", "c"),
        ("/groups/3", MISSING),
        ("/groups/-", MISSING),
        ("/groups/01", MISSING),
        ("/groups/-1", MISSING),
        ("/groups/+1", MISSING),
        ("/groups/ 1", MISSING),
        ("/groups/1e0", MISSING),
        ("/groups/0/x", MISSING),
        ("/org/teams/1/id", 42),
        ("/org/missing", MISSING),
        ("/sub/0", MISSING),
        ("/nothing", MISSING),
        ("/flag", False),
        ("/none", None),
    ],
)
def test_pointers_into_arrays_and_objects(pointer: str, expected: Any) -> None:
    claims = {
        "groups": ["a", "b", "c"],
        "org": {"teams": [{"id": 1}, {"id": 42}]},
        "sub": "user",
        "flag": False,
        "none": None,
    }
    assert parse_claim_ref(pointer).resolve(claims) == expected


@pytest.mark.parametrize(
    "text",
    ["", None, 5, ["sub"], "/a~2b", "/a~", "/~", "x" * 257, "a\nb", "/a\x00", "/" + "/x" * 16],
)
def test_malformed_references_are_a_400(text: Any) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_claim_ref(text)
    assert caught.value.code == "INVALID_CLAIM_REF"


@given(st.lists(st.text(max_size=8), min_size=1, max_size=5), st.integers())
def test_any_path_escaped_into_a_pointer_finds_its_value(tokens: list[str], leaf: int) -> None:
    claims: Any = leaf
    for token in reversed(tokens):
        claims = {token: claims}
    pointer = "".join("/" + t.replace("~", "~0").replace("/", "~1") for t in tokens)
    try:
        ref = parse_claim_ref(pointer)
    except InvalidRequest:
        assert any(ord(c) < 0x20 or ord(c) == 0x7F for c in pointer) or len(pointer) > 256
        return
    assert ref.resolve(claims) == leaf


# --------------------------------------------------------------------------- conditions


@pytest.mark.parametrize(
    ("required", "value", "holds"),
    [
        (True, True, True),
        (True, 1, False),
        (True, "true", False),
        (False, False, True),
        (False, None, False),
        (1, 1, True),
        (1, 1.0, True),
        (1, True, False),
        (1, "1", False),
        (2.5, 2.5, True),
        ("admins", "admins", True),
        ("admins", "Admins", False),
        ("admins", ["staff", "admins"], True),
        ("admins", ["staff"], False),
        ("admins", [], False),
        ("admins", [["admins"]], False),
        ("admins", {"admins": True}, False),
        (True, [1, True], True),
        (1, [True], False),
    ],
)
def test_a_condition_holds_only_for_the_same_type_and_value(
    required: Any, value: Any, holds: bool
) -> None:
    conditions = parse_conditions({"c": required})
    assert (first_failed_condition({"c": value}, conditions) is None) is holds


def test_a_missing_claim_fails_its_condition() -> None:
    conditions = parse_conditions({"email_verified": True})
    failed = first_failed_condition({}, conditions)
    assert failed is not None
    assert failed.text == "email_verified"


def test_the_first_failing_condition_is_reported() -> None:
    conditions = parse_conditions({"a": 1, "/b/c": "x", "d": True})
    failed = first_failed_condition({"a": 1, "b": {"c": "y"}}, conditions)
    assert failed is not None
    assert failed.text == "/b/c"


@pytest.mark.parametrize(
    "conditions", [[], "x", {"a": None}, {"a": [1]}, {"a": {"b": 1}}, {"a": float("inf")}, {"": 1}]
)
def test_malformed_conditions_are_a_400(conditions: Any) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse_conditions(conditions)
    assert caught.value.code in {"INVALID_CONDITIONS", "INVALID_CLAIM_REF"}


def test_too_many_conditions_are_a_400() -> None:
    with pytest.raises(InvalidRequest):
        parse_conditions({f"c{i}": 1 for i in range(17)})


def test_no_conditions_means_none_to_check() -> None:
    assert parse_conditions(None) == ()
    assert first_failed_condition({}, ()) is None
