"""DESIGN §1 + §8 as a state machine: random sequences of calls by random live credentials.

Hypothesis drives the real HTTP API (in process, both backends) through create-child, PATCH
(narrower and wider), reroll, revoke, disable/enable, mint (``POST /v1/tokens`` and OAuth
``client_credentials``), token exchange and verify, each by a random credential. A model of
keys (parent, grants, filters, limits, revoked, disabled) and tokens predicts from §1 and §8
the status of every call, and the machine asserts it. After every step the invariants are
checked against the server itself:

* a live credential never verifies with a grant or a filter wider than each live ancestor's;
* a credential with a revoked or disabled ancestor is never valid;
* requests the server admitted across a key and everything derived from it never exceed the
  highest limit that key ever had;
* no response ever contains the secret of a key outside the caller's subtree.

The universe is small so predictions stay exact: data scopes ``PIPES:READ:a|b|*`` with an
optional ``org`` filter over {1, 2}; a key holds either ``*`` or named resources (then every
lineage's effective grants do too); management scopes ``KEYS:WRITE``, ``TOKENS:CREATE``; the
clock moves 2 ms per call, so a limit of N per hour admits exactly N charged uses (GCRA with
burst = limit refills one unit every 3600/N s).
"""

from __future__ import annotations

import asyncio
import itertools
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    rule,
)

from authsvc.app import create_app
from authsvc.clock import FrozenClock
from authsvc.services import build_services
from authsvc.settings import Settings
from tests.conftest import BASE_URL, TEST_SECRET, bearer, lifespan, prepare_database

RESOURCES = ("a", "b")
DATA = ("PIPES:READ:a", "PIPES:READ:b")
MANAGEMENT = ("KEYS:WRITE", "TOKENS:CREATE")
EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
JWT_TYPE = "urn:ietf:params:oauth:token-type:jwt"
Filter = frozenset[int] | None
"""``None``: unfiltered; a set: ``org`` IN the set."""
NO, EMPTY = "not covered", "filters do not meet"


@dataclass
class Key:
    id: str
    secret: str
    parent: str | None
    grants: dict[str, Filter]
    limit: int | None
    enabled: bool = True
    revoked: bool = False

    @property
    def admin(self) -> bool:
        return "ADMIN" in self.grants


@dataclass
class Token:
    jwt: str
    key: str
    """The key it was minted from (``client_id``)."""
    grants: dict[str, Filter]
    revoked: bool = False


def covering(grants: dict[str, Filter], scope: str) -> tuple[bool, Filter]:
    """Whether ``grants`` cover ``scope`` and with which filter."""
    if "ADMIN" in grants:
        return True, None
    if scope in grants:
        return True, grants[scope]
    kind, _, resource = scope.rpartition(":")
    if resource in RESOURCES and f"{kind}:*" in grants:
        return True, grants[f"{kind}:*"]
    return False, None


def meet(a: Filter, b: Filter) -> Filter | str:
    if a is None:
        return b
    if b is None:
        return a
    return (a & b) or EMPTY


