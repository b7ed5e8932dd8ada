"""The example data API's filter rule (examples/frontend/data_api.py), on its real SQLite table:
the gateway's fixed params always apply, a client's query never widens them, and a header it
cannot apply in full is refused rather than partly applied."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from examples.frontend import data_api

ORGS = sorted({row[1] for row in data_api.SEED})
client_args = st.dictionaries(
    st.sampled_from([*data_api.COLUMNS, "limit"]),
    st.one_of(st.sampled_from(["7", "42", "1", "shipped", "Widget", "0", "-1"]), st.text()),
    max_size=4,
)


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("orders") / "orders.sqlite3"
    data_api.create_database(path)
    return path


@settings(max_examples=200, deadline=None)
@given(org=st.sampled_from(ORGS), args=client_args)
def test_client_arguments_never_leave_the_fixed_org(
    db: Path, org: int, args: dict[str, str]
) -> None:
    fixed = data_api.parse_fixed_params(json.dumps({"org_id": org}))
    rows = data_api.query(db, fixed, args)
    assert {row["org_id"] for row in rows} <= {org}
    assert {row["id"] for row in rows} <= set(data_api.seeded_ids(org))


def test_client_org_id_is_ignored_and_other_columns_still_filter(db: Path) -> None:
    fixed = data_api.parse_fixed_params('{"org_id": 42}')
    assert [r["id"] for r in data_api.query(db, fixed, {"org_id": "7"})] == [1, 2, 3]
    assert [r["id"] for r in data_api.query(db, fixed, {"status": "shipped"})] == [1, 3]
    assert [r["id"] for r in data_api.query(db, fixed, {"limit": "1"})] == [1]


def test_a_list_fixed_param_means_in(db: Path) -> None:
    fixed = data_api.parse_fixed_params('{"org_id": [7, 42]}')
    assert [r["id"] for r in data_api.query(db, fixed, {})] == [1, 2, 3, 4, 5]


@pytest.mark.parametrize(
    "header",
    [
        None,
        "not json",
        "[42]",
        '{"tenant": "acme"}',
        '{"org_id": []}',
        '{"org_id": {"claim": "org_id"}}',
        '{"org_id": [42, [7]]}',
    ],
)
def test_a_header_that_cannot_be_applied_in_full_is_refused(header: str | None) -> None:
    with pytest.raises(data_api.Refused):
        data_api.parse_fixed_params(header)
