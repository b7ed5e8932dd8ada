"""The authsvc HTTP cells: floor, verify (API key, JWT repeat, JWT first-seen), authz, tokens,
client_credentials and introspection, in one server configuration.

Every cell is probed once with httpx first: an endpoint that is not there yet (404/405) is
reported as "n/a (endpoint missing)" and a probe that does not give the expected answer
(e.g. a verdict that is not ``valid``) as "n/a (probe: …)", instead of measuring errors.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench.common import Http, Load, Results, Row, load_note, measure, read_saved, write_pool, wrk
from bench.servers import SCOPE, Fixture, Server, bearer

JSON = {"Content-Type": "application/json"}
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
MODE = "Postgres+Redis"


@dataclass
class Cell:
    name: str
    group: str
    http: Http
    expect: Callable[[httpx.Response], bool]
    """True when the probe's answer is what the measured requests must get."""
    first_item: str | None = None
    """For pool cells: the item the probe substitutes."""


def _status(code: int) -> Callable[[httpx.Response], bool]:
    return lambda r: r.status_code == code


def _valid(r: httpx.Response) -> bool:
    return r.status_code == 200 and r.json().get("valid") is True


def _active(r: httpx.Response) -> bool:
    return r.status_code == 200 and r.json().get("active") is True


def _has(field: str, code: int) -> Callable[[httpx.Response], bool]:
    return lambda r: r.status_code == code and field in r.json()


def verify_body(token: str) -> str:
    return json.dumps({"token": token, "scope": SCOPE})


def probe(base: str, cell: Cell) -> str | None:
    """None when the cell can be measured, else the reason it cannot."""
    h = cell.http
    item = cell.first_item or ""
    headers = {k: v.replace("{{item}}", item) for k, v in h.headers.items()}
    body = h.body.replace("{{item}}", item) if h.body is not None else None
    try:
        r = httpx.request(h.method, base + h.path, headers=headers, content=body, timeout=10)
    except httpx.HTTPError as exc:
        return f"n/a (probe failed: {type(exc).__name__})"
    if r.status_code in (404, 405) and "No such tenant" not in r.text:
        return "n/a (endpoint missing)"
    if not cell.expect(r):
        return f"n/a (probe: {r.status_code} {r.text[:120]})"
    return None


def cells(fx: Fixture) -> list[Cell]:
    v = fx.verifier.key
    verify = {**JSON, **bearer(v)}
    out = [
        Cell("floor: no-op GET", "framework", Http("/bench/noop"), _status(200)),
        Cell(
            "verify API key",
            "authsvc",
            Http("/v1/verify", "POST", verify, verify_body(fx.subject.key)),
            _valid,
        ),
        Cell(
            "verify API key + 1 rate limit",
            "authsvc",
            Http("/v1/verify", "POST", verify, verify_body(fx.limited.key)),
            _valid,
        ),
    ]
    if fx.jwt is not None:
        out += [
            Cell(
                "verify JWT (repeat)",
                "authsvc",
                Http("/v1/verify", "POST", verify, verify_body(fx.jwt)),
                _valid,
            ),
            Cell(
                "authz (JWT, gateway key)",
                "authsvc",
                Http(
                    "/v1/authz",
                    headers={
                        "X-Authsvc-Key": v,
                        "X-Authsvc-Scope": SCOPE,
                        "Authorization": f"Bearer {fx.jwt}",
                    },
                ),
                _status(200),
            ),
        ]
    out += [
        Cell(
            "tokens: POST /v1/tokens",
            "authsvc",
            Http(
                "/v1/tokens",
                "POST",
                {**JSON, **bearer(fx.minter.key)},
                json.dumps({"scopes": [SCOPE], "ttl_s": 900, "sub": "bench-user"}),
            ),
            _has("token", 201),
        ),
        Cell(
            "client_credentials (JWT)",
            "authsvc",
            Http(
                f"/t/{fx.slug}/oauth2/token",
                "POST",
                {**FORM, "Authorization": fx.minter.basic},
                f"grant_type=client_credentials&scope={SCOPE}",
            ),
            _has("access_token", 200),
        ),
    ]
    if fx.jwt is not None:
        out.append(
            Cell(
                "introspection",
                "authsvc",
                Http(
                    f"/t/{fx.slug}/oauth2/introspect",
                    "POST",
                    {**FORM, "Authorization": fx.verifier.basic},
                    f"token={fx.jwt}",
                ),
                _active,
            )
        )
    return out


