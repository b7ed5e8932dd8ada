"""``authsvc serve`` runs uvicorn with the server flags docs/benchmarks.md chose by measurement
("ASGI server"): httptools (twice h11's rate) and uvloop (the asyncio loop leaves TCP_NODELAY
unset on the connections of several workers). The server itself is not started:
``uvicorn.run`` is replaced by a recorder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import uvicorn

from authsvc.cli import main


def test_serve_runs_uvicorn_with_httptools_on_uvloop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: calls.append({"app": app, **kw}))
    for name in ("AUTHSVC_DATABASE_URL", "AUTHSVC_REDIS_URL", "AUTHSVC_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AUTHSVC_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("AUTHSVC_PORT", "8000")
    monkeypatch.setenv("AUTHSVC_HOST", "127.0.0.1")

    assert main(["serve", "--port", "8123"]) == 0

    assert len(calls) == 1
    assert calls[0]["app"] == "authsvc.app:app_from_env"
    assert calls[0]["factory"] is True
    assert calls[0]["http"] == "httptools"
    assert calls[0]["loop"] == "uvloop"
    assert calls[0]["port"] == 8123
    assert calls[0]["access_log"] is False
