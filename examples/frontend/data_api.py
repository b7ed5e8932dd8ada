"""The example's data API: ``GET /v0/pipes/orders.json`` over an SQLite table ``orders``.

It stands where a Tinybird-style API would, behind nginx (``deploy/nginx/authsvc.conf``), and it
trusts only what that gateway adds: the ``X-Authsvc-Fixed-Params`` header (compact JSON from
authsvc's ``/v1/authz``) is the row filter. Rules (DESIGN §1, fixed_params):

- every fixed param is applied as ``column = value`` (a list means ``IN``); a client-supplied
  query parameter with the same name is ignored, never merged;
- the client may filter on other columns with query parameters (``?status=shipped``) and cap the
  answer with ``?limit=``;
- fail closed: no header (the request did not come through the gateway), a header that is not a
  JSON object, or a fixed param that names no column of the table, is a 403: a filter is never
  dropped.

Values go to SQLite as bound parameters; column names come only from the table's own list. The
server is the standard library's threading HTTP server: one short query per request, enough for
a demo, not a production data API.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Final
from urllib.parse import parse_qsl, urlsplit

COLUMNS: Final = ("id", "org_id", "customer", "product", "amount", "status")
SEED: Final = (
    (1, 42, "Globex", "Widget", 120.0, "shipped"),
    (2, 42, "Initech", "Gadget", 75.5, "pending"),
    (3, 42, "Umbrella", "Widget", 310.0, "shipped"),
    (4, 7, "Hooli", "Sprocket", 19.9, "shipped"),
    (5, 7, "Pied Piper", "Gizmo", 250.0, "cancelled"),
)
MAX_LIMIT: Final = 1000
FilterValue = str | int | float | bool


class Refused(Exception):
    """The request cannot be answered without dropping a filter (a 403 with this message)."""


def create_database(path: Path) -> None:
    """A fresh ``orders`` table with the seed rows (org 42: ids 1-3, org 7: ids 4-5)."""
    path.unlink(missing_ok=True)
    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TABLE orders (id INTEGER PRIMARY KEY, org_id INTEGER NOT NULL,"
            " customer TEXT NOT NULL, product TEXT NOT NULL, amount REAL NOT NULL,"
            " status TEXT NOT NULL)"
        )
        db.executemany("INSERT INTO orders VALUES (?, ?, ?, ?, ?, ?)", SEED)


def seeded_ids(org_id: int) -> list[int]:
    return [row[0] for row in SEED if row[1] == org_id]


def _scalar(value: Any) -> FilterValue:
    if isinstance(value, str | int | float | bool):
        return value
    raise Refused("a fixed param value is not a scalar")


def parse_fixed_params(header: str | None) -> dict[str, list[FilterValue]]:
    """``X-Authsvc-Fixed-Params`` → {column: allowed values}; :class:`Refused` if unusable."""
    if header is None:
        raise Refused("no X-Authsvc-Fixed-Params: this API is only reachable through the gateway")
    try:
        params = json.loads(header)
    except ValueError:
        raise Refused("X-Authsvc-Fixed-Params is not JSON") from None
    if not isinstance(params, dict):
        raise Refused("X-Authsvc-Fixed-Params is not a JSON object")
    filters: dict[str, list[FilterValue]] = {}
    for name, value in params.items():
        if name not in COLUMNS:
            raise Refused(f"fixed param {name!r} names no column of orders")
        values = value if isinstance(value, list) else [value]
        if not values:
            raise Refused(f"fixed param {name!r} is an empty list")
        filters[name] = [_scalar(v) for v in values]
    return filters


def query(
    db_path: Path, fixed: Mapping[str, list[FilterValue]], args: Mapping[str, str]
) -> list[dict[str, Any]]:
    """Rows of ``orders`` under ``fixed``; ``args`` filter other columns only (and ``limit``)."""
    where: list[str] = []
    bound: list[Any] = []
    for name, values in fixed.items():
        where.append(f"{name} IN ({', '.join('?' * len(values))})")
        bound.extend(values)
    for name, value in args.items():
        if name in COLUMNS and name not in fixed:
            where.append(f"{name} = ?")
            bound.append(value)
    try:
        limit = max(0, min(int(args.get("limit", MAX_LIMIT)), MAX_LIMIT))
    except ValueError:
        limit = MAX_LIMIT
    sql = f"SELECT {', '.join(COLUMNS)} FROM orders"  # noqa: S608 (names from COLUMNS only)
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY id LIMIT ?"
    with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True) as db:
        rows = db.execute(sql, [*bound, limit]).fetchall()
    return [dict(zip(COLUMNS, row, strict=True)) for row in rows]


def _handler(db_path: Path) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            url = urlsplit(self.path)
            if url.path != "/v0/pipes/orders.json":
                self._send(404, {"error": "No such pipe.", "code": "NOT_FOUND"})
                return
            try:
                fixed = parse_fixed_params(self.headers.get("X-Authsvc-Fixed-Params"))
            except Refused as refused:
                self._send(403, {"error": str(refused), "code": "FORBIDDEN"})
                return
            rows = query(db_path, fixed, dict(parse_qsl(url.query)))
            meta = [{"name": name} for name in COLUMNS]
            self._send(200, {"meta": meta, "data": rows, "rows": len(rows)})

        def _send(self, status: int, body: Mapping[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            return None

    return Handler


@contextmanager
def serving(db_path: Path, port: int) -> Iterator[str]:
    """The data API on ``127.0.0.1:port`` in a thread; yields its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", port), _handler(db_path))
    thread = threading.Thread(target=server.serve_forever, name="data-api", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
