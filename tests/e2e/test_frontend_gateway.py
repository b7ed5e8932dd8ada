"""The example's gateway path without a browser: real ``authsvc serve``, real nginx (the example's
CORS layer in front of the shipped ``deploy/nginx/authsvc.conf``) and the example's data API,
started by the example's own functions. Data tokens come from ``POST /v1/tokens`` (a key of
the tenant with ``fixed_params``), so this part does not depend on the trusted issuers.

What it pins: rows are filtered by the token's ``org_id`` whatever the client asks; the CORS
layer answers preflight for the page origin only and puts ``Access-Control-Allow-Origin`` on
the gateway's 401 (without it a page could not see the 401 and the token source could not
retry); a client's ``X-Authsvc-*`` headers still do not reach the data API through the layer; a
revoked subject's token is refused.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from examples.frontend import data_api, gateway, processes, stack

pytestmark = pytest.mark.slow
PAGE_ORIGIN = "http://127.0.0.1:1"  # an origin only; nothing listens there
OTHER_ORIGIN = "http://127.0.0.1:2"


@dataclass(frozen=True)
class Gateway:
    authsvc: str
    orders: str
    data_api: str
    admin_key: str
    minter: str


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    if gateway.find_nginx() is None:
        if os.environ.get("CI", "").lower() not in ("", "0", "false"):
            pytest.fail("nginx is not installed (scripts/bootstrap installs nginx-light)")
        pytest.skip("nginx is not installed (apt-get install nginx-light)")
    workdir = tmp_path_factory.mktemp("frontend-gateway")
    with ExitStack() as started:
        authsvc = stack.start_authsvc(started, workdir, processes.free_port())
        tenant = stack.create_tenant(workdir, authsvc)
        minter = httpx.post(
            f"{authsvc}/v1/keys",
            json={"name": "minter", "scopes": ["TOKENS:CREATE", "PIPES:READ:orders"]},
            headers={"Authorization": f"Bearer {tenant.admin_key}"},
        )
        assert minter.status_code == 201, minter.text
        data = stack.start_data_api(started, workdir, processes.free_port())
        url = stack.start_gateway(
            started,
            workdir,
            processes.free_port(),
            authsvc=authsvc,
            data_api_url=data,
            gateway_key=tenant.gateway_key,
            page_origin=PAGE_ORIGIN,
        )
        yield Gateway(
            authsvc, f"{url}/v0/pipes/orders.json", data, tenant.admin_key, minter.json()["key"]
        )


def data_token(gw: Gateway, org_id: int, sub: str) -> str:
    r = httpx.post(
        f"{gw.authsvc}/v1/tokens",
        json={
            "scopes": [{"scope": "PIPES:READ:orders", "fixed_params": {"org_id": org_id}}],
            "sub": sub,
            "ttl_s": 300,
        },
        headers={"Authorization": f"Bearer {gw.minter}"},
    )
    assert r.status_code == 201, r.text
    return str(r.json()["token"])


def get(url: str, token: str | None = None, **headers: str) -> httpx.Response:
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return httpx.get(url, headers={"Origin": PAGE_ORIGIN, **headers}, timeout=10)


def ids(response: httpx.Response) -> list[tuple[int, int]]:
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return [(row["id"], row["org_id"]) for row in body["data"]]


def test_rows_follow_the_tokens_org_id_whatever_the_client_asks(gw: Gateway) -> None:
    token = data_token(gw, 42, "user-42")
    own = [(i, 42) for i in data_api.seeded_ids(42)]
    assert ids(get(gw.orders, token)) == own
    assert ids(get(f"{gw.orders}?org_id=7", token)) == own
    assert ids(get(f"{gw.orders}?org_id=7&org_id=42", token)) == own
    forged = get(gw.orders, token, **{"X-Authsvc-Fixed-Params": '{"org_id": 7}'})
    assert ids(forged) == own
    assert ids(get(f"{gw.orders}?status=shipped", token)) == [(1, 42), (3, 42)]
    assert ids(get(gw.orders, data_token(gw, 7, "user-7"))) == [
        (i, 7) for i in data_api.seeded_ids(7)
    ]


def test_preflight_is_answered_for_the_page_origin_only(gw: Gateway) -> None:
    ask = {
        "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "authorization",
    }
    allowed = httpx.options(gw.orders, headers={"Origin": PAGE_ORIGIN, **ask})
    assert allowed.status_code == 204
    assert allowed.headers["Access-Control-Allow-Origin"] == PAGE_ORIGIN
    assert "Authorization" in allowed.headers["Access-Control-Allow-Headers"]
    other = httpx.options(gw.orders, headers={"Origin": OTHER_ORIGIN, **ask})
    assert "Access-Control-Allow-Origin" not in other.headers


def test_answers_carry_cors_for_the_page_origin_the_401_included(gw: Gateway) -> None:
    ok = get(gw.orders, data_token(gw, 42, "user-cors"))
    assert ok.headers["Access-Control-Allow-Origin"] == PAGE_ORIGIN
    assert ok.headers["Vary"] == "Origin"
    refused = get(gw.orders)
    assert refused.status_code == 401
    assert refused.headers["Access-Control-Allow-Origin"] == PAGE_ORIGIN
    assert "WWW-Authenticate" in refused.headers["Access-Control-Expose-Headers"]
    assert 'error="invalid_token"' in refused.headers["WWW-Authenticate"]
    elsewhere = httpx.get(gw.orders, headers={"Origin": OTHER_ORIGIN})
    assert "Access-Control-Allow-Origin" not in elsewhere.headers


def test_a_revoked_subjects_token_gets_401_and_a_later_one_works(gw: Gateway) -> None:
    token = data_token(gw, 42, "user-revoked")
    assert get(gw.orders, token).status_code == 200
    r = httpx.post(
        f"{gw.authsvc}/v1/tokens/revoke",
        json={"sub": "user-revoked"},
        headers={"Authorization": f"Bearer {gw.admin_key}"},
    )
    assert r.status_code == 200, r.text
    assert get(gw.orders, token).status_code == 401
    assert get(gw.orders, data_token(gw, 42, "user-revoked")).status_code == 200


def test_the_data_api_refuses_a_request_that_did_not_come_through_the_gateway(
    gw: Gateway,
) -> None:
    r = httpx.get(f"{gw.data_api}/v0/pipes/orders.json?org_id=42")
    assert r.status_code == 403
    assert r.json()["code"] == "FORBIDDEN"
