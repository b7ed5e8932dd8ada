"""Run real ``authsvc`` processes for end-to-end tests (loopback only, bounded in time)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

AUTHSVC = [sys.executable, "-m", "authsvc.cli"]


def require_binary(path: str | None, what: str, install: str) -> str:
    """``path`` of a server binary a test runs itself (a private Redis or Postgres to crash).
    Missing, the test fails: a skip would turn a reliability test green on a machine that
    never ran it."""
    if path is None:
        pytest.fail(f"{what} is not installed ({install}); this test needs it")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The parent environment without any AUTHSVC_* setting, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTHSVC_")}
    env.update(extra or {})
    return env


def cli(
    *args: str, cwd: Path, env: Mapping[str, str], timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*AUTHSVC, *args],
        cwd=cwd,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


class ExitedEarly(RuntimeError):
    """The process ended before it answered ``/healthz``."""


def wait_healthy(proc: subprocess.Popen[str], base: str, *, deadline: float) -> None:
    """Poll ``base/healthz`` until 200; :class:`ExitedEarly` or ``RuntimeError`` on failure."""
    while True:
        if proc.poll() is not None:
            raise ExitedEarly(f"{base} exited early")
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass  # not listening yet
        if time.monotonic() > deadline:
            raise RuntimeError(f"{base} did not become healthy in time")
        time.sleep(0.05)


@contextmanager
def running_server(
    cwd: Path, env: Mapping[str, str], *, port: int | None = None, args: tuple[str, ...] = ()
) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """``authsvc serve`` on a free port; yields (base URL, process); stops it afterwards."""
    port = port or free_port()
    proc = subprocess.Popen(
        [*AUTHSVC, "serve", "--port", str(port), *args],
        cwd=cwd,
        env=dict(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        try:
            wait_healthy(proc, base, deadline=time.monotonic() + 30)
        except ExitedEarly:
            out = proc.stdout.read() if proc.stdout else ""
            raise RuntimeError(f"authsvc serve exited early:\n{out}") from None
        yield base, proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
