"""The static web server of the example page: its own origin, as a customer's CDN would be.

It serves the files of ``page/`` and ``/config.json``, which tells the page where the IdP,
authsvc and the data API are (their ports are chosen at start). Every answer carries a Content
Security Policy that names exactly those origins: the page may load scripts only from itself
and from authsvc (``/sdk/authsvc.js``), and connect only to the IdP, authsvc and the data API.
That list is what a customer's CSP needs for this integration.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Final

PAGE_DIR: Final = Path(__file__).resolve().parent / "page"
FILES: Final = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/index.html": ("index.html", "text/html; charset=utf-8"),
    "/app.js": ("app.js", "text/javascript; charset=utf-8"),
    "/login.js": ("login.js", "text/javascript; charset=utf-8"),
}


@dataclass(frozen=True)
class PageConfig:
    """What ``/config.json`` tells the page (camelCase: it is read by JavaScript)."""

    issuer: str
    clientId: str
    idpScope: str
    authsvc: str
    tenant: str
    dataScope: str
    dataApi: str


def content_security_policy(config: PageConfig) -> str:
    return "; ".join(
        (
            "default-src 'none'",
            f"script-src 'self' {config.authsvc}",
            f"connect-src 'self' {config.issuer} {config.authsvc} {config.dataApi}",
            "style-src 'self' 'unsafe-inline'",
            "img-src 'self' data:",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        )
    )


def _handler(config: PageConfig) -> type[BaseHTTPRequestHandler]:
    csp = content_security_policy(config)
    config_json = json.dumps(asdict(config)).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/config.json":
                self._send(200, config_json, "application/json")
                return
            entry = FILES.get(path)
            if entry is None:
                self._send(404, b"not found\n", "text/plain")
                return
            name, content_type = entry
            self._send(200, (PAGE_DIR / name).read_bytes(), content_type)

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.send_header("Content-Security-Policy", csp)
            self.send_header("Referrer-Policy", "no-referrer")
            self.send_header("X-Content-Type-Options", "nosniff")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return None

    return Handler


@contextmanager
def serving(config: PageConfig, port: int) -> Iterator[str]:
    """The page on ``127.0.0.1:port`` in a thread; yields its origin."""
    server = ThreadingHTTPServer(("127.0.0.1", port), _handler(config))
    thread = threading.Thread(target=server.serve_forever, name="page", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
