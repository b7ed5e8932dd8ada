"""Token minting throughput: ``POST /v1/tokens`` and OAuth ``client_credentials`` next to a no-op
endpoint (``/healthz``) of the same server, in the same run.

Starts ``authsvc serve`` (uvicorn, embedded SQLite default, 1 worker) in a temp dir on a free
loopback port, creates a tenant and a key, then loads each endpoint for a fixed duration at a
fixed concurrency with ``hey`` when installed (``apt-get install -y hey``), else with an async
httpx loop, and prints requests/s, p50 and p99 latency and the non-2xx count per endpoint. The
``/healthz`` row is the floor: what this server, framework and machine do for a request that
does nothing, so the other rows read as "cost of minting a token".

    .venv/bin/python bench/tokens.py [--duration 10] [--concurrency 32] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Result:
    name: str
    tool: str
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int


@dataclass
class Scenario:
    name: str
    method: str
    path: str
    headers: dict[str, str]
    body: str | None = None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(workdir: Path, port: int) -> tuple[subprocess.Popen[bytes], str, dict[str, str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTHSVC_")}
    env |= {
        "AUTHSVC_DATA_DIR": str(workdir / "data"),
        "AUTHSVC_BASE_URL": f"http://127.0.0.1:{port}",
        "AUTHSVC_LOG_LEVEL": "WARNING",
    }
    cli = [sys.executable, "-m", "authsvc.cli"]
    init = subprocess.run(
        [*cli, "init", "--json"], cwd=workdir, env=env, capture_output=True, text=True, check=True
    )
    operator_key = json.loads(init.stdout)["operator_key"]
    proc = subprocess.Popen(
        [*cli, "serve", "--port", str(port), "--workers", "1"],
        cwd=workdir,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return proc, base, {"operator_key": operator_key}
        except httpx.TransportError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit("authsvc serve did not start")
        time.sleep(0.1)


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def setup(base: str, operator_key: str) -> list[Scenario]:
    with httpx.Client(base_url=base, timeout=10) as c:
        r = c.post(
            "/v1/tenants",
            json={"name": "Bench"},
            headers={"Authorization": f"Bearer {operator_key}"},
        )
        r.raise_for_status()
        slug, admin = r.json()["tenant"]["slug"], r.json()["admin_key"]["key"]
        grants = ["TOKENS:CREATE", {"scope": "PIPES:READ:orders", "fixed_params": {"org_id": 42}}]
        r = c.post(
            "/v1/keys",
            json={"name": "bench", "scopes": grants},
            headers={"Authorization": f"Bearer {admin}"},
        )
        r.raise_for_status()
        key_id, key = r.json()["id"], r.json()["key"]
    basic = base64.b64encode(f"{key_id}:{key}".encode()).decode()
    return [
        Scenario("GET /healthz (no-op floor)", "GET", "/healthz", {}),
        Scenario(
            "POST /v1/tokens",
            "POST",
            "/v1/tokens",
            {"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
            json.dumps({"scopes": ["PIPES:READ:orders"], "ttl_s": 300}),
        ),
        Scenario(
            "POST /t/<slug>/oauth2/token client_credentials",
            "POST",
            f"/t/{slug}/oauth2/token",
            {
                "Authorization": f"Basic {basic}",
                "Content-Type": "application/x-www-form-urlencoded",
            },
            "grant_type=client_credentials&scope=PIPES%3AREAD%3Aorders",
        ),
    ]


def run_hey(base: str, s: Scenario, duration: float, concurrency: int) -> Result:
    hey = shutil.which("hey")
    assert hey is not None
    cmd = [hey, "-z", f"{duration}s", "-c", str(concurrency), "-m", s.method]
    for name, value in s.headers.items():
        if name.lower() == "content-type":
            cmd += ["-T", value]
        else:
            cmd += ["-H", f"{name}: {value}"]
    if s.body is not None:
        cmd += ["-d", s.body]
    out = subprocess.run(
        [*cmd, base + s.path], capture_output=True, text=True, check=True, timeout=duration + 60
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = float(re.search(r"50% in ([\d.]+) secs", out).group(1))  # type: ignore[union-attr]
    p99 = float(re.search(r"99% in ([\d.]+) secs", out).group(1))  # type: ignore[union-attr]
    codes = {int(c): int(n) for c, n in re.findall(r"\[(\d+)\]\s+(\d+) responses", out)}
    errors = sum(n for c, n in codes.items() if not 200 <= c < 300)
    _, _, failures = out.partition("Error distribution:")
    errors += sum(int(n) for n in re.findall(r"^\s+\[(\d+)\]", failures, re.MULTILINE))
    return Result(s.name, "hey", rps, p50 * 1000, p99 * 1000, sum(codes.values()), errors)


async def run_httpx(base: str, s: Scenario, duration: float, concurrency: int) -> Result:
    latencies: list[float] = []
    errors = 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as client:
        end = time.perf_counter() + duration

        async def worker() -> None:
            nonlocal errors
            while time.perf_counter() < end:
                t0 = time.perf_counter()
                r = await client.request(s.method, s.path, headers=s.headers, content=s.body)
                latencies.append(time.perf_counter() - t0)
                errors += not r.is_success

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    qs = statistics.quantiles(latencies, n=100)
    return Result(
        s.name,
        "httpx",
        len(latencies) / elapsed,
        qs[49] * 1000,
        qs[98] * 1000,
        len(latencies),
        errors,
    )


def measure(base: str, s: Scenario, duration: float, concurrency: int) -> Result:
    if shutil.which("hey"):
        run_hey(base, s, min(2.0, duration), concurrency)  # warm-up, discarded
        return run_hey(base, s, duration, concurrency)
    asyncio.run(run_httpx(base, s, min(2.0, duration), concurrency))
    return asyncio.run(run_httpx(base, s, duration, concurrency))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per endpoint")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="authsvc-bench-") as tmp:
        proc, base, info = start_server(Path(tmp), free_port())
        try:
            scenarios = setup(base, info["operator_key"])
            results = [measure(base, s, args.duration, args.concurrency) for s in scenarios]
        finally:
            stop_server(proc)
    if args.json:
        print(json.dumps([asdict(r) for r in results], indent=2))
        return 0
    print(
        f"authsvc serve (uvicorn, 1 worker, embedded SQLite), {args.concurrency} concurrent, "
        f"{args.duration:g} s per endpoint, load by {results[0].tool}, {os.cpu_count()} CPUs"
    )
    print(f"{'endpoint':<48} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'non-2xx':>8}")
    for r in results:
        print(f"{r.name:<48} {r.rps:>9.0f} {r.p50_ms:>8.1f} {r.p99_ms:>8.1f} {r.errors:>8}")
    floor = results[0].rps
    for r in results[1:]:
        print(f"  {r.name}: {100 * r.rps / floor:.0f}% of the no-op floor")
    return 0


if __name__ == "__main__":
    sys.exit(main())
