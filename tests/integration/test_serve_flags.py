"""``authsvc serve`` runs uvicorn with the server flags docs/benchmarks.md chose by measurement
("ASGI server"): httptools (twice h11's rate) on the asyncio loop (uvloop: 2-7x the p99), with
TCP_NODELAY set on every connection, which asyncio leaves unset on the connections of a socket
shared by several workers."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from authsvc.cli import main
from authsvc.web.protocol import NoDelayHttpToolsProtocol


def test_serve_runs_uvicorn_with_the_nodelay_httptools_protocol_on_the_asyncio_loop(
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
    assert calls[0]["http"] == "authsvc.web.protocol:NoDelayHttpToolsProtocol"
    assert calls[0]["loop"] == "asyncio"
    assert calls[0]["port"] == 8123
    assert calls[0]["access_log"] is False


async def _nodelay_of_served_connections(protocol: type[asyncio.Protocol]) -> list[int]:
    """TCP_NODELAY of the server side of a connection, served from a listening socket made the
    way uvicorn makes the one its workers share (``socket.socket(family=…)``, proto 0)."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    sock = socket.socket(family=socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, http=protocol, loop="asyncio", lifespan="off", log_level="error")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            await asyncio.sleep(0.01)
        async with httpx.AsyncClient() as client:
            await client.get(f"http://127.0.0.1:{port}/")
            return [
                c.transport.get_extra_info("socket").getsockopt(
                    socket.IPPROTO_TCP, socket.TCP_NODELAY
                )
                for c in server.server_state.connections
            ]
    finally:
        server.should_exit = True
        await task
        sock.close()


async def test_connections_of_a_shared_socket_get_tcp_nodelay() -> None:
    assert await _nodelay_of_served_connections(HttpToolsProtocol) == [0]  # asyncio's gap
    assert await _nodelay_of_served_connections(NoDelayHttpToolsProtocol) == [1]
