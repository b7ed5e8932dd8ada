"""Dependencies going away and coming back.

* Redis (a private redis-server, killed and restarted): the limiter fails open or closed as
  ``AUTHSVC_RATELIMIT_FAIL_OPEN`` says, counts it, and recovers by itself; revocations stay
  enforced.
* Postgres (behind a TCP proxy the test closes): warm verification keeps answering from the
  caches, cold lookups and management answer 503 ``UNAVAILABLE`` quickly, and everything
  recovers when the database is reachable again.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from authsvc.app import create_app
from authsvc.clock import FrozenClock
from authsvc.services import build_services
from authsvc.settings import Settings
from tests.cluster import REDIS_SERVER, PrivateRedis, private_redis
from tests.conftest import BASE_URL, TEST_SECRET, bearer, new_key, new_tenant, prepare_database
from tests.server import require_binary

Client = AsyncTestClient[Any]
LIMITS = [{"name": "per_min", "limit": 2, "period_s": 60}]


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[PrivateRedis]:
    require_binary(REDIS_SERVER, "redis-server", "apt-get install redis-server")
    with private_redis(tmp_path) as redis:
        yield redis


@contextlib.asynccontextmanager
async def app_client(settings: Settings, clock: FrozenClock) -> AsyncIterator[tuple[Client, str]]:
    """The app under a test client, and an operator key."""
    services = build_services(settings, clock=clock)
    await prepare_database(services)
    operator = (await services.operators.create_key(actor="test")).key
    # The test client runs the app on a loop of its own: no pooled connection may cross over.
    await services.engine.dispose()
    try:
        app = create_app(settings, services=services)
        async with AsyncTestClient(app, base_url=BASE_URL) as client:
            yield client, operator
    finally:
        await services.aclose()


async def _verify(client: Client, gateway: str, token: str) -> dict[str, Any]:
    r = await client.post("/v1/verify", json={"token": token}, headers=bearer(gateway))
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


async def _setup(client: Client, operator: str) -> tuple[str, str, dict[str, Any]]:
    admin = (await new_tenant(client, operator))["admin_key"]["key"]
    gateway = (await new_key(client, admin, ["TOKENS:VERIFY"]))["key"]
    limited = await new_key(client, admin, ["PIPES:READ:x"], ratelimits=LIMITS)
    return admin, gateway, limited


@pytest.mark.redis
@pytest.mark.parametrize("fail_open", [True, False])
async def test_redis_down_limiter_follows_setting_and_recovers_by_itself(
    tmp_path: Path, redis_server: PrivateRedis, fail_open: bool
) -> None:
    settings = Settings(
        data_dir=tmp_path / "data",
        secret_key=TEST_SECRET,
        base_url=BASE_URL,
        redis_url=redis_server.url,
        ratelimit_fail_open=fail_open,
    )
    async with app_client(settings, FrozenClock()) as (client, operator):
        admin, gateway, limited = await _setup(client, operator)
        token = limited["key"]
        assert [(await _verify(client, gateway, token))["code"] for _ in range(3)] == [
            "VALID",
            "VALID",
            "RATE_LIMITED",
        ]
        redis_server.stop()
        started = time.perf_counter()
        down = [(await _verify(client, gateway, token))["code"] for _ in range(3)]
        assert time.perf_counter() - started < 3.0  # short timeouts: no request hangs
        assert down == (["VALID"] * 3 if fail_open else ["RATE_LIMITED"] * 3)
        outcome = "degraded_allowed" if fail_open else "degraded_refused"
        metrics = (await client.get("/metrics")).text
        assert f'authsvc_ratelimit_decisions_total{{outcome="{outcome}"}} 3.0' in metrics
        # Revocation is still enforced (local apply; the broadcast fails quietly).
        r = await client.delete(f"/v1/keys/{limited['id']}", headers=bearer(admin))
        assert r.status_code == 200
        assert (await _verify(client, gateway, token))["code"] == "REVOKED"

        redis_server.start()  # same port, empty: counters start fresh
        other = await new_key(client, admin, ["PIPES:READ:x"], ratelimits=LIMITS)
        codes = [(await _verify(client, gateway, other["key"]))["code"] for _ in range(3)]
        assert codes == ["VALID", "VALID", "RATE_LIMITED"]  # exact again, no restart


class TcpProxy:
    """A TCP forwarder (threads, so it does not depend on any event loop) that the test can
    close, refusing new connections and cutting the open ones, and reopen on the same port."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self._listener: socket.socket | None = None
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()

    def open(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def close(self) -> None:
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
            self._listener = None
        with self._lock:
            doomed, self._sockets = self._sockets, set()
        for sock in doomed:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets |= {client, upstream}
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                dst.shutdown(socket.SHUT_RDWR)


@pytest.mark.postgres
async def test_postgres_down_warm_verify_answers_and_management_is_503(
    tmp_path: Path, pg_url: str
) -> None:
    host_port = pg_url.split("@", 1)[1].split("/", 1)[0]
    host, port = host_port.rsplit(":", 1)
    proxy = TcpProxy(host, int(port))
    proxy.open()
    proxied = pg_url.replace(host_port, f"127.0.0.1:{proxy.port}")
    settings = Settings(
        data_dir=tmp_path / "data", database_url=proxied, secret_key=TEST_SECRET, base_url=BASE_URL
    )
    try:
        async with app_client(settings, FrozenClock()) as (client, operator):
            admin, gateway, _ = await _setup(client, operator)
            warm = await new_key(client, admin, ["PIPES:READ:x"])
            cold = await new_key(client, admin, ["PIPES:READ:x"])
            assert (await _verify(client, gateway, warm["key"]))["code"] == "VALID"

            proxy.close()
            started = time.perf_counter()
            for _ in range(3):
                assert (await _verify(client, gateway, warm["key"]))["code"] == "VALID"
            r = await client.post(
                "/v1/verify", json={"token": cold["key"]}, headers=bearer(gateway)
            )
            assert (r.status_code, r.json()["code"]) == (503, "UNAVAILABLE")
            r = await client.get("/v1/keys", headers=bearer(admin))
            assert (r.status_code, r.json()["code"]) == (503, "UNAVAILABLE")
            assert r.headers["Retry-After"] == "1"
            assert time.perf_counter() - started < 5.0
            assert (await client.get("/readyz")).status_code == 503

            proxy.open()  # same port: the pool reconnects by itself
            r = await client.get("/v1/keys", headers=bearer(admin))
            assert r.status_code == 200
            assert (await _verify(client, gateway, cold["key"]))["code"] == "VALID"
    finally:
        proxy.close()