@dataclass
class Model:
    keys: dict[str, Key] = field(default_factory=dict)
    tokens: list[Token] = field(default_factory=list)
    used: dict[str, int] = field(default_factory=dict)
    admitted: dict[str, int] = field(default_factory=dict)
    peak: dict[str, int] = field(default_factory=dict)

    def chain(self, key_id: str) -> list[Key]:
        out: list[Key] = []
        current: str | None = key_id
        while current is not None:
            out.append(self.keys[current])
            current = self.keys[current].parent
        return out

    def live(self, key_id: str) -> bool:
        return all(k.enabled and not k.revoked for k in self.chain(key_id))

    def effective(self, key_id: str, scope: str) -> Filter | str:
        """The filter ``key_id`` may use ``scope`` with now, or ``NO`` / ``EMPTY``."""
        result: Filter = None
        for level in self.chain(key_id):
            ok, flt = covering(level.grants, scope)
            if not ok:
                return NO
            met = meet(result, flt)
            if met == EMPTY:
                return EMPTY
            result = met  # type: ignore[assignment]
        return result

    def holds(self, key_id: str, scope: str) -> bool:
        return all(level.admin or scope in level.grants for level in self.chain(key_id))

    def in_subtree(self, root: str, key_id: str) -> bool:
        return any(k.id == root for k in self.chain(key_id))

    def counters(self, key_id: str, *, derived: bool) -> list[str]:
        return [
            level.id
            for depth, level in enumerate(self.chain(key_id))
            if level.limit is not None and not ((derived or depth > 0) and level.admin)
        ]

    def charge(self, counters: list[str]) -> bool:
        """One use: admitted only if every counter has room, then every counter pays."""
        if any(self.used.get(c, 0) >= (self.keys[c].limit or 0) for c in counters):
            return False
        for c in counters:
            self.used[c] = self.used.get(c, 0) + 1
        return True

    def served(self, counters: list[str]) -> None:
        """The server admitted a use charged on ``counters``."""
        for c in counters:
            self.admitted[c] = self.admitted.get(c, 0) + 1

    def grant_outcome(
        self, caller: Key, bound: dict[str, Filter] | None, wanted: dict[str, Filter]
    ) -> tuple[int, dict[str, Filter]]:
        """Down-scoping (§1) of ``wanted`` from ``bound`` (a key's own grants; ``None``: the
        caller's effective grants), then within the caller: 403 or the grants stored."""
        stored: dict[str, Filter] = {}
        for scope, flt in wanted.items():
            if scope in MANAGEMENT:
                if bound is not None and scope not in bound and "ADMIN" not in bound:
                    return 403, {}
                if not self.holds(caller.id, scope):
                    return 403, {}
                stored[scope] = None
                continue
            if bound is not None:
                ok, parent = covering(bound, scope)
            else:
                eff = self.effective(caller.id, scope)
                ok, parent = eff not in (NO, EMPTY), eff if isinstance(eff, frozenset) else None
            if not ok or (flt is not None and parent is not None and not flt <= parent):
                return 403, {}
            stored[scope] = flt if flt is not None else parent
        if bound is not None and not caller.admin:  # then within the caller, inheriting again
            for scope, flt in list(stored.items()):
                if scope in MANAGEMENT:
                    continue
                eff = self.effective(caller.id, scope)
                if eff in (NO, EMPTY):
                    return 403, {}
                if isinstance(eff, frozenset):
                    if flt is None:
                        stored[scope] = eff
                    elif not flt <= eff:
                        return 403, {}
        return 200, stored


def grant_body(scope: str, flt: Filter) -> Any:
    return scope if flt is None else {"scope": scope, "fixed_params": {"org": sorted(flt)}}


filters = st.one_of(st.none(), st.sampled_from([frozenset({1}), frozenset({2}), frozenset({1, 2})]))


@st.composite
def grant_sets(draw: st.DrawFn) -> dict[str, Filter]:
    out: dict[str, Filter] = {}
    if draw(st.booleans()):
        out["PIPES:READ:*"] = draw(filters)
    else:
        for resource in draw(st.lists(st.sampled_from(RESOURCES), unique=True, max_size=2)):
            out[f"PIPES:READ:{resource}"] = draw(filters)
    for scope in draw(st.lists(st.sampled_from(MANAGEMENT), unique=True, max_size=2)):
        out[scope] = None
    return out


_examples = itertools.count()