def _row(cell: Cell, server: Server, load: Load, note: str = "") -> Row:
    return Row(
        cell.group,
        cell.name,
        server.label,
        load.rps,
        p50_ms=load.p50_ms,
        p99_ms=load.p99_ms,
        note="; ".join(x for x in (load_note(load), note) if x),
        extra={"requests": load.requests, "seconds": load.seconds, "mode": MODE},
    )


def run(server: Server, fx: Fixture, results: Results, seconds: float, tmp: Path) -> None:
    """All cells against one server; /v1/tokens saves its JWTs for the first-seen cell."""
    saved = tmp / f"tokens-{server.kind}-{server.workers}"
    fresh: list[str] = []
    floor: tuple[Cell, Row, Load] | None = None
    for cell in cells(fx):
        reason = probe(server.base, cell)
        if reason is not None:
            results.add(Row(cell.group, cell.name, server.label, note=reason))
        else:
            if cell.name.startswith("tokens:"):
                cell.http.save = saved
            load = measure(server.base, cell.http, seconds)
            row = results.add(_row(cell, server, load))
            if cell.group == "framework":
                floor = (cell, row, load)
            if cell.http.save is not None:
                fresh = [json.loads(b)["token"] for b in read_saved(saved)]
        if cell.name.startswith("tokens:"):
            _first_seen(server, fx, fresh, results, seconds, tmp)
    if floor is not None:
        # the floor again after the other cells: the better of the two is the floor, so a
        # burst of noise during one floor run does not flatter the "vs floor" ratios
        cell, row, first = floor
        again = wrk(server.base, cell.http, seconds)
        best = max(first, again, key=lambda x: x.rps)
        fresh_row = _row(cell, server, best, f"best of 2 runs: {first.rps:,.0f} / {again.rps:,.0f}")
        row.rate, row.p50_ms, row.p99_ms, row.note = (
            fresh_row.rate,
            fresh_row.p50_ms,
            fresh_row.p99_ms,
            fresh_row.note,
        )
        print(f"  floor {server.label}: {first.rps:,.0f} then {again.rps:,.0f} req/s", flush=True)


def _first_seen(
    server: Server, fx: Fixture, tokens: list[str], results: Results, seconds: float, tmp: Path
) -> None:
    name = "verify JWT (first seen)"
    if not tokens:
        results.add(Row("authsvc", name, server.label, note="n/a (no tokens from /v1/tokens)"))
        return
    pool = write_pool(tmp / f"fresh-{server.kind}-{server.workers}", tokens)
    http = Http(
        "/v1/verify",
        "POST",
        {**JSON, **bearer(fx.verifier.key)},
        verify_body("{{item}}"),
        pool=pool,
        once=True,
    )
    # the probe would make the first token seen: probe with the last one and drop it
    cell = Cell(name, "authsvc", http, _valid, first_item=tokens[-1])
    reason = probe(server.base, cell)
    if reason is not None:
        results.add(Row("authsvc", name, server.label, note=reason))
        return
    write_pool(pool, tokens[:-1])
    load = wrk(server.base, http, seconds)
    note = f"{len(tokens) - 1} distinct JWTs, each verified once"
    results.add(_row(cell, server, load, note))


def extra_info(fx: Fixture) -> dict[str, Any]:
    return {"tenant": fx.slug}
