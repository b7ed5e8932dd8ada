"""Several real authsvc instances for multi-instance tests and the bench (loopback only).

* :class:`PrivateRedis`: a ``redis-server`` of our own on a free port, which a test may stop
  and start again (same port) to simulate an outage;
* :func:`fresh_database`: a new Postgres database migrated to head, dropped afterwards;
* :func:`instances`: N ``uvicorn`` processes of ``authsvc.app:app_from_env`` sharing them;
  :func:`started` the same with one environment per process (say, two Redis servers), as
  :class:`Instance` handles a test can stop and replace (a restart).
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
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


class Instance:
    """One ``uvicorn`` process of ``authsvc.app:app_from_env`` (one worker), logging to
    ``cwd/<name>.log``; :meth:`stop` ends it (a test may then start another on the same
    database, simulating a restart)."""

    def __init__(self, env: Mapping[str, str], cwd: Path, name: str) -> None:
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = cwd / f"{name}.log"
        self._log = open(self.log_path, "ab")  # noqa: SIM115 (closed by stop)
        self.proc = subprocess.Popen(
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
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def wait_healthy(self, deadline: float) -> None:
        try:
            wait_healthy(self.proc, self.url, deadline=deadline)
        except ExitedEarly:
            raise RuntimeError(f"instance {self.url} exited early; see {self.log_path}") from None

    def interrupt(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)

    def stop(self) -> None:
        self.interrupt()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._log.close()


@contextmanager
def started(
    envs: Sequence[Mapping[str, str]], cwd: Path, prefix: str = "instance"
) -> Iterator[list[Instance]]:
    """One instance per environment in ``envs``, all healthy; stopped afterwards."""
    procs: list[Instance] = []
    try:
        for i, env in enumerate(envs):
            procs.append(Instance(env, cwd, f"{prefix}-{i}"))
        deadline = time.monotonic() + 60
        for proc in procs:
            proc.wait_healthy(deadline)
        yield procs
    finally:
        for proc in procs:
            proc.interrupt()
        for proc in procs:
            proc.stop()


@contextmanager
def instances(count: int, env: Mapping[str, str], cwd: Path) -> Iterator[list[str]]:
    """``count`` uvicorn processes (one worker each); yields their base URLs."""
    with started([env] * count, cwd) as procs:
        yield [p.url for p in procs]
