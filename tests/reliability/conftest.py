"""Fixtures of the reliability suite: a leak guard around every test, and real processes.

Every test in this folder runs under :func:`leak_guard`:

* every secret the suite sees (operator keys, API keys and JWTs in 2xx bodies, the master
  secret and its derived subkeys, private JWK members) goes into one session-wide
  :class:`Ledger`;
* every log record (``caplog``, ``authsvc`` loggers at DEBUG), every 4xx/5xx body the
  in-process client receives and the whole stdout/stderr of every server process the test
  started are scanned, at the end of the test, for any ledger entry and for anything shaped
  like a credential (a well-formed ``ask_``/``aso_`` key, a compact JWS, a PEM private key, a
  JWK ``d``);
* a 500 (or any 5xx but 503) seen by the in-process client fails the test.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from authsvc.app import create_app
from authsvc.master import derive
from authsvc.services import Services
from authsvc.settings import Settings
from tests.conftest import BASE_URL, TEST_SECRET, lifespan
from tests.server import AUTHSVC, ExitedEarly, free_port, wait_healthy

# --- what a leak looks like -------------------------------------------------------------------

CREDENTIAL_SHAPES = [
    re.compile(r"(?<![0-9A-Za-z])(?:ask|aso)_[0-9A-Za-z]{28}(?![0-9A-Za-z])"),
    re.compile(r"eyJ[\w-]{8,}\.eyJ[\w-]{8,}\.[\w-]{16,}"),
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    re.compile(r"""["']d["']\s*:\s*["'][\w-]{20,}["']"""),
]
_SECRET_FIELDS = {"key", "token", "access_token", "refresh_token", "operator_key", "d"}


class Ledger:
    """Every secret value the suite has seen (session-wide)."""

    def __init__(self) -> None:
        self.values: set[str] = set()

    def add(self, value: str | bytes) -> None:
        text = value.decode() if isinstance(value, bytes) else value
        if len(text) >= 16:
            self.values.add(text)

    def harvest(self, obj: Any) -> None:
        """Record the secret-looking members of a JSON document (any depth)."""
        if isinstance(obj, dict):
            for k, v in obj.items():
                if k in _SECRET_FIELDS and isinstance(v, str):
                    self.add(v)
                else:
                    self.harvest(v)
        elif isinstance(obj, list):
            for v in obj:
                self.harvest(v)

    def leaks(self, text: str) -> list[str]:
        """Redacted descriptions of every secret or credential-shaped string in ``text``."""
        found = [f"ledger secret {v[:6]}…" for v in self.values if v in text]
        for shape in CREDENTIAL_SHAPES:
            found += [
                f"{shape.pattern[:24]}… matched {m.group(0)[:8]}…" for m in shape.finditer(text)
            ]
        return found


LEDGER = Ledger()
LEDGER.add(TEST_SECRET)
LEDGER.add(derive(TEST_SECRET.encode(), "authsvc api-key hmac v1").hex())


@pytest.fixture(scope="session")
def ledger() -> Ledger:
    return LEDGER


@dataclass
class Guard:
    """What one test produced that must not leak: error bodies, log text, process outputs."""

    ledger: Ledger
    bodies: list[tuple[str, str]] = field(default_factory=list)
    logs: list[Path] = field(default_factory=list)
    server_errors: list[str] = field(default_factory=list)

    def observe(self, response: httpx.Response, where: str = "") -> None:
        """Harvest secrets from a success, keep an error body, note a server error."""
        label = f"{where}{response.request.method} {response.request.url.path} -> "
        label += str(response.status_code)
        if response.status_code < 400:
            ctype = response.headers.get("content-type", "")
            if ctype.startswith("application/json") and response.content:
                with contextlib.suppress(ValueError):
                    self.ledger.harvest(response.json())
            return
        self.bodies.append((label, response.text))
        for value in response.headers.values():
            self.bodies.append((label + " (header)", value))
        if response.status_code >= 500 and response.status_code != 503:
            self.server_errors.append(label)

    def check(self, log_text: str) -> list[str]:
        problems = [
            f"{label}: {leak}" for label, body in self.bodies for leak in self.ledger.leaks(body)
        ]
        problems += [f"log: {leak}" for leak in self.ledger.leaks(log_text)]
        for path in self.logs:
            if path.exists():
                text = path.read_text(errors="replace")
                problems += [f"{path.name}: {leak}" for leak in self.ledger.leaks(text)]
        problems += [f"unexpected server error {e}" for e in self.server_errors]
        return problems


