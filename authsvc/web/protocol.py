"""The HTTP/1.1 protocol ``authsvc serve`` runs: uvicorn's httptools protocol, with
``TCP_NODELAY`` set on every connection.

``authsvc serve`` runs on the asyncio loop (docs/benchmarks.md, "ASGI server": the same
throughput as uvloop, a p99 of 6-11 ms instead of 15-72 ms on one worker). asyncio sets
``TCP_NODELAY`` only on accepted sockets whose ``proto`` is ``IPPROTO_TCP``
(``asyncio.base_events._set_nodelay``), and uvicorn creates the listening socket it shares
between several workers as ``socket.socket(family=…)``, whose ``proto`` is 0: the workers'
connections kept Nagle's algorithm, which meets the client's delayed ACKs on every response
(~44 ms each; 735 req/s on every cell with ``--workers 2``). Setting it per connection makes
the loop safe for any number of workers.
"""

from __future__ import annotations

import asyncio
import socket

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

NAME = "authsvc.web.protocol:NoDelayHttpToolsProtocol"
"""What ``uvicorn --http`` (or ``uvicorn.run(http=…)``) takes to run this protocol."""


class NoDelayHttpToolsProtocol(HttpToolsProtocol):
    def connection_made(  # type: ignore[override]
        self, transport: asyncio.Transport
    ) -> None:
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().connection_made(transport)
