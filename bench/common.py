"""The shared load-and-measure core of the benchmarks: wrk runs, processes, stats, services.

Everything the benchmarks start is started through :class:`Process` (its own process group,
stopped on exit) or :class:`RedisServer` / :class:`PgDatabase` (a private Redis on a free
port, a fresh Postgres database dropped afterwards). Traffic goes to 127.0.0.1 only.

HTTP load is always ``wrk`` with ``bench/lua/load.lua``, the same tool, threads and
connections for every server (authsvc, the framework floor, the peer OAuth server).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
LUA = ROOT / "bench" / "lua" / "load.lua"

CONNECTIONS = 32
THREADS = 2

PG_ADMIN_URL = os.environ.get(
    "AUTHSVC_BENCH_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


# --- results -------------------------------------------------------------------------------


@dataclass
class Row:
    """One cell of the results table."""

    group: str
    """framework | authsvc | peer-oauth | limiter | revocation | scale"""
    name: str
    target: str = ""
    """Who answered: server + workers, or the library."""
    rate: float | None = None
    unit: str = "req/s"
    p50_ms: float | None = None
    p99_ms: float | None = None
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def available(self) -> bool:
        return self.rate is not None or self.p50_ms is not None


@dataclass
class Goal:
    name: str
    target: str
    measured: str
    met: bool | None
    """None: could not be measured in this run."""
    why: str = ""
    value: float | None = None
    """The figure judged (a ratio, req/s, ms or MiB), for the median over runs."""
    limit: float | None = None
    at_most: bool = False


@dataclass
class Results:
    started: str
    machine: str
    rows: list[Row] = field(default_factory=list)
    goals: list[Goal] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, row: Row) -> Row:
        self.rows.append(row)
        label = f"{row.group:<11} {row.name:<38} {row.target:<22}"
        if row.available:
            rate = f"{row.rate:>10,.0f} {row.unit}" if row.rate is not None else " " * 16
            lat = (
                f"  p50 {row.p50_ms:7.2f} ms  p99 {row.p99_ms:7.2f} ms"
                if row.p50_ms is not None and row.p99_ms is not None
                else ""
            )
            print(f"{label} {rate}{lat}  {row.note}", flush=True)
        else:
            print(f"{label} n/a  {row.note}", flush=True)
        return row

    def find(self, group: str, name: str, target: str | None = None) -> Row | None:
        for row in self.rows:
            if row.group == group and row.name == name and (target is None or row.target == target):
                return row
        return None

    def to_json(self) -> dict[str, Any]:
        return {
            "started": self.started,
            "machine": self.machine,
            "rows": [asdict(r) for r in self.rows],
            "goals": [asdict(g) for g in self.goals],
            "notes": self.notes,
        }


def machine_summary() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()} cores ({cpu}), {mem_gib:.0f} GiB RAM, Python {sys.version.split()[0]}"


# --- stats ---------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..100) of a non-empty sequence."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(q / 100 * len(ordered))))
    return ordered[rank - 1]


# --- wrk -----------------------------------------------------------------------------------


@dataclass
class Http:
    """What one HTTP cell sends (see bench/lua/load.lua)."""

    path: str
    method: str = "GET"
    headers: Mapping[str, str] = field(default_factory=dict)
    body: str | None = None
    pool: Path | None = None
    """One item per line, substituted for ``{{item}}`` in headers and body."""
    once: bool = False
    """Use every pool item once, then stop (first-seen credentials)."""
    save: Path | None = None
    """Append 2xx bodies to ``<save>.<thread>``."""


@dataclass
class Load:
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    errors: int
    non2xx: int


def wrk(
    base_url: str,
    http: Http,
    seconds: float,
    *,
    connections: int = CONNECTIONS,
    threads: int = THREADS,
) -> Load:
    """One ``wrk`` run; raises if wrk fails or reports no request."""
    if shutil.which("wrk") is None:
        raise RuntimeError("wrk is not installed (Debian: apt-get install -y wrk)")
    env = dict(os.environ)
    env.update(
        BENCH_METHOD=http.method,
        BENCH_HEADERS="\n".join(f"{k}: {v}" for k, v in http.headers.items()),
        BENCH_THREADS=str(threads),
    )
    for name in ("BENCH_BODY", "BENCH_POOL", "BENCH_ONCE", "BENCH_SAVE"):
        env.pop(name, None)
    if http.body is not None:
        env["BENCH_BODY"] = http.body
    if http.pool is not None:
        env["BENCH_POOL"] = str(http.pool)
    if http.once:
        env["BENCH_ONCE"] = "1"
    if http.save is not None:
        env["BENCH_SAVE"] = str(http.save)
    cmd = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "5s",
        "-s",
        str(LUA),
        base_url.rstrip("/") + http.path,
    ]
    with tempfile.TemporaryDirectory(prefix="bench-wrk-") as tmp:
        done = Path(tmp) / "done"
        env["BENCH_DONE"] = str(done)
        proc = subprocess.Popen(
            cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        if http.once:
            # stop wrk as soon as every thread has used its share of the pool
            markers = [Path(f"{done}.{t}") for t in range(threads)]
            deadline = time.monotonic() + seconds + 5
            while proc.poll() is None and time.monotonic() < deadline:
                if all(m.exists() for m in markers):
                    proc.send_signal(signal.SIGINT)
                    break
                time.sleep(0.002)
        out, err = proc.communicate(timeout=seconds + 60)
    line = next((x for x in out.splitlines() if x.startswith("BENCH_JSON ")), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {out[-500:]} {err}")
    data = json.loads(line.removeprefix("BENCH_JSON "))
    secs = data["duration_us"] / 1e6
    errors = data["connect"] + data["read"] + data["write"] + data["timeout"]
    return Load(
        requests=data["requests"],
        seconds=secs,
        rps=data["requests"] / secs if secs else 0.0,
        p50_ms=data["p50_us"] / 1000,
        p90_ms=data["p90_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        max_ms=data["max_us"] / 1000,
        errors=errors,
        non2xx=data["status"],
    )


def measure(base_url: str, http: Http, seconds: float, warmup: float = 1.0) -> Load:
    """A short warm-up run (discarded) then the measured run, same tool and concurrency."""
    if warmup > 0 and not http.once:
        wrk(base_url, http, warmup)
    return wrk(base_url, http, seconds)


def load_note(load: Load) -> str:
    """A short warning when a run had errors or non-2xx answers."""
    bad = []
    if load.non2xx:
        bad.append(f"{load.non2xx} non-2xx")
    if load.errors:
        bad.append(f"{load.errors} socket errors")
    return ("; ".join(bad) + f" of {load.requests}") if bad else ""


# --- processes -----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Process:
    """A child process in its own process group, stopped (group-wide) by :meth:`stop`."""

    def __init__(
        self,
        cmd: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path = ROOT,
        name: str = "",
    ) -> None:
        self.name = name or Path(cmd[0]).name
        self.log = Path(tempfile.mkstemp(prefix=f"bench-{self.name}-", suffix=".log")[1])
        self._log_fh = self.log.open("w")
        self.proc = subprocess.Popen(
            list(cmd),
            cwd=cwd,
            env=dict(env) if env is not None else None,
            stdout=self._log_fh,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def tail(self, n: int = 3000) -> str:
        try:
            return self.log.read_text(errors="replace")[-n:]
        except OSError:
            return ""

    def wait_http(self, url: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited early:\n{self.tail()}")
            try:
                if httpx.get(url, timeout=1).status_code < 500:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"{self.name} not ready at {url} after {timeout} s:\n{self.tail()}"
                )
            time.sleep(0.1)

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGINT)
                self.proc.wait(timeout=10)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        if self.proc.poll() is None:
            self.proc.wait(timeout=10)
        self._log_fh.close()
        self.log.unlink(missing_ok=True)

    def __enter__(self) -> Process:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def rss_bytes(pid: int) -> int:
    """Resident set size of ``pid`` plus all its descendants (workers)."""
    total = 0
    for p in [pid, *descendants(pid)]:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            continue
    return total


def descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    out: list[int] = []
    todo = [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.append(c)
            todo.append(c)
    return out


# --- services ------------------------------------------------------------------------------


class RedisServer:
    """A private ``redis-server`` on a free loopback port (no persistence)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._dir = tempfile.mkdtemp(prefix="bench-redis-")
        self.process = Process(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                self._dir,
            ],
            name="redis",
        )
        deadline = time.monotonic() + 20
        while self.cli("PING") != "PONG":
            if time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start:\n{self.process.tail()}")
            time.sleep(0.05)

    def cli(self, *args: str) -> str:
        proc = subprocess.run(
            ["redis-cli", "-p", str(self.port), *args],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        return proc.stdout.strip()

    def info(self, section: str) -> dict[str, str]:
        out: dict[str, str] = {}
        for line in self.cli("INFO", section).splitlines():
            if ":" in line and not line.startswith("#"):
                k, v = line.split(":", 1)
                out[k] = v.strip()
        return out

    def counters(self) -> dict[str, int]:
        """Commands and socket reads processed so far, plus per-command call counts."""
        stats = self.info("stats")
        out = {
            "commands": int(stats["total_commands_processed"]),
            "reads": int(stats["total_reads_processed"]),
        }
        for k, v in self.info("commandstats").items():
            calls = v.split(",", 1)[0].split("=", 1)[1]
            out[k.removeprefix("cmdstat_")] = int(calls)
        return out

    def stop(self) -> None:
        self.process.stop()
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> RedisServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class PgDatabase:
    """A fresh database on the local Postgres, dropped on exit."""

    def __init__(self, prefix: str = "authsvc_bench") -> None:
        self.name = f"{prefix}_{uuid.uuid4().hex[:8]}"
        base = PG_ADMIN_URL.rsplit("/", 1)[0]
        self.dsn = f"{base}/{self.name}"
        self.url = self.dsn.replace("postgresql://", "postgresql+asyncpg://", 1)
        asyncio.run(_pg_admin(f'CREATE DATABASE "{self.name}"'))

    def drop(self) -> None:
        asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))

    def __enter__(self) -> PgDatabase:
        return self

    def __exit__(self, *exc: object) -> None:
        self.drop()


async def _pg_admin(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_ADMIN_URL)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@contextmanager
def temp_dir(prefix: str = "bench-") -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def write_pool(path: Path, items: Sequence[str]) -> Path:
    path.write_text("".join(f"{x}\n" for x in items))
    return path


def read_saved(prefix: Path, threads: int = THREADS) -> list[str]:
    """Bodies saved by a wrk run with ``Http.save``."""
    out: list[str] = []
    for t in range(threads):
        p = Path(f"{prefix}.{t}")
        if p.exists():
            out += [x for x in p.read_text().splitlines() if x.strip()]
    return out


def timed(fn: Callable[[], Any]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0
