"""The whole frontend story on 127.0.0.1, started in dependency order and stopped in reverse.

=========  ==========================================  ==============================
piece      what                                        origin
=========  ==========================================  ==============================
page       static page (page/), its own origin         http://127.0.0.1:<page>
IdP        node oidc-provider (idp/server.js)          http://127.0.0.1:<idp>
authsvc    ``authsvc serve``, embedded (SQLite)         http://127.0.0.1:<authsvc>
gateway    nginx: CORS layer + deploy/nginx/authsvc.conf  http://127.0.0.1:<gateway>
data API   data_api.py, SQLite table ``orders``         127.0.0.1:<data_api> (behind nginx)
=========  ==========================================  ==============================

Setup through authsvc's public HTTP API only, as an operator and a tenant admin would do it:
``authsvc init`` → operator key; ``POST /v1/tenants`` → tenant ``acme`` and its ADMIN key;
``POST /v1/keys`` → the gateway's ``TOKENS:VERIFY`` key; ``POST /v1/trusted-issuers`` → trust the
IdP (DESIGN §9): its access tokens (``aud`` = :data:`AUDIENCE`) exchange for
``PIPES:READ:orders`` with ``org_id`` taken from the token's ``org_id`` claim, from the page
origin only. ``AUTHSVC_ALLOW_PRIVATE_ISSUERS=true`` lets authsvc fetch the IdP's discovery
document and JWKS over http from 127.0.0.1 (development only).

Every piece is a function taking an :class:`~contextlib.ExitStack` so that the test and the
``run`` script start the same code; :func:`running_example` composes them.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from examples.frontend import data_api, gateway, page, processes

HERE: Final = Path(__file__).resolve().parent
IDP_DIR: Final = HERE / "idp"
TENANT: Final = "acme"
AUDIENCE: Final = "urn:authsvc-example:data"
CLIENT_ID: Final = "orders-page"
IDP_SCOPE: Final = "openid orders:read"
DATA_SCOPE: Final = "PIPES:READ:orders"
USERS: Final = {"alice": 42, "bob": 7}
DATA_TOKEN_TTL_S: Final = 300


class SetupFailed(RuntimeError):
    """authsvc refused a setup call (the message has the status and authsvc's error body)."""


@dataclass(frozen=True)
class Ports:
    page: int
    idp: int
    authsvc: int
    gateway: int
    data_api: int

    @classmethod
    def consecutive(cls, base: int) -> Ports:
        return cls(base, base + 1, base + 2, base + 3, base + 4)

    @classmethod
    def free(cls) -> Ports:
        return cls(*(processes.free_port() for _ in range(5)))


@dataclass(frozen=True)
class Tenant:
    slug: str
    operator_key: str
    admin_key: str
    gateway_key: str


@dataclass(frozen=True)
class Example:
    page_url: str
    idp_url: str
    authsvc_url: str
    gateway_url: str
    data_api_url: str
    tenant: Tenant
    issuer_id: str
    workdir: Path

    @property
    def orders_url(self) -> str:
        return f"{self.gateway_url}/v0/pipes/orders.json"


def call(
    method: str, url: str, *, token: str | None = None, body: Mapping[str, Any] | None = None
) -> tuple[int, Any]:
    """One JSON request with the standard library: (status, decoded body or None)."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)  # noqa: S310 (loopback)
    request.add_header("Accept", "application/json")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, raw = error.code, error.read()
    try:
        return status, json.loads(raw) if raw else None
    except ValueError:
        return status, None


def _created(what: str, status: int, answer: Any) -> dict[str, Any]:
    if status != 201 or not isinstance(answer, dict):
        raise SetupFailed(f"{what}: HTTP {status} {json.dumps(answer)}")
    return answer


def authsvc_env(workdir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTHSVC_")}
    env["AUTHSVC_DATA_DIR"] = str(workdir / "authsvc")
    env["AUTHSVC_ALLOW_PRIVATE_ISSUERS"] = "true"
    return env


def start_authsvc(stack: ExitStack, workdir: Path, port: int) -> str:
    base = f"http://127.0.0.1:{port}"
    processes.start(
        stack,
        "authsvc",
        [sys.executable, "-m", "authsvc.cli", "serve", "--port", str(port)],
        log=workdir / "authsvc.log",
        ready=lambda: processes.answers(f"{base}/healthz"),
        env=authsvc_env(workdir),
        cwd=workdir,
        stop_signal=signal.SIGINT,
    )
    return base


def create_tenant(workdir: Path, authsvc: str) -> Tenant:
    init = subprocess.run(
        [sys.executable, "-m", "authsvc.cli", "init", "--json"],
        cwd=workdir,
        env=authsvc_env(workdir),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if init.returncode != 0:
        raise SetupFailed(f"authsvc init failed:\n{init.stderr}")
    operator = str(json.loads(init.stdout)["operator_key"])
    status, answer = call(
        "POST", f"{authsvc}/v1/tenants", token=operator, body={"name": "Acme", "slug": TENANT}
    )
    admin = str(_created("POST /v1/tenants", status, answer)["admin_key"]["key"])
    status, answer = call(
        "POST",
        f"{authsvc}/v1/keys",
        token=admin,
        body={"name": "gateway", "scopes": ["TOKENS:VERIFY"]},
    )
    gateway_key = str(_created("POST /v1/keys", status, answer)["key"])
    return Tenant(TENANT, operator, admin, gateway_key)


def start_idp(stack: ExitStack, workdir: Path, port: int, page_origin: str) -> str:
    node = shutil.which("node")
    if node is None:
        raise processes.StartFailed("node is not installed (Node.js 20 or later)")
    if not (IDP_DIR / "node_modules" / "oidc-provider").is_dir():
        raise processes.StartFailed(f"oidc-provider is not installed: cd {IDP_DIR} && npm ci")
    issuer = f"http://127.0.0.1:{port}"
    env = dict(os.environ, PORT=str(port), PAGE_ORIGIN=page_origin, AUDIENCE=AUDIENCE)
    processes.start(
        stack,
        "identity provider",
        [node, "server.js"],
        log=workdir / "idp.log",
        ready=lambda: processes.answers(f"{issuer}/.well-known/openid-configuration"),
        env=env,
        cwd=IDP_DIR,
    )
    return issuer


def trust_idp(authsvc: str, admin_key: str, issuer: str, page_origin: str) -> str:
    """``POST /v1/trusted-issuers``: the IdP's access tokens become ``orders`` data tokens."""
    status, answer = call(
        "POST",
        f"{authsvc}/v1/trusted-issuers",
        token=admin_key,
        body={
            "issuer": issuer,
            "audiences": [AUDIENCE],
            "algorithms": ["RS256"],
            "subject_claim": "sub",
            "grants": [{"scope": DATA_SCOPE, "fixed_params": {"org_id": {"claim": "org_id"}}}],
            "allowed_origins": [page_origin],
            "ttl_s": DATA_TOKEN_TTL_S,
        },
    )
    if status == 404:
        raise SetupFailed("POST /v1/trusted-issuers: 404, this authsvc has no trusted issuers")
    return str(_created("POST /v1/trusted-issuers", status, answer)["id"])


def start_data_api(stack: ExitStack, workdir: Path, port: int) -> str:
    db = workdir / "orders.sqlite3"
    data_api.create_database(db)
    return stack.enter_context(data_api.serving(db, port))


def start_gateway(
    stack: ExitStack,
    workdir: Path,
    port: int,
    *,
    authsvc: str,
    data_api_url: str,
    gateway_key: str,
    page_origin: str,
) -> str:
    nginx = gateway.find_nginx()
    if nginx is None:
        raise processes.StartFailed("nginx is not installed (Debian: nginx-light)")
    nginx_dir = workdir / "nginx"
    nginx_dir.mkdir(mode=0o700)
    conf = gateway.render(
        nginx_dir,
        listen=port,
        authsvc=authsvc.removeprefix("http://"),
        data_api=data_api_url.removeprefix("http://"),
        gateway_key=gateway_key,
        page_origin=page_origin,
    )
    errors = str(nginx_dir / "error.log")
    check = subprocess.run(  # noqa: S603 (nginx -t on the config written above)
        [nginx, "-t", "-c", str(conf), "-e", errors],
        capture_output=True,
        text=True,
        check=False,
    )
    if check.returncode != 0:
        raise processes.StartFailed(
            f"nginx -t failed:\n{check.stderr}\n(deploy/nginx/authsvc.conf needs the headers-more"
            " module: apt-get install libnginx-mod-http-headers-more-filter)"
        )
    url = f"http://127.0.0.1:{port}"
    processes.start(
        stack,
        "nginx",
        [nginx, "-c", str(conf), "-e", errors],
        log=nginx_dir / "stdout.log",
        ready=lambda: processes.answers(f"{url}/"),
        stop_signal=signal.SIGQUIT,
    )
    return url


def serve_page(stack: ExitStack, port: int, *, issuer: str, authsvc: str, gateway_url: str) -> str:
    config = page.PageConfig(
        issuer=issuer,
        clientId=CLIENT_ID,
        idpScope=IDP_SCOPE,
        authsvc=authsvc,
        tenant=TENANT,
        dataScope=DATA_SCOPE,
        dataApi=gateway_url,
    )
    return stack.enter_context(page.serving(config, port))


@contextmanager
def running_example(workdir: Path, ports: Ports) -> Iterator[Example]:
    """Everything up and configured; stopped (in reverse order) when the block ends."""
    workdir.mkdir(parents=True, exist_ok=True)
    page_origin = f"http://127.0.0.1:{ports.page}"
    with ExitStack() as stack:
        authsvc = start_authsvc(stack, workdir, ports.authsvc)
        tenant = create_tenant(workdir, authsvc)
        issuer = start_idp(stack, workdir, ports.idp, page_origin)
        issuer_id = trust_idp(authsvc, tenant.admin_key, issuer, page_origin)
        data_api_url = start_data_api(stack, workdir, ports.data_api)
        gateway_url = start_gateway(
            stack,
            workdir,
            ports.gateway,
            authsvc=authsvc,
            data_api_url=data_api_url,
            gateway_key=tenant.gateway_key,
            page_origin=page_origin,
        )
        page_url = serve_page(
            stack, ports.page, issuer=issuer, authsvc=authsvc, gateway_url=gateway_url
        )
        yield Example(
            page_url=f"{page_url}/",
            idp_url=issuer,
            authsvc_url=authsvc,
            gateway_url=gateway_url,
            data_api_url=data_api_url,
            tenant=tenant,
            issuer_id=issuer_id,
            workdir=workdir,
        )
