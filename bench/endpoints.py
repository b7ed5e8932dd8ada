"""The authsvc HTTP cells: floor, verify (API key, with a rate limit, a child key of a limited
parent, JWT repeat, JWT of a limited key, JWT first-seen), authz, tokens, client_credentials,
the public token exchange of an IdP token (DESIGN §9) and introspection, in one server
configuration.

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
from urllib.parse import urlencode

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
        Cell(
            "verify child key (parent has 1 rate limit)",
            "authsvc",
            Http("/v1/verify", "POST", verify, verify_body(fx.child.key)),
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
    if fx.limited_jwt is not None:
        out.append(
            Cell(
                "verify JWT of a limited key (repeat)",
                "authsvc",
                Http("/v1/verify", "POST", verify, verify_body(fx.limited_jwt)),
                _valid,
            )
        )
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
        Cell(
            "token exchange (IdP JWT, warm JWKS)",
            "authsvc",
            Http(
                f"/t/{fx.slug}/oauth2/token",
                "POST",
                {**FORM, "Origin": fx.origin},
                urlencode(
                    {
                        "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
                        "subject_token": fx.idp_token,
                        "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
                        "scope": SCOPE,
                    }
                ),
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


PASSES = 2


def run(server: Server, fx: Fixture, results: Results, seconds: float, tmp: Path) -> None:
    """All cells against one server, in ``PASSES`` passes; each cell reports its best pass.

    The machine is shared: a neighbour's burst slows whichever cell runs at that moment, so
    two passes a minute apart and the better of the two give steadier ratios than one long
    run. Only the first pass has a warm-up. /v1/tokens saves its JWTs for the first-seen cell
    of the same pass.
    """
    order = cells(fx)
    first_seen = Cell("verify JWT (first seen)", "authsvc", Http("/v1/verify"), _valid)
    order.insert(
        next(i + 1 for i, c in enumerate(order) if c.name.startswith("tokens:")), first_seen
    )
    loads: dict[str, list[Load]] = {c.name: [] for c in order}
    notes: dict[str, str] = {}
    fresh: list[str] = []
    for n in range(PASSES):
        for cell in order:
            if cell.name in notes and not loads[cell.name]:
                continue  # n/a in an earlier pass
            if cell is first_seen:
                load, note = _first_seen(server, fx, fresh, seconds, tmp, n)
            else:
                reason = probe(server.base, cell)
                if reason is None:
                    if cell.name.startswith("tokens:"):
                        cell.http.save = tmp / f"tokens-{server.kind}-{server.workers}-{n}"
                    load = measure(server.base, cell.http, seconds, warmup=1.0 if n == 0 else 0)
                    note = ""
                    if cell.http.save is not None:
                        fresh = [json.loads(b)["token"] for b in read_saved(cell.http.save)]
                else:
                    load, note = None, reason
            if load is None:
                notes[cell.name] = note
                continue
            loads[cell.name].append(load)
            notes[cell.name] = note
            print(f"  pass {n + 1} {server.label:<11} {cell.name:<32} {load.rps:>8,.0f} req/s")
    for cell in order:
        runs = loads[cell.name]
        if not runs:
            results.add(Row(cell.group, cell.name, server.label, note=notes[cell.name]))
            continue
        best = max(runs, key=lambda x: x.rps)
        passes = " / ".join(f"{x.rps:,.0f}" for x in runs)
        note = "; ".join(x for x in (notes[cell.name], f"best of {len(runs)}: {passes}") if x)
        results.add(_row(cell, server, best, note))


def _first_seen(
    server: Server, fx: Fixture, tokens: list[str], seconds: float, tmp: Path, n: int
) -> tuple[Load | None, str]:
    if not tokens:
        return None, "n/a (no tokens from /v1/tokens)"
    pool = write_pool(tmp / f"fresh-{server.kind}-{server.workers}-{n}", tokens)
    http = Http(
        "/v1/verify",
        "POST",
        {**JSON, **bearer(fx.verifier.key)},
        verify_body("{{item}}"),
        pool=pool,
        once=True,
    )
    # the probe would make the first token seen: probe with the last one and drop it
    cell = Cell("verify JWT (first seen)", "authsvc", http, _valid, first_item=tokens[-1])
    reason = probe(server.base, cell)
    if reason is not None:
        return None, reason
    write_pool(pool, tokens[:-1])
    load = wrk(server.base, http, seconds)
    return load, f"~{len(tokens) - 1:,} distinct JWTs per pass, each verified once"


def extra_info(fx: Fixture) -> dict[str, Any]:
    return {"tenant": fx.slug}
