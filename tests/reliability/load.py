"""Mixed traffic against several real instances, with a ledger of every acknowledged revocation.

:class:`Traffic` drives ``workers`` concurrent loops for a bounded time, each picking an action
(mint, verify, authz, management, revocation) and an instance at random, loopback only. Every
status is checked against the set the contract allows for that action; anything else is
recorded as unexpected. Every revocation that returned 200 is then probed on every instance
until refused (the lag is measured), re-checked at random during the run, and swept once more
at the end: a credential revoked with 200 that some instance still accepts after ``allowance_s``
is a lost revocation.
"""

from __future__ import annotations

import asyncio
import random
import secrets
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.conftest import bearer
from tests.reliability.conftest import Guard, Server

SCOPE = "PIPES:READ:orders"
OK_4XX = {400, 401, 403, 404, 409, 429}
ROUTES = frozenset(
    {
        "/v1/tenants",
        "/v1/keys",
        "/v1/keys/{key_id}",
        "/v1/identities/{external_id}",
        "/v1/tokens",
        "/v1/tokens/revoke",
        "/v1/verify",
        "/v1/authz",
    }
)
"""Every route the traffic uses: a run without one of them would prove less than it claims."""


@dataclass
class TenantState:
    slug: str
    admin: str
    gateway: str  # TOKENS:VERIFY (the verify / authz caller)
    minter: str  # PIPES:READ:orders + TOKENS:CREATE
    keys: list[tuple[str, str]] = field(default_factory=list)  # (id, secret), not revoked
    jwts: list[tuple[str, str]] = field(default_factory=list)  # (jti, token), not revoked


@dataclass
class Revoked:
    kind: str  # "key" | "jwt"
    secret: str
    tenant: TenantState
    acked_at: float
    phase: str = ""
    lags: dict[str, float] = field(default_factory=dict)  # instance -> seconds until refused