class Authority(RuleBasedStateMachine):
    backend = "sqlite"
    tmp = Path("/tmp")
    pg_url: str | None = None
    keys = Bundle("keys")

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.model = Model()
        self.stack = AsyncExitStack()
        self.names = itertools.count()
        self.client: httpx.AsyncClient = self.run(self._start())

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    async def _start(self) -> httpx.AsyncClient:
        settings_ = Settings(
            data_dir=self.tmp / f"machine-{next(_examples)}",
            database_url=self.pg_url if self.backend == "postgres" else None,
            secret_key=TEST_SECRET,
            base_url=BASE_URL,
        )
        self.clock = FrozenClock()
        services = build_services(settings_, clock=self.clock)
        await prepare_database(services)
        self.stack.push_async_callback(services.aclose)
        app = create_app(settings_, services=services)
        await self.stack.enter_async_context(lifespan(app))
        client = await self.stack.enter_async_context(
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE_URL)
        )
        operator = (await services.operators.create_key(actor="machine")).key
        r = await client.post("/v1/tenants", json={"name": "M"}, headers=bearer(operator))
        self.slug = r.json()["tenant"]["slug"]
        admin = r.json()["admin_key"]
        self.admin = Key(admin["id"], admin["key"], None, {"ADMIN": None}, None)
        self.model.keys[self.admin.id] = self.admin
        return client

    def teardown(self) -> None:
        self.run(self.stack.aclose())
        self.loop.close()

    # --- HTTP -----------------------------------------------------------------------------

    def call(self, caller: Key | None, method: str, path: str, **kw: Any) -> httpx.Response:
        headers = kw.pop("headers", {}) | ({} if caller is None else bearer(caller.secret))
        self.clock.advance(0.002)  # a call "after" a revocation is after it, as in real time
        r: httpx.Response = self.run(self.client.request(method, path, headers=headers, **kw))
        if caller is not None and not caller.admin:
            for other in self.model.keys.values():
                if not self.model.in_subtree(caller.id, other.id):
                    assert other.secret not in r.text, f"{caller.id} got {other.id}'s secret"
        return r

    def authenticate(self, caller: Key) -> int | None:
        """The status a call by ``caller`` stops at before its operation (401, 429), or
        ``None``: valid, and its limits admit (and are charged for) the call."""
        if not self.model.live(caller.id):
            return 401
        if not self.model.charge(self.model.counters(caller.id, derived=False)):
            return 429
        return None

    def observe(self, caller: Key, status: int) -> None:
        """What the server did: a call that got past authentication was charged."""
        if status not in (401, 429):
            self.model.served(self.model.counters(caller.id, derived=False))

    def _check(self, r: httpx.Response, expected: int, *what: Any) -> None:
        assert r.status_code == expected, (*what, r.status_code, expected, r.text)

    # --- rules ----------------------------------------------------------------------------

    @initialize(target=keys)
    def root(self) -> Key:
        return self.admin

    @initialize(
        target=keys, grants=grant_sets(), limit=st.none() | st.integers(3, 6), data=st.data()
    )
    def manager(self, grants: dict[str, Filter], limit: int | None, data: st.DataObject) -> Any:
        """A second root that manages keys, and a child of it: most sequences start with a
        lineage to narrow, revoke and attack."""
        manager = self._create(self.admin, {**grants, "KEYS:WRITE": None}, limit)
        assert manager is not None
        child = self._create(manager, self._within(manager, data), None)
        return multiple(manager, *([child] if child else []))

    @rule(target=keys, caller=keys, limit=st.none() | st.integers(2, 5), data=st.data())
    def create_child_within(self, caller: Key, limit: int | None, data: st.DataObject) -> Any:
        """Some of what the caller holds: the lineages worth narrowing and attacking."""
        return self._create(caller, self._within(caller, data), limit) or multiple()

    @staticmethod
    def _within(caller: Key, data: st.DataObject) -> dict[str, Filter]:
        held = [s for s in caller.grants if s != "ADMIN"] or list(MANAGEMENT)
        kept = data.draw(st.lists(st.sampled_from(held), unique=True, min_size=1))
        return {s: caller.grants.get(s) for s in kept}

    @rule(target=keys, caller=keys, grants=grant_sets(), limit=st.none() | st.integers(2, 5))
    def create_child(self, caller: Key, grants: dict[str, Filter], limit: int | None) -> Any:
        return self._create(caller, grants, limit) or multiple()

    def _create(self, caller: Key, grants: dict[str, Filter], limit: int | None) -> Key | None:
        body: dict[str, Any] = {
            "name": f"k{next(self.names)}",
            "scopes": [grant_body(s, f) for s, f in grants.items()] or ["TOKENS:CREATE"],
        }
        if not grants:
            grants = {"TOKENS:CREATE": None}
        if limit is not None:
            body["ratelimits"] = [{"name": "l", "limit": limit, "period_s": 3600}]
        expected = self.authenticate(caller)
        stored: dict[str, Filter] = {}
        if expected is None:
            if not self.model.holds(caller.id, "KEYS:WRITE"):
                expected = 403
            else:
                status, stored = self.model.grant_outcome(caller, None, grants)
                deep = not caller.admin and len(self.model.chain(caller.id)) >= 8
                expected = status if status != 200 else 400 if deep else 201
        r = self.call(caller, "POST", "/v1/keys", json=body)
        self.observe(caller, r.status_code)
        self._check(r, expected, "create", caller.id, grants)
        if r.status_code != 201:
            return None
        parent = None if caller.admin else caller.id
        assert r.json()["parent_id"] == parent
        key = Key(r.json()["id"], r.json()["key"], parent, stored, limit)
        self.model.keys[key.id] = key
        if limit is not None:
            self.model.peak[key.id] = limit
        return key

    @rule(
        caller=keys,
        victim=keys,
        change=st.sampled_from(["narrow", "widen", "disable", "enable", "drop_limit", "tighten"]),
    )
    def patch(self, caller: Key, victim: Key, change: str) -> None:
        target = victim
        if target.admin and change in ("narrow", "widen", "disable"):
            return  # keep the tenant's root a usable ADMIN key (the invariants verify with it)
        body, wanted = self._change_body(target, change)
        if body is None:
            return
        expected = self.authenticate(caller)
        stored: dict[str, Filter] = target.grants
        if expected is None:
            if not self.model.holds(caller.id, "KEYS:WRITE"):
                expected = 403
            elif not (caller.admin or self.model.in_subtree(caller.id, target.id)):
                expected = 404
            elif caller.admin:
                expected, stored = 200, (wanted if wanted is not None else target.grants)
            elif wanted is not None:
                expected, stored = self.model.grant_outcome(caller, target.grants, wanted)
            else:
                expected = 200 if self._narrows(target, change) else 403
        before = self.call(self.admin, "GET", f"/v1/keys/{target.id}").json()
        r = self.call(caller, "PATCH", f"/v1/keys/{target.id}", json=body)
        self.observe(caller, r.status_code)
        self._check(r, expected, "patch", change, caller.id, target.id)
        if r.status_code != 200:
            assert self.call(self.admin, "GET", f"/v1/keys/{target.id}").json() == before
            return
        if wanted is not None:
            target.grants = stored
        elif change in ("disable", "enable"):
            target.enabled = change == "enable"
        elif change == "drop_limit":
            target.limit = None
        else:
            target.limit = body["ratelimits"][0]["limit"]

    changes = st.sampled_from(["narrow", "widen", "disable", "enable", "drop_limit", "tighten"])

    @rule(caller=keys, change=changes)
    def patch_itself(self, caller: Key, change: str) -> None:
        """§8: "anything that loosens, also on its own key, is 403"."""
        self.patch(caller, caller, change)

    @rule(caller=keys, change=changes, data=st.data())
    def patch_descendant(self, caller: Key, change: str, data: st.DataObject) -> None:
        below = [k for k in self.model.keys.values() if self.model.in_subtree(caller.id, k.id)]
        self.patch(caller, data.draw(st.sampled_from(below)), change)

    def _change_body(
        self, target: Key, change: str
    ) -> tuple[dict[str, Any] | None, dict[str, Filter] | None]:
        """The PATCH body, and the grants it asks for (``None``: not a grants change)."""
        if change == "narrow":
            wanted = {s: f for s, f in target.grants.items() if s in MANAGEMENT or s.endswith("a")}
            wanted = wanted or {"KEYS:WRITE": None}
            return {"scopes": [grant_body(s, f) for s, f in wanted.items()]}, wanted
        if change == "widen":
            wanted = {s: None for s in target.grants if s in MANAGEMENT} | {"PIPES:READ:*": None}
            return {"scopes": list(wanted)}, wanted
        if change in ("disable", "enable"):
            return {"enabled": change == "enable"}, None
        if change == "drop_limit":
            return {"ratelimits": []}, None
        if target.limit is None:
            return None, None
        limit = max(1, target.limit - 1)
        return {"ratelimits": [{"name": "l", "limit": limit, "period_s": 3600}]}, None

    @staticmethod
    def _narrows(target: Key, change: str) -> bool:
        if change == "enable":
            return target.enabled
        if change == "drop_limit":
            return target.limit is None
        return True  # disable, tighten

    @rule(caller=keys, victim=keys)
    def reroll(self, caller: Key, victim: Key) -> None:
        target = victim
        expected = self.authenticate(caller)
        if expected is None:
            if not self.model.holds(caller.id, "KEYS:WRITE"):
                expected = 403
            elif not (caller.admin or self.model.in_subtree(caller.id, target.id)):
                expected = 404
            else:
                expected = 400 if target.revoked else 200
        r = self.call(caller, "POST", f"/v1/keys/{target.id}/reroll", json={"grace_s": 0})
        self.observe(caller, r.status_code)
        self._check(r, expected, "reroll", caller.id, target.id)
        if r.status_code == 200:
            target.secret = r.json()["key"]
            for token in self.model.tokens:
                token.revoked |= token.key == target.id

    @rule(caller=keys, victim=keys)
    def revoke(self, caller: Key, victim: Key) -> None:
        target = victim
        if target.admin:
            return  # keep a usable root
        expected = self.authenticate(caller)
        if expected is None:
            if not self.model.holds(caller.id, "KEYS:WRITE"):
                expected = 403
            elif not (caller.admin or self.model.in_subtree(caller.id, target.id)):
                expected = 404
            else:
                expected = 200
        r = self.call(caller, "DELETE", f"/v1/keys/{target.id}")
        self.observe(caller, r.status_code)
        self._check(r, expected, "revoke", caller.id, target.id)
        if r.status_code == 200:
            for key in self.model.keys.values():
                key.revoked |= self.model.in_subtree(target.id, key.id)
            for token in self.model.tokens:
                token.revoked |= token.key == target.id

    @rule(caller=keys, scope=st.sampled_from(DATA), oauth=st.booleans())
    def mint(self, caller: Key, scope: str, oauth: bool) -> None:
        expected = self.authenticate(caller)
        ok = 200 if oauth else 201
        eff = self.model.effective(caller.id, scope)
        if expected is None:
            if not oauth and not self.model.holds(caller.id, "TOKENS:CREATE"):
                expected = 403
            elif eff in (NO, EMPTY):
                expected = 400 if oauth else 403  # invalid_scope / SCOPE_ESCALATION
            else:
                expected = ok
        if oauth:
            r = self.call(
                None,
                "POST",
                f"/t/{self.slug}/oauth2/token",
                data={"grant_type": "client_credentials", "scope": scope},
                auth=(caller.id, caller.secret),
            )
        else:
            r = self.call(caller, "POST", "/v1/tokens", json={"scopes": [scope]})
        self.observe(caller, r.status_code)
        self._check(r, expected, "mint", oauth, caller.id, scope)
        if r.status_code == ok:
            jwt = r.json()["access_token" if oauth else "token"]
            flt = eff if isinstance(eff, frozenset) else None
            self.model.tokens.append(Token(jwt, caller.id, {scope: flt}))

    @rule(caller=keys, data=st.data())
    def exchange(self, caller: Key, data: st.DataObject) -> None:
        if not self.model.tokens:
            return
        subject = data.draw(st.sampled_from(self.model.tokens))
        scope = next(iter(subject.grants))
        expected = self.authenticate(caller)
        charged: list[str] = []
        if expected is None:
            expected = 400  # unauthorized_client, invalid_request or invalid_scope
            if (
                self.model.holds(caller.id, "TOKENS:CREATE")
                and not subject.revoked
                and self.model.live(subject.key)
            ):
                counters = self.model.counters(subject.key, derived=True)
                if self.model.charge(counters):  # checking the subject is one use of it
                    charged = counters
                    expected = 200 if self._token_valid(subject, scope) else 400
        r = self.call(
            None,
            "POST",
            f"/t/{self.slug}/oauth2/token",
            data={
                "grant_type": EXCHANGE,
                "subject_token": subject.jwt,
                "subject_token_type": JWT_TYPE,
                "scope": scope,
            },
            auth=(caller.id, caller.secret),
        )
        self.observe(caller, r.status_code)
        self._check(r, expected, "exchange", caller.id, subject.key)
        self.model.served(charged)
        if r.status_code == 200:
            now = meet(
                subject.grants[scope], self._as_filter(self.model.effective(subject.key, scope))
            )
            flt = now if isinstance(now, frozenset) else None
            self.model.tokens.append(Token(r.json()["access_token"], subject.key, {scope: flt}))

    def _token_valid(self, token: Token, scope: str) -> bool:
        if token.revoked or not self.model.live(token.key):
            return False
        met = meet(token.grants[scope], self._as_filter(self.model.effective(token.key, scope)))
        return self.model.effective(token.key, scope) not in (NO, EMPTY) and met != EMPTY

    @staticmethod
    def _as_filter(value: Filter | str) -> Filter:
        return value if isinstance(value, frozenset) else None

    @rule(data=st.data())
    def verify_token(self, data: st.DataObject) -> None:
        if not self.model.tokens:
            return
        token = data.draw(st.sampled_from(self.model.tokens))
        scope = data.draw(st.sampled_from(DATA))
        r = self.call(self.admin, "POST", "/v1/verify", json={"token": token.jwt, "scope": scope})
        code = r.json()["code"]
        if token.revoked or not self.model.live(token.key):
            assert code in ("REVOKED", "DISABLED"), (code, r.text)
            return
        if scope not in token.grants or not self._token_valid(token, scope):
            assert code == "FORBIDDEN", (code, r.text)
            return
        counters = self.model.counters(token.key, derived=True)
        if self.model.charge(counters):
            assert code == "VALID", r.text
        else:
            assert code == "RATE_LIMITED", r.text
        if code == "VALID":
            self.model.served(counters)

    @rule(key=keys, scope=st.sampled_from((*DATA, "PIPES:READ:*", *MANAGEMENT)))
    def verify_key(self, key: Key, scope: str) -> None:
        r = self.call(self.admin, "POST", "/v1/verify", json={"token": key.secret, "scope": scope})
        verdict = r.json()
        if not self.model.live(key.id):
            assert verdict["code"] in ("REVOKED", "DISABLED"), verdict
            return
        if scope in MANAGEMENT:
            allowed: Filter | str = None if self.model.holds(key.id, scope) else NO
        else:
            allowed = self.model.effective(key.id, scope)
        if allowed in (NO, EMPTY):
            assert verdict["code"] == "FORBIDDEN", (key.id, scope, verdict)
            return
        counters = self.model.counters(key.id, derived=False)
        if not self.model.charge(counters):
            assert verdict["code"] == "RATE_LIMITED", verdict
            return
        self.model.served(counters)
        assert verdict["code"] == "VALID", (key.id, scope, verdict)
        got = verdict["fixed_params"].get("org")
        expected = None if allowed is None else sorted(allowed)  # type: ignore[arg-type]
        assert (sorted(got) if isinstance(got, list) else got) == expected or (
            expected is not None and [got] == expected
        ), (key.id, scope, got, expected)

    # --- invariants -----------------------------------------------------------------------

    @invariant()
    def live_credentials_never_verify_wider_than_their_ancestors(self) -> None:
        for key in list(self.model.keys.values())[-4:]:
            for scope in ("PIPES:READ:a", "PIPES:READ:b", "KEYS:WRITE"):
                r = self.call(
                    self.admin,
                    "POST",
                    "/v1/verify",
                    json={"token": key.secret, "scope": scope, "cost": 0},
                )
                verdict = r.json()
                if not self.model.live(key.id):
                    assert verdict["code"] != "VALID", (key.id, verdict)
                    continue
                if verdict["code"] != "VALID":
                    continue
                got = verdict["fixed_params"].get("org")
                got_set = None if got is None else set(got if isinstance(got, list) else [got])
                for level in self.model.chain(key.id):
                    covered, flt = covering(level.grants, scope)
                    assert covered, (key.id, scope, level.id)
                    if flt is not None:
                        assert got_set is not None, (key.id, scope, verdict)
                        assert got_set <= flt, (key.id, scope, got, flt)

    @invariant()
    def admitted_uses_never_exceed_the_highest_limit(self) -> None:
        for counter, count in self.model.admitted.items():
            peak = self.model.peak.get(counter)
            if peak is not None:
                assert count <= peak, (counter, count, peak)


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_no_sequence_of_calls_ends_with_more_power(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    Authority.backend = backend
    Authority.tmp = tmp_path
    Authority.pg_url = request.getfixturevalue("pg_url") if backend == "postgres" else None
    Authority.TestCase.settings = settings(
        max_examples=60 if backend == "sqlite" else 25,
        stateful_step_count=30,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    Authority.TestCase().runTest()
