"""The peer OAuth server: panva's ``oidc-provider`` (bench/peers/oidc/server.js), one node
process, driven by the same wrk script, threads and connections as authsvc.

Cells: ``client_credentials`` minting an ES256 JWT access token (resource ``urn:bench:jwt``),
and introspection (RFC 7662) of an opaque access token (resource ``urn:bench:opaque``), since
oidc-provider refuses to introspect its JWT access tokens. One more cell runs
``client_credentials`` against 2 node processes (node's ``cluster`` module sharing the port and
the signing key), the fair opponent of authsvc's 2-worker figures on this 2-core machine.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from bench.common import ROOT, Http, Load, Process, Results, Row, free_port, load_note, measure

OIDC_DIR = ROOT / "bench" / "peers" / "oidc"
CLIENT_ID = "bench"
CLIENT_SECRET = "bench-secret-0123456789abcdef0123456789"
BASIC = "Basic " + base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
FORM = {"Authorization": BASIC, "Content-Type": "application/x-www-form-urlencoded"}
TARGET = "oidc-provider 9, node 20, 1 process"
CLUSTER = "oidc-provider 9, node 20, cluster 2 processes"


@contextmanager
def oidc_provider(workers: int = 1) -> Iterator[str]:
    port = free_port()
    env = dict(os.environ, PORT=str(port), NODE_ENV="production", WORKERS=str(workers))
    proc = Process(["node", "server.js"], env=env, cwd=OIDC_DIR, name="oidc-provider")
    try:
        base = f"http://127.0.0.1:{port}"
        proc.wait_http(f"{base}/.well-known/openid-configuration")
        yield base
    finally:
        proc.stop()


def _token(base: str, resource: str) -> str:
    r = httpx.post(
        f"{base}/token",
        headers=FORM,
        content=f"grant_type=client_credentials&scope=pipes:read&resource={resource}",
        timeout=10,
    )
    r.raise_for_status()
    return str(r.json()["access_token"])


def _best(base: str, http: Http, seconds: float, passes: int = 2) -> tuple[Load, str]:
    """Like authsvc's cells: a warm-up, then ``passes`` runs, the best one reported."""
    runs = [measure(base, http, seconds, warmup=1.0 if n == 0 else 0) for n in range(passes)]
    best = max(runs, key=lambda x: x.rps)
    return best, f"best of {passes}: " + " / ".join(f"{x.rps:,.0f}" for x in runs)


def run(results: Results, seconds: float) -> None:
    if not (OIDC_DIR / "node_modules").is_dir():
        for name in ("client_credentials (JWT)", "introspection"):
            results.add(
                Row("peer-oauth", name, TARGET, note="n/a (run npm ci in bench/peers/oidc)")
            )
        return
    cc = Http(
        "/token",
        "POST",
        FORM,
        "grant_type=client_credentials&scope=pipes:read&resource=urn:bench:jwt",
    )
    with oidc_provider() as base:
        _token(base, "urn:bench:jwt")
        load, passes = _best(base, cc, seconds)
        results.add(_cc_row(TARGET, load, passes))
        opaque = _token(base, "urn:bench:opaque")
        r = httpx.post(f"{base}/token/introspection", headers=FORM, content=f"token={opaque}")
        if not r.json().get("active"):
            raise RuntimeError(f"oidc-provider introspection probe failed: {r.text}")
        intro = Http("/token/introspection", "POST", FORM, f"token={opaque}")
        load, passes = _best(base, intro, seconds)
        results.add(
            Row(
                "peer-oauth",
                "introspection",
                TARGET,
                load.rps,
                p50_ms=load.p50_ms,
                p99_ms=load.p99_ms,
                note=load_note(load) or f"opaque token (its JWTs are not introspectable); {passes}",
            )
        )
    with oidc_provider(workers=2) as base:
        _token(base, "urn:bench:jwt")
        load, passes = _best(base, cc, seconds)
        results.add(_cc_row(CLUSTER, load, passes))


def _cc_row(target: str, load: Load, passes: str) -> Row:
    return Row(
        "peer-oauth",
        "client_credentials (JWT)",
        target,
        load.rps,
        p50_ms=load.p50_ms,
        p99_ms=load.p99_ms,
        note=load_note(load) or f"ES256 JWT access token, in-memory storage; {passes}",
    )