class Traffic:
    def __init__(
        self,
        servers: list[Server],
        guard: Guard,
        *,
        workers: int = 10,
        allowance_s: float = 2.0,
    ) -> None:
        self.servers = servers
        self.guard = guard
        self.workers = workers
        self.allowance_s = allowance_s
        self.tenants: list[TenantState] = []
        self.revoked: list[Revoked] = []
        self.stats: Counter[tuple[str, int]] = Counter()
        self.verdicts: Counter[str] = Counter()
        self.unexpected: list[str] = []
        self.lost: list[str] = []
        self.extra_ok: set[int] = set()  # statuses allowed while a fault is injected
        self.phase = "run"  # label of revocations acknowledged from now on
        self.transport_errors = 0
        self._clients: list[httpx.AsyncClient] = []
        self._probes: set[asyncio.Task[None]] = set()

    # --- plumbing ---------------------------------------------------------------------------

    async def __aenter__(self) -> Traffic:
        limits = httpx.Limits(max_connections=self.workers + 4)
        self._clients = [
            httpx.AsyncClient(base_url=s.base, timeout=httpx.Timeout(15.0), limits=limits)
            for s in self.servers
        ]
        return self

    async def __aexit__(self, *exc: object) -> None:
        for task in list(self._probes):
            task.cancel()
        await asyncio.gather(*self._probes, return_exceptions=True)
        for c in self._clients:
            await c.aclose()

    def client(self, i: int | None = None) -> tuple[int, httpx.AsyncClient]:
        i = random.randrange(len(self._clients)) if i is None else i
        return i, self._clients[i]

    async def call(
        self,
        action: str,
        method: str,
        path: str,
        ok: set[int],
        instance: int | None = None,
        **kw: Any,
    ) -> httpx.Response | None:
        i, c = self.client(instance)
        try:
            r = await c.request(method, path, **kw)
        except httpx.TransportError as exc:
            # A refused or dropped connection is never an answer; only counted, and only
            # tolerated while a fault is injected (checked by the tests through the counter).
            self.transport_errors += 1
            self.stats[(action, -1)] += 1
            if not self.extra_ok:
                self.unexpected.append(f"{action} on #{i}: {type(exc).__name__}")
            return None
        self.guard.observe(r, where=f"#{i} ")
        self.stats[(action, r.status_code)] += 1
        if r.status_code not in ok | OK_4XX | self.extra_ok:
            self.unexpected.append(f"{action} on #{i}: {r.status_code} {r.text[:160]}")
        return r

    # --- setup ------------------------------------------------------------------------------

    async def add_tenant(self, operator: str, name: str) -> TenantState:
        _, c = self.client(0)
        r = await c.post("/v1/tenants", json={"name": name}, headers=bearer(operator))
        assert r.status_code == 201, r.text
        self.guard.observe(r)
        admin = r.json()["admin_key"]["key"]
        slug = r.json()["tenant"]["slug"]
        gateway = await self._new_key(c, admin, ["TOKENS:VERIFY", "KEYS:READ"])
        minter = await self._new_key(c, admin, [SCOPE, "TOKENS:CREATE"])
        state = TenantState(slug, admin, gateway[1], minter[1])
        for _ in range(5):
            state.keys.append(await self._new_key(c, admin, [SCOPE]))
        self.tenants.append(state)
        return state

    async def _new_key(
        self, c: httpx.AsyncClient, admin: str, scopes: list[str]
    ) -> tuple[str, str]:
        r = await c.post("/v1/keys", json={"name": "load", "scopes": scopes}, headers=bearer(admin))
        assert r.status_code == 201, r.text
        self.guard.observe(r)
        return r.json()["id"], r.json()["key"]

    # --- actions ----------------------------------------------------------------------------

    async def mint(self, t: TenantState) -> None:
        sub = f"user-{secrets.token_hex(3)}"
        body = {"scopes": [SCOPE], "sub": sub, "ttl_s": 600}
        r = await self.call(
            "mint", "POST", "/v1/tokens", {201}, json=body, headers=bearer(t.minter)
        )
        if r is not None and r.status_code == 201:
            t.jwts.append((r.json()["jti"], r.json()["token"]))
            del t.jwts[:-50]

    async def verify(self, t: TenantState, secret: str, instance: int | None = None) -> bool | None:
        """The verdict's ``valid`` (None when there was no verdict)."""
        r = await self.call(
            "verify",
            "POST",
            "/v1/verify",
            {200},
            instance,
            json={"token": secret, "scope": SCOPE},
            headers=bearer(t.gateway),
        )
        if r is None or r.status_code != 200:
            return None
        verdict = r.json()
        self.verdicts[verdict["code"]] += 1
        return bool(verdict["valid"])

    async def authz(self, t: TenantState, secret: str) -> None:
        headers = {
            "X-Authsvc-Key": t.gateway,
            "Authorization": f"Bearer {secret}",
            "X-Authsvc-Scope": SCOPE,
        }
        await self.call("authz", "GET", "/v1/authz", {200}, headers=headers)

    async def manage(self, t: TenantState) -> None:
        roll = random.random()
        a = bearer(t.admin)
        if roll < 0.3:
            r = await self.call(
                "create_key",
                "POST",
                "/v1/keys",
                {201},
                json={"name": "soak", "scopes": [SCOPE]},
                headers=a,
            )
            if r is not None and r.status_code == 201:
                t.keys.append((r.json()["id"], r.json()["key"]))
        elif roll < 0.55:
            await self.call("list_keys", "GET", "/v1/keys?limit=20", {200}, headers=a)
        elif roll < 0.75 and t.keys:
            key_id, _ = random.choice(t.keys)
            await self.call(
                "patch_key",
                "PATCH",
                f"/v1/keys/{key_id}",
                {200},
                json={"metadata": {"n": random.randrange(1000)}},
                headers=a,
            )
        else:
            ext = f"org-{random.randrange(20)}"
            await self.call(
                "identity",
                "PUT",
                f"/v1/identities/{ext}",
                {200},
                json={"ratelimits": [{"name": "rps", "limit": 1000, "period_s": 1}]},
                headers=a,
            )

    async def revoke_key(self, t: TenantState) -> None:
        if len(t.keys) < 2:
            return
        key_id, secret = t.keys.pop(random.randrange(len(t.keys)))
        r = await self.call(
            "revoke_key", "DELETE", f"/v1/keys/{key_id}", {200}, headers=bearer(t.admin)
        )
        if r is not None and r.status_code == 200:
            self._acknowledged(Revoked("key", secret, t, time.monotonic(), self.phase))
        elif r is None or r.status_code >= 500:
            t.keys.append((key_id, secret))  # not acknowledged: nothing is promised

    async def revoke_jwt(self, t: TenantState) -> None:
        if not t.jwts:
            return
        jti, token = t.jwts.pop(random.randrange(len(t.jwts)))
        r = await self.call(
            "revoke_jwt",
            "POST",
            "/v1/tokens/revoke",
            {200},
            json={"jti": jti},
            headers=bearer(t.admin),
        )
        if r is not None and r.status_code == 200:
            self._acknowledged(Revoked("jwt", token, t, time.monotonic(), self.phase))

    def _acknowledged(self, rev: Revoked) -> None:
        self.revoked.append(rev)
        task = asyncio.create_task(self._probe(rev))
        self._probes.add(task)
        task.add_done_callback(self._probes.discard)

    async def _probe(self, rev: Revoked) -> None:
        """Ask every instance until it refuses the revoked credential; measure the lag."""
        pending = set(range(len(self.servers)))
        deadline = rev.acked_at + self.allowance_s + 10
        while pending and time.monotonic() < deadline:
            for i in list(pending):
                valid = await self.verify(rev.tenant, rev.secret, instance=i)
                lag = time.monotonic() - rev.acked_at
                if valid is False:
                    rev.lags[str(i)] = lag
                    pending.discard(i)
                elif valid is True and lag > self.allowance_s:
                    self.lost.append(f"{rev.kind} revoked {lag:.1f}s ago still valid on #{i}")
                    pending.discard(i)
            await asyncio.sleep(0.1)

    async def recheck(self) -> None:
        """A random acknowledged revocation, past the allowance, on a random instance."""
        now = time.monotonic()
        old = [r for r in self.revoked if now - r.acked_at > self.allowance_s]
        if not old:
            return
        rev = random.choice(old)
        i = random.randrange(len(self.servers))
        if await self.verify(rev.tenant, rev.secret, instance=i) is True:
            self.lost.append(f"{rev.kind} revoked {now - rev.acked_at:.1f}s ago valid on #{i}")

    # --- the run ----------------------------------------------------------------------------

    async def step(self) -> None:
        t = random.choice(self.tenants)
        roll = random.random()
        jwt_ok = bool(t.jwts)
        if roll < 0.12:
            await self.mint(t)
        elif roll < 0.45:
            pool = [k for _, k in t.keys] + ([j for _, j in t.jwts] if jwt_ok else [])
            if pool:
                await self.verify(t, random.choice(pool))
        elif roll < 0.6:
            pool = [j for _, j in t.jwts] if jwt_ok else [k for _, k in t.keys]
            if pool:
                await self.authz(t, random.choice(pool))
        elif roll < 0.8:
            await self.manage(t)
        elif roll < 0.87:
            await self.revoke_key(t)
        elif roll < 0.93 and jwt_ok:
            await self.revoke_jwt(t)
        else:
            await self.recheck()

    async def run(self, duration_s: float) -> None:
        stop = time.monotonic() + duration_s

        async def worker() -> None:
            while time.monotonic() < stop:
                await self.step()

        await asyncio.gather(*(worker() for _ in range(self.workers)))

    async def final_sweep(self) -> None:
        """Every acknowledged revocation, on every instance, after the allowance."""
        await asyncio.gather(*self._probes, return_exceptions=True)
        wait = max((r.acked_at for r in self.revoked), default=0) + self.allowance_s
        await asyncio.sleep(max(0.0, wait - time.monotonic()))
        gate = asyncio.Semaphore(self.workers)

        async def check(rev: Revoked, i: int) -> None:
            async with gate:
                valid = await self.verify(rev.tenant, rev.secret, instance=i)
            if valid is not False:
                self.lost.append(f"{rev.kind} revoked with 200: verdict {valid} on #{i}")

        await asyncio.gather(
            *(check(rev, i) for rev in self.revoked for i in range(len(self.servers)))
        )

    def max_lag(self, phase: str | None = None) -> float:
        return max(self.lags(phase), default=0.0)

    def lags(self, phase: str | None = None) -> list[float]:
        return sorted(
            lag
            for r in self.revoked
            if phase is None or r.phase == phase
            for lag in r.lags.values()
        )

    def lag_summary(self) -> str:
        out = []
        for phase in dict.fromkeys(r.phase for r in self.revoked):
            lags = self.lags(phase)
            if lags:
                p50, p90 = lags[len(lags) // 2], lags[int(len(lags) * 0.9)]
                out.append(f"{phase}: n={len(lags)} p50={p50:.3f} p90={p90:.3f} max={lags[-1]:.3f}")
        return "; ".join(out)

    def summary(self) -> str:
        by_action: dict[str, dict[int, int]] = {}
        for (action, status), n in sorted(self.stats.items()):
            by_action.setdefault(action, {})[status] = n
        return (
            f"requests={sum(self.stats.values())} by action/status={by_action} "
            f"verdicts={dict(self.verdicts)} revocations={len(self.revoked)} "
            f"transport_errors={self.transport_errors} revocation lag s (upper bound, probe "
            f"latency included) by phase: {self.lag_summary()}"
        )
