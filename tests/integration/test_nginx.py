"""The shipped nginx config (deploy/nginx/authsvc.conf), for real: nginx on a free port in front
of a tiny upstream, every request checked by a real `authsvc serve` (embedded mode).

Skipped only when nginx is not installed (Debian: nginx-light; scripts/bootstrap installs it).
The config needs the headers-more module (libnginx-mod-http-headers-more-filter, also installed
by scripts/bootstrap): without it `nginx -t` fails and so do these tests.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.server import clean_env, cli, free_port, require_binary, running_server

ROOT = Path(__file__).resolve().parents[2]
NGINX = shutil.which("nginx") or next(
    (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.access(p, os.X_OK)), None
)
HEADERS_MORE = next(
    (
        p
        for p in (
            "/usr/lib/nginx/modules/ngx_http_headers_more_filter_module.so",
            "/usr/lib64/nginx/modules/ngx_http_headers_more_filter_module.so",
            "/usr/share/nginx/modules/ngx_http_headers_more_filter_module.so",
        )
        if os.path.exists(p)
    ),
    None,
)
pytestmark = [
    pytest.mark.slow,
]


@pytest.fixture(autouse=True)
def _binary() -> None:
    require_binary(NGINX, "nginx", "apt-get install nginx-light")


@dataclass
class Upstream:
    """A data API stand-in that records what reached it."""

    port: int
    seen: list[dict[str, str]] = field(default_factory=list)
    raw: list[list[tuple[str, str]]] = field(default_factory=list)


def start_upstream() -> tuple[Upstream, ThreadingHTTPServer]:
    upstream = Upstream(free_port())

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            headers = {k.lower(): v for k, v in self.headers.items()}
            upstream.seen.append(headers | {"path": self.path})
            upstream.raw.append(list(self.headers.items()))
            body = json.dumps({"ok": True, "path": self.path}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", upstream.port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return upstream, server


def nginx_conf(tmp: Path, *, listen: int, authsvc: str, data_api: str, gateway_key: str) -> Path:
    template = (ROOT / "deploy/nginx/authsvc.conf").read_text()
    site = (
        template.replace("${LISTEN_PORT}", f"127.0.0.1:{listen}")
        .replace("${AUTHSVC_ADDR}", authsvc)
        .replace("${DATA_API_ADDR}", data_api)
        .replace("${GATEWAY_KEY}", gateway_key)
    )
    assert "${" not in site
    (tmp / "site.conf").write_text(site)
    for d in ("client", "proxy", "fastcgi", "uwsgi", "scgi"):
        (tmp / d).mkdir(exist_ok=True)
    user = "user root;\n" if os.geteuid() == 0 else ""
    module = f"load_module {HEADERS_MORE};\n" if HEADERS_MORE else ""
    main = f"""{module}{user}worker_processes 1;
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/client;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    include {tmp}/site.conf;
}}
"""
    path = tmp / "nginx.conf"
    path.write_text(main)
    return path


@dataclass
class Stack:
    url: str
    upstream: Upstream
    reader: str
    reader_id: str
    public_reader: str
    limited: str
    tenant_slug: str
    tenant_id: str


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("nginx")
    env = clean_env({"AUTHSVC_DATA_DIR": str(tmp / "data")})
    upstream, upstream_server = start_upstream()
    with running_server(tmp, env) as (base, _proc):
        operator = json.loads(cli("init", "--json", cwd=tmp, env=env).stdout)["operator_key"]
        h = {"Authorization": f"Bearer {operator}"}
        created = httpx.post(f"{base}/v1/tenants", json={"name": "Edge"}, headers=h).json()
        admin = {"Authorization": f"Bearer {created['admin_key']['key']}"}

        def key(scopes: list[Any], **extra: Any) -> dict[str, Any]:
            r = httpx.post(
                f"{base}/v1/keys", json={"name": "k", "scopes": scopes, **extra}, headers=admin
            )
            assert r.status_code == 201, r.text
            return dict(r.json())

        gateway = key(["TOKENS:VERIFY"])["key"]
        reader = key([{"scope": "PIPES:READ:orders", "fixed_params": {"org_id": 42}}])
        public_reader = key(["PIPES:READ:public"])["key"]
        limited = key(
            ["PIPES:READ:*"], ratelimits=[{"name": "per_min", "limit": 2, "period_s": 60}]
        )["key"]
        listen = free_port()
        conf = nginx_conf(
            tmp,
            listen=listen,
            authsvc=base.removeprefix("http://"),
            data_api=f"127.0.0.1:{upstream.port}",
            gateway_key=gateway,
        )
        assert NGINX is not None
        check = subprocess.run(
            [NGINX, "-t", "-c", str(conf), "-e", str(tmp / "error.log")],
            capture_output=True,
            text=True,
            check=False,
        )
        assert check.returncode == 0, (
            f"{check.stderr}\n(more_clear_input_headers needs the headers-more module: "
            "apt-get install libnginx-mod-http-headers-more-filter, as scripts/bootstrap does)"
        )
        proc = subprocess.Popen(
            [NGINX, "-c", str(conf), "-e", str(tmp / "error.log")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        url = f"http://127.0.0.1:{listen}"
        try:
            deadline = time.monotonic() + 10
            while True:
                try:
                    httpx.get(url + "/", timeout=1)
                    break
                except httpx.TransportError:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError("nginx did not start") from None
                    time.sleep(0.05)
            yield Stack(
                url,
                upstream,
                reader["key"],
                reader["id"],
                public_reader,
                limited,
                created["tenant"]["slug"],
                created["tenant"]["id"],
            )
        finally:
            proc.send_signal(signal.SIGQUIT)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            upstream_server.shutdown()


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_nginx_allowed_request_reaches_upstream_with_fixed_params(stack: Stack) -> None:
    before = len(stack.upstream.seen)
    r = httpx.get(f"{stack.url}/v0/pipes/orders.json?limit=5", headers=bearer(stack.reader))
    assert r.status_code == 200, r.text
    assert r.json() == {"ok": True, "path": "/v0/pipes/orders.json?limit=5"}
    seen = stack.upstream.seen[before:]
    assert len(seen) == 1
    assert json.loads(seen[0]["x-authsvc-fixed-params"]) == {"org_id": 42}
    assert seen[0]["x-authsvc-tenant"] == stack.tenant_slug
    assert seen[0]["x-authsvc-sub"].startswith("key_")


def test_nginx_client_cannot_forge_fixed_params_or_scope(stack: Stack) -> None:
    before = len(stack.upstream.seen)
    forged = {
        **bearer(stack.reader),
        "X-Authsvc-Fixed-Params": '{"org_id": 1}',
        "X-Authsvc-Scope": "PIPES:READ:orders",
    }
    r = httpx.get(f"{stack.url}/v0/pipes/orders.json", headers=forged)
    assert r.status_code == 200
    assert json.loads(stack.upstream.seen[before]["x-authsvc-fixed-params"]) == {"org_id": 42}
    r = httpx.get(f"{stack.url}/v0/pipes/users.json", headers=forged)
    assert r.status_code == 403


def test_nginx_missing_or_invalid_token_returns_401(stack: Stack) -> None:
    before = len(stack.upstream.seen)
    for headers in ({}, bearer("garbage"), bearer("ask_" + "A" * 28)):
        r = httpx.get(f"{stack.url}/v0/pipes/orders.json", headers=headers)
        assert r.status_code == 401
        assert 'error="invalid_token"' in r.headers["WWW-Authenticate"]
        assert r.json()["code"] == "UNAUTHENTICATED"
    assert len(stack.upstream.seen) == before


def test_nginx_wrong_scope_returns_403(stack: Stack) -> None:
    r = httpx.get(f"{stack.url}/v0/pipes/users.json", headers=bearer(stack.reader))
    assert r.status_code == 403
    assert r.json()["code"] == "FORBIDDEN"
    assert "Retry-After" not in r.headers


def test_nginx_over_limit_returns_429_with_retry_after(stack: Stack) -> None:
    url = f"{stack.url}/v0/pipes/anything.csv"
    statuses = []
    for _ in range(3):
        r = httpx.get(url, headers=bearer(stack.limited))
        statuses.append(r.status_code)
        if r.status_code == 200:
            assert r.headers["RateLimit-Policy"] == '"per_min";q=2;w=60'
            assert "X-RateLimit-Remaining" in r.headers
    assert statuses == [200, 200, 429]
    assert r.json()["code"] == "RATE_LIMITED"
    assert 1 <= int(r.headers["Retry-After"]) <= 30
    assert r.headers["X-RateLimit-Remaining"] == "0"
    assert "RateLimit" in r.headers


AUTHORITATIVE = {
    "x-authsvc-tenant",
    "x-authsvc-tenant-id",
    "x-authsvc-sub",
    "x-authsvc-key-id",
    "x-authsvc-fixed-params",
}
FORGED = [
    ("X-Authsvc-Tenant", "forged-tenant"),
    ("x-authsvc-tenant", "forged-tenant-lower"),
    ("X-Authsvc-Tenant-Id", "forged-tenant-id"),
    ("X-Authsvc-Key-Id", "forged-key-id"),
    ("X-AUTHSVC-KEY-ID", "forged-key-id-upper"),
    ("X-Authsvc-Sub", "forged-sub"),
    ("X-Authsvc-Fixed-Params", '{"org_id": 1}'),
    ("x-authsvc-foo", "forged-foo"),
    ("X-Authsvc-Code", "forged-code"),
    ("X_Authsvc_Tenant", "forged-underscore"),
    ("X_Authsvc_Tenant_Id", "forged-underscore-id"),
    ("x_authsvc_key_id", "forged-underscore-key"),
    ("X-Authsvc_Sub", "forged-mixed"),
    ("X.Authsvc.Tenant", "forged-dots"),
]
ALIAS = re.compile(r"x[^a-z0-9]authsvc[^a-z0-9]")


def test_nginx_upstream_sees_only_authsvc_identity_headers_never_forged_ones(
    stack: Stack,
) -> None:
    before = len(stack.upstream.raw)
    headers = [("Authorization", f"Bearer {stack.reader}"), *FORGED]
    r = httpx.get(f"{stack.url}/v0/pipes/orders.json", headers=headers)
    assert r.status_code == 200, r.text
    assert len(stack.upstream.raw) == before + 1
    received = stack.upstream.raw[before]
    aliased = [(k.lower(), v) for k, v in received if ALIAS.match(k.lower())]
    assert sorted(k for k, _ in aliased) == sorted(AUTHORITATIVE)
    values = dict(aliased)
    assert values["x-authsvc-tenant"] == stack.tenant_slug
    assert values["x-authsvc-tenant-id"] == stack.tenant_id
    assert values["x-authsvc-key-id"] == stack.reader_id
    assert values["x-authsvc-sub"].startswith("key_")
    assert json.loads(values["x-authsvc-fixed-params"]) == {"org_id": 42}
    assert not [v for _, v in received if "forged" in v or '"org_id": 1' in v]


def test_nginx_forged_check_headers_in_any_spelling_do_not_widen_the_check(stack: Stack) -> None:
    before = len(stack.upstream.raw)
    for name in ("X-Authsvc-Scope", "X-AUTHSVC-SCOPE", "x_authsvc_scope", "X.Authsvc.Scope"):
        headers = {**bearer(stack.reader), name: "PIPES:READ:users", "X-Authsvc-Key": "garbage"}
        r = httpx.get(f"{stack.url}/v0/pipes/users.json", headers=headers)
        assert r.status_code == 403, (name, r.status_code)
    assert len(stack.upstream.raw) == before


def raw_get(url: str, target: str, headers: dict[str, str]) -> int:
    """One HTTP/1.1 GET with the request target sent byte for byte (clients normalise paths)."""
    host, port = url.removeprefix("http://").split(":")
    lines = [f"GET {target} HTTP/1.1", f"Host: {host}", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        status_line = sock.makefile("rb").readline()
    return int(status_line.split()[1])


ENCODED_PATH_ATTACKS = [
    "/v0/pipes/public.json%3F/../secret.json",
    "/v0/pipes/public.json%3f/../secret.json",
    "/v0/pipes/public.json%23/../secret.json",
    "/v0/pipes/public.json%3F/%2e%2e/secret.json",
    "/v0/pipes/public.json%252F..%252Fsecret.json",
    "/v0/pipes/public%252Ejson",
    "/v0/pipes/public.json%2F..%2Fsecret.json",
    "/v0/pipes/public.json%5C..%5Csecret.json",
    "/v0/pipes/public.json/..;/secret.json",
    "/v0/pipes/public.json/%2e%2e/secret.json",
    "/v0//pipes/public.json%3F/../secret.json",
    "//v0/pipes/public.json",
    "/v0/pipes/public.json%00/../secret.json",
]


def test_nginx_encoded_path_attacks_never_reach_the_upstream(stack: Stack) -> None:
    token = {"Authorization": f"Bearer {stack.public_reader}"}
    before = len(stack.upstream.seen)
    assert raw_get(stack.url, "/v0/pipes/public.json", token) == 200
    assert len(stack.upstream.seen) == before + 1
    for target in ENCODED_PATH_ATTACKS:
        status = raw_get(stack.url, target, token)
        assert status in (400, 403, 404), (target, status)
    reached = [seen["path"] for seen in stack.upstream.seen[before + 1 :]]
    assert reached == []
