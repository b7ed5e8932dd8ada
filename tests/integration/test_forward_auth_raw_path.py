"""``/v1/authz`` reads the scope from the raw request target (DESIGN §8), for real: a real
``authsvc serve`` and requests sent byte for byte (httpx removes dot-segments from URLs, so it
cannot send these paths). Envoy's ``path_prefix`` form (``/v1/authz/<original path>``) is where
the finding was: the ASGI server decodes the path before routing, so only the raw path is safe.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.server import clean_env, cli, running_server

pytestmark = pytest.mark.slow


@dataclass
class Authz:
    base: str
    gateway: str
    public_reader: str


@pytest.fixture(scope="module")
def authz(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Authz]:
    tmp: Path = tmp_path_factory.mktemp("authz")
    env = clean_env({"AUTHSVC_DATA_DIR": str(tmp / "data")})
    with running_server(tmp, env) as (base, _proc):
        operator = json.loads(cli("init", "--json", cwd=tmp, env=env).stdout)["operator_key"]
        created = httpx.post(
            f"{base}/v1/tenants", json={"name": "Raw"}, headers=bearer(operator)
        ).json()
        admin = bearer(created["admin_key"]["key"])

        def key(scopes: list[str]) -> str:
            r = httpx.post(f"{base}/v1/keys", json={"name": "k", "scopes": scopes}, headers=admin)
            assert r.status_code == 201, r.text
            return str(r.json()["key"])

        yield Authz(base, key(["TOKENS:VERIFY"]), key(["PIPES:READ:public"]))


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def raw_get(base: str, target: str, headers: dict[str, str]) -> tuple[int, str]:
    """(status, X-Authsvc-Code) of one GET whose request target is sent as is."""
    host, port = base.removeprefix("http://").split(":")
    lines = [f"GET {target} HTTP/1.1", f"Host: {host}", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        head = sock.makefile("rb").read().split(b"\r\n\r\n", 1)[0].decode("latin-1")
    status_line, *fields = head.split("\r\n")
    code = next(
        (
            v.strip()
            for k, _, v in (f.partition(":") for f in fields)
            if k.lower() == "x-authsvc-code"
        ),
        "",
    )
    return int(status_line.split()[1]), code


ATTACKS = [
    "/v0/pipes/public.json%3F/../secret.json",
    "/v0/pipes/public.json%3f/../secret.json",
    "/v0/pipes/public.json%23/../secret.json",
    "/v0/pipes/public%252Ejson",
    "/v0/pipes/public.json%3F.json",
    "/v0/pipes/public.json%2F..%2Fsecret.json",
    "/v0/pipes/public.json/%2e%2e/secret.json",
    "//v0/pipes/public.json",
]


@pytest.mark.parametrize("form", ["path_prefix", "x-original-uri", "x-forwarded-uri"])
def test_authz_refuses_encoded_path_attacks_in_every_gateway_form(authz: Authz, form: str) -> None:
    def ask(target: str) -> tuple[int, str]:
        headers = {"X-Authsvc-Key": authz.gateway, **bearer(authz.public_reader)}
        if form == "path_prefix":
            return raw_get(authz.base, "/v1/authz" + target, headers)
        return raw_get(authz.base, "/v1/authz", {**headers, form: target})

    assert ask("/v0/pipes/public.json") == (200, "VALID")
    for target in ATTACKS:
        assert ask(target) == (403, "FORBIDDEN"), target