@pytest.fixture(autouse=True)
def leak_guard(caplog: pytest.LogCaptureFixture, ledger: Ledger) -> Iterator[Guard]:
    caplog.set_level(logging.INFO)
    caplog.set_level(logging.DEBUG, logger="authsvc")
    # The test clients' own request lines (URLs with keys put in queries on purpose) are not
    # service output.
    caplog.set_level(logging.WARNING, logger="httpx")
    caplog.set_level(logging.WARNING, logger="httpcore")
    guard = Guard(ledger)
    yield guard
    text = "\n".join(caplog.text.splitlines())
    problems = guard.check(text)
    assert not problems, "secret leak or server error:\n" + "\n".join(problems[:20])


# --- in-process app, with the guard on every response -----------------------------------------


@pytest.fixture
async def client(
    settings: Settings, services: Services, leak_guard: Guard
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, services=services)

    async def on_response(response: httpx.Response) -> None:
        await response.aread()
        leak_guard.observe(response)

    async with lifespan(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url=BASE_URL, event_hooks={"response": [on_response]}
        ) as c:
            yield c


@pytest.fixture
async def operator_key(services: Services, ledger: Ledger) -> str:
    key = (await services.operators.create_key(actor="test")).key
    ledger.add(key)
    return key


async def openapi_paths(client: httpx.AsyncClient) -> set[str]:
    """The paths the running app documents (a test asserts that the ones it checks exist)."""
    r = await client.get("/schema/openapi.json")
    assert r.status_code == 200, r.text
    return set(r.json().get("paths", {}))


# --- real processes ---------------------------------------------------------------------------

SECRET_KEY = "reliability-master-secret-" + "r" * 32
LEDGER.add(SECRET_KEY)
LEDGER.add(derive(SECRET_KEY.encode(), "authsvc api-key hmac v1").hex())


def server_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The parent environment without AUTHSVC_* settings (and no coverage/pytest noise)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTHSVC_")}
    env.update(extra or {})
    return env


@dataclass
class Server:
    base: str
    proc: subprocess.Popen[bytes]
    log: Path
    port: int

    def alive(self) -> bool:
        return self.proc.poll() is None

    def rss_kib(self) -> int:
        """Resident set size of the server process (Linux ``/proc``)."""
        status = Path(f"/proc/{self.proc.pid}/status").read_text()
        m = re.search(r"VmRSS:\s+(\d+) kB", status)
        return int(m.group(1)) if m else 0

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def spawn_server(cwd: Path, env: Mapping[str, str], guard: Guard, *, name: str) -> Server:
    """Start ``authsvc serve`` on a free loopback port, output to a file the guard scans."""
    port = free_port()
    log = cwd / f"{name}-{port}.log"
    guard.logs.append(log)
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*AUTHSVC, "serve", "--host", "127.0.0.1", "--port", str(port)],
            cwd=cwd,
            env=dict(env),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return Server(f"http://127.0.0.1:{port}", proc, log, port)


def wait_all_healthy(servers: list[Server], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    for server in servers:
        try:
            wait_healthy(server.proc, server.base, deadline=deadline)
        except ExitedEarly:
            for s in servers:
                s.stop()
            text = server.log.read_text(errors="replace")
            raise RuntimeError(f"authsvc serve exited early:\n{text}") from None
        except RuntimeError:
            for s in servers:
                s.stop()
            raise


def start_server(
    cwd: Path, env: Mapping[str, str], guard: Guard, *, name: str = "server", timeout: float = 30
) -> Server:
    """``authsvc serve`` on a free loopback port, healthy; output to a file the guard scans."""
    server = spawn_server(cwd, env, guard, name=name)
    wait_all_healthy([server], timeout)
    return server


def start_cluster(cwd: Path, env: Mapping[str, str], guard: Guard, n: int) -> list[Server]:
    """``n`` identical instances, started together."""
    servers = [spawn_server(cwd, env, guard, name=f"instance{i}") for i in range(n)]
    wait_all_healthy(servers, timeout=45)
    return servers


def run_cli(*args: str, cwd: Path, env: Mapping[str, str], timeout: float = 60) -> str:
    r = subprocess.run(
        [*AUTHSVC, *args], cwd=cwd, env=dict(env), capture_output=True, text=True, timeout=timeout
    )
    assert r.returncode == 0, f"authsvc {' '.join(args)} failed: {r.stdout}\n{r.stderr}"
    return r.stdout


def operator_key_via_cli(cwd: Path, env: Mapping[str, str], ledger: Ledger) -> str:
    key = str(json.loads(run_cli("init", "--json", cwd=cwd, env=env))["operator_key"])
    ledger.add(key)
    return key


def have(binary: str) -> bool:
    return shutil.which(binary) is not None


PYTHON = sys.executable
