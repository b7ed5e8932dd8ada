"""Child processes of the example (authsvc, the IdP, nginx): started with their output in a log
file, polled until they answer, stopped in reverse order.

A process is ready when ``ready()`` returns true (an HTTP probe), checked every 50 ms until a
deadline; if it exits first or never answers, :class:`StartFailed` carries the tail of its log
(the logs hold no secrets: authsvc never logs keys or tokens, nginx logs no headers here).
Stopping sends SIGTERM (SIGQUIT for nginx: a graceful stop), waits, then kills.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack
from pathlib import Path


class StartFailed(RuntimeError):
    """A child process exited or did not answer in time."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def answers(url: str) -> bool:
    """True once ``url`` gives any HTTP answer (an error status counts: the server is up)."""
    try:
        with urllib.request.urlopen(url, timeout=1):  # noqa: S310 (http on loopback only)
            return True
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def start(
    stack: ExitStack,
    name: str,
    argv: Sequence[str],
    *,
    log: Path,
    ready: Callable[[], bool],
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    stop_signal: signal.Signals = signal.SIGTERM,
    timeout_s: float = 30,
) -> subprocess.Popen[bytes]:
    """Start ``argv``, wait until ``ready()``, and register its stop on ``stack``."""
    with log.open("wb") as out:
        proc = subprocess.Popen(  # noqa: S603 (the example's own programs, fixed argv)
            list(argv),
            cwd=cwd,
            env=None if env is None else dict(env),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    stack.callback(stop, proc, stop_signal)
    deadline = time.monotonic() + timeout_s
    while not ready():
        if proc.poll() is not None:
            raise StartFailed(f"{name} exited with {proc.returncode}:\n{tail(log)}")
        if time.monotonic() > deadline:
            raise StartFailed(f"{name} did not answer within {timeout_s:.0f} s:\n{tail(log)}")
        time.sleep(0.05)
    return proc


def stop(proc: subprocess.Popen[bytes], sig: signal.Signals = signal.SIGTERM) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
