"""Several real authsvc instances for multi-instance tests and the bench (loopback only).

* :class:`PrivateRedis`: a ``redis-server`` of our own on a free port, which a test may stop
  and start again (same port) to simulate an outage;
* :func:`fresh_database`: a new Postgres database migrated to head, dropped afterwards;
* :func:`instances`: N ``uvicorn`` processes of ``authsvc.app:app_from_env`` sharing them.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from authsvc.db import migrate
from tests.conftest import empty_pg_database
from tests.server import ExitedEarly, clean_env, free_port, wait_healthy

SECRET = "cluster-test-master-secret-" + "y" * 32
REDIS_SERVER = shutil.which("redis-server")


class PrivateRedis:
    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._dir = workdir
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        assert REDIS_SERVER is not None, "redis-server is not installed"
        self._proc = subprocess.Popen(
            [
                REDIS_SERVER,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self._dir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            out = subprocess.run(
                ["redis-cli", "-p", str(self.port), "ping"],
                capture_output=True,
                text=True,
                check=False,
            )
            if out.stdout.strip() == "PONG":
                return
            time.sleep(0.05)
        raise RuntimeError("private redis-server did not start")

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait(timeout=10)
        self._proc = None


@contextmanager
def private_redis(workdir: Path) -> Iterator[PrivateRedis]:
    redis = PrivateRedis(workdir)
    redis.start()
    try:
        yield redis
    finally:
        redis.stop()


@contextmanager
def fresh_database() -> Iterator[str]:
    """A new Postgres database migrated to head, dropped afterwards."""
    with empty_pg_database("authsvc_cluster") as url:
        migrate.upgrade(url)
        yield url


def instance_env(database_url: str, redis_url: str, **settings: str) -> dict[str, str]:
    extra = {
        "AUTHSVC_DATABASE_URL": database_url,
        "AUTHSVC_REDIS_URL": redis_url,
        "AUTHSVC_SECRET_KEY": SECRET,
        "AUTHSVC_BASE_URL": "http://authsvc.test",
        "AUTHSVC_LOG_LEVEL": "WARNING",
    }
    extra.update({f"AUTHSVC_{k.upper()}": v for k, v in settings.items()})
    return clean_env(extra)


@contextmanager
def instances(count: int, env: Mapping[str, str], cwd: Path) -> Iterator[list[str]]:
    """``count`` uvicorn processes (one worker each); yields their base URLs."""
    procs: list[subprocess.Popen[bytes]] = []
    urls: list[str] = []
    logs = []
    try:
        for i in range(count):
            port = free_port()
            log = open(cwd / f"instance-{i}.log", "wb")  # noqa: SIM115 (closed below)
            logs.append(log)
            procs.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "uvicorn",
                        "authsvc.app:app_from_env",
                        "--factory",
                        "--host",
                        "127.0.0.1",
                        "--port",
                        str(port),
                        "--log-level",
                        "warning",
                        "--no-access-log",
                    ],
                    cwd=cwd,
                    env=dict(env),
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
            urls.append(f"http://127.0.0.1:{port}")
        deadline = time.monotonic() + 60
        for proc, url in zip(procs, urls, strict=True):
            try:
                wait_healthy(proc, url, deadline=deadline)
            except ExitedEarly:
                hint = f"see {cwd}/instance-*.log"
                raise RuntimeError(f"instance {url} exited early; {hint}") from None
        yield urls
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        for proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for log in logs:
            log.close()
