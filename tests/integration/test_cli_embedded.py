"""The new-user tour, end to end against real processes: ``authsvc serve`` with no settings,
``authsvc init``, then tenants and keys over HTTP. Once on the embedded default, once on the real
Postgres with ``AUTHSVC_DATABASE_URL``."""

from __future__ import annotations

import json
import os
import stat
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import REDIS_URL, TEST_SECRET
from tests.idp import Keys, Reply, serve, sign
from tests.server import clean_env, cli, free_port, running_server

pytestmark = pytest.mark.slow


def _tour(base: str, operator_key: str) -> None:
    with httpx.Client(base_url=base, timeout=10) as http:
        r = http.post(
            "/v1/tenants",
            json={"name": "Acme"},
            headers={"Authorization": f"Bearer {operator_key}"},
        )
        assert r.status_code == 201, r.text
        admin = {"Authorization": f"Bearer {r.json()['admin_key']['key']}"}
        r = http.post(
            "/v1/keys",
            json={
                "name": "backend",
                "scopes": ["KEYS:READ", {"scope": "PIPES:READ:orders", "fixed_params": {"org": 1}}],
            },
            headers=admin,
        )
        assert r.status_code == 201, r.text
        scoped = r.json()
        scoped_h = {"Authorization": f"Bearer {scoped['key']}"}
        r = http.get("/v1/keys", headers=scoped_h)
        assert r.status_code == 200
        assert {k["name"] for k in r.json()["data"]} == {"backend"}  # only its own subtree
        r = http.post("/v1/keys", json={"name": "x", "scopes": ["ADMIN"]}, headers=scoped_h)
        assert r.status_code == 403
        r = http.post(
            "/v1/keys", content=b"{nope", headers={**admin, "Content-Type": "application/json"}
        )
        assert r.status_code == 400
        assert r.json()["code"] == "INVALID_REQUEST"
        assert http.delete(f"/v1/keys/{scoped['id']}", headers=admin).status_code == 200
        r = http.get("/v1/keys", headers=scoped_h)
        assert r.status_code == 401
        assert scoped["key"] not in r.text


def test_serve_with_no_settings_creates_data_dir_and_secret_file(tmp_path: Path) -> None:
    env = clean_env()
    with running_server(tmp_path, env) as (base, _):
        secret = tmp_path / ".authsvc" / "master.key"
        assert secret.exists()
        assert stat.S_IMODE(secret.stat().st_mode) == 0o600
        assert (tmp_path / ".authsvc" / "authsvc.db").exists()
        out = cli("init", "--json", cwd=tmp_path, env=env)
        assert out.returncode == 0, out.stderr
        operator_key = json.loads(out.stdout)["operator_key"]
        assert operator_key.startswith("aso_")
        _tour(base, operator_key)


def test_embedded_data_dir_is_0700_and_its_files_0600(tmp_path: Path) -> None:
    env = clean_env()
    umask = os.umask(0o022)  # the usual default, under which SQLite would create files 0644
    try:
        with running_server(tmp_path, env) as (base, _):
            out = cli("init", "--json", cwd=tmp_path, env=env)
            assert out.returncode == 0, out.stderr
            operator = json.loads(out.stdout)["operator_key"]
            # The server's pooled connection keeps the WAL and shared-memory files open.
            r = httpx.post(
                f"{base}/v1/tenants",
                json={"name": "Modes"},
                headers={"Authorization": f"Bearer {operator}"},
            )
            assert r.status_code == 201, r.text
            data = tmp_path / ".authsvc"
            modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in [data, *data.iterdir()]}
    finally:
        os.umask(umask)
    assert modes == {
        ".authsvc": 0o700,
        "authsvc.db": 0o600,
        "authsvc.db-wal": 0o600,
        "authsvc.db-shm": 0o600,
        "master.key": 0o600,
    }


def test_init_without_json_prints_key_once_and_a_next_step(tmp_path: Path) -> None:
    out = cli("init", cwd=tmp_path, env=clean_env())
    assert out.returncode == 0, out.stderr
    assert "aso_" in out.stdout
    assert "/v1/tenants" in out.stdout


def test_cli_tenant_and_key_commands_use_the_service_layer(tmp_path: Path) -> None:
    env = clean_env()
    out = cli("tenant", "create", "Globex", "--slug", "globex", cwd=tmp_path, env=env)
    assert out.returncode == 0, out.stderr
    created = json.loads(out.stdout)
    assert created["tenant"]["slug"] == "globex"
    out = cli(
        "key",
        "create",
        "globex",
        "--name",
        "etl",
        "--scope",
        "PIPES:READ:events",
        cwd=tmp_path,
        env=env,
    )
    key = json.loads(out.stdout)
    assert key["key"].startswith("ask_")
    listed = json.loads(cli("key", "list", "globex", cwd=tmp_path, env=env).stdout)
    assert {k["name"] for k in listed} == {"admin", "etl"}
    out = cli("key", "revoke", "globex", key["id"], cwd=tmp_path, env=env)
    assert out.returncode == 0
    listed = json.loads(cli("key", "list", "globex", cwd=tmp_path, env=env).stdout)
    assert [k["revoked"] for k in listed if k["name"] == "etl"] == [True]
    out = cli(
        "key", "create", "globex", "--name", "bad", "--scope", "nonsense", cwd=tmp_path, env=env
    )
    assert out.returncode == 1
    assert "INVALID_SCOPE" in out.stderr
    assert "Traceback" not in out.stderr
    out = cli("tenant", "disable", "globex", cwd=tmp_path, env=env)
    assert json.loads(out.stdout)["enabled"] is False
    assert cli("db", "check", cwd=tmp_path, env=env).returncode == 0


@pytest.mark.postgres
def test_same_tour_passes_on_postgres(tmp_path: Path, pg_url: str) -> None:
    env = clean_env({"AUTHSVC_DATABASE_URL": pg_url, "AUTHSVC_SECRET_KEY": TEST_SECRET})
    assert cli("db", "upgrade", cwd=tmp_path, env=env).returncode == 0
    with running_server(tmp_path, env) as (base, _):
        out = cli("init", "--json", cwd=tmp_path, env=env)
        assert out.returncode == 0, out.stderr
        _tour(base, json.loads(out.stdout)["operator_key"])
    assert not (tmp_path / ".authsvc").exists()


def test_db_upgrade_creates_a_missing_data_dir_and_check_passes(tmp_path: Path) -> None:
    env = clean_env({"AUTHSVC_DATA_DIR": str(tmp_path / "new" / "data")})
    out = cli("db", "upgrade", cwd=tmp_path, env=env)
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "new" / "data" / "authsvc.db").is_file()
    assert cli("db", "check", cwd=tmp_path, env=env).returncode == 0


def test_db_check_fails_on_a_database_without_the_schema(tmp_path: Path) -> None:
    env = clean_env(
        {
            "AUTHSVC_DATABASE_URL": "postgresql+asyncpg://postgres@127.0.0.1:5432/test",
            "AUTHSVC_SECRET_KEY": TEST_SECRET,
        }
    )
    out = cli("db", "check", cwd=tmp_path, env=env)
    assert out.returncode == 1


def test_cli_rotates_signing_keys_and_revokes_tokens(tmp_path: Path) -> None:
    env = clean_env()
    assert (
        cli("tenant", "create", "Initech", "--slug", "initech", cwd=tmp_path, env=env).returncode
        == 0
    )
    before = json.loads(cli("signing-key", "list", "initech", cwd=tmp_path, env=env).stdout)
    assert sorted(k["state"] for k in before) == ["active", "next"]
    after = json.loads(cli("signing-key", "rotate", "initech", cwd=tmp_path, env=env).stdout)
    states = {k["kid"]: k["state"] for k in after}
    old_active = next(k["kid"] for k in before if k["state"] == "active")
    old_next = next(k["kid"] for k in before if k["state"] == "next")
    assert (states[old_active], states[old_next]) == ("retired", "active")
    out = cli("token", "revoke", "initech", "--sub", "user-7", cwd=tmp_path, env=env)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["revoked"] == "sub"
    out = cli("token", "revoke", "initech", cwd=tmp_path, env=env)
    assert out.returncode == 1
    assert "exactly one" in out.stderr


@pytest.mark.parametrize(
    "extra",
    [
        {},
        {
            "AUTHSVC_DATABASE_URL": "postgresql+asyncpg://postgres@127.0.0.1:5432/never_reached",
            "AUTHSVC_SECRET_KEY": TEST_SECRET,
        },
    ],
    ids=["sqlite", "postgres"],
)
def test_serve_with_several_workers_and_no_redis_exits_2_before_starting(
    tmp_path: Path, extra: dict[str, str]
) -> None:
    port = str(free_port())
    out = cli("serve", "--port", port, "--workers", "2", cwd=tmp_path, env=clean_env(extra))
    assert out.returncode == 2, out.stdout + out.stderr
    assert "AUTHSVC_REDIS_URL" in out.stderr
    assert "Traceback" not in out.stderr
    assert not (tmp_path / ".authsvc").exists()


def test_serve_with_several_workers_and_redis_shares_one_limit(tmp_path: Path) -> None:
    env = clean_env({"AUTHSVC_REDIS_URL": REDIS_URL})
    with running_server(tmp_path, env, args=("--workers", "2")) as (base, _):
        operator = json.loads(cli("init", "--json", cwd=tmp_path, env=env).stdout)["operator_key"]
        r = httpx.post(
            f"{base}/v1/tenants",
            json={"name": "Workers"},
            headers={"Authorization": f"Bearer {operator}"},
        )
        assert r.status_code == 201, r.text
        admin = {"Authorization": f"Bearer {r.json()['admin_key']['key']}"}
        r = httpx.post(
            f"{base}/v1/keys",
            json={
                "name": "reader",
                "scopes": ["KEYS:READ"],
                "ratelimits": [{"name": "mgmt", "limit": 5, "period_s": 60}],
            },
            headers=admin,
        )
        assert r.status_code == 201, r.text
        reader = {"Authorization": f"Bearer {r.json()['key']}"}
        # A new connection per request, so both workers take some of them.
        statuses = [httpx.get(f"{base}/v1/keys", headers=reader).status_code for _ in range(12)]
        assert sorted(statuses) == [200] * 5 + [429] * 7


def test_default_issuer_keeps_the_loopback_address_serve_was_given(tmp_path: Path) -> None:
    env = clean_env()
    with running_server(tmp_path, env, args=("--host", "127.0.0.1")) as (base, _):
        assert base.startswith("http://127.0.0.1:")
        operator = json.loads(cli("init", "--json", cwd=tmp_path, env=env).stdout)["operator_key"]
        r = httpx.post(
            f"{base}/v1/tenants",
            json={"name": "Issuer", "slug": "issuer"},
            headers={"Authorization": f"Bearer {operator}"},
        )
        assert r.status_code == 201, r.text
        r = httpx.get(f"{base}/.well-known/oauth-authorization-server/t/issuer")
        assert r.status_code == 200, r.text
        # RFC 8414 §3.3: the issuer must be identical to the one the client was configured with.
        assert r.json()["issuer"] == f"{base}/t/issuer"


def test_operator_key_revoked_by_cli_is_refused_by_the_running_server(
    tmp_path: Path, backend: str, request: pytest.FixtureRequest
) -> None:
    extra: dict[str, str] = {}
    if backend == "postgres":
        extra = {
            "AUTHSVC_DATABASE_URL": request.getfixturevalue("pg_url"),
            "AUTHSVC_SECRET_KEY": TEST_SECRET,
        }
    env = clean_env(extra)
    with running_server(tmp_path, env) as (base, _):
        out = cli("operator-key", "create", cwd=tmp_path, env=env)
        assert out.returncode == 0, out.stderr
        created = json.loads(out.stdout)
        auth = {"Authorization": f"Bearer {created['key']}"}
        r = httpx.post(f"{base}/v1/tenants", json={"name": "Before"}, headers=auth)
        assert r.status_code == 201, r.text
        out = cli("operator-key", "revoke", created["id"], cwd=tmp_path, env=env)
        assert out.returncode == 0, out.stderr
        assert json.loads(out.stdout)["revoked_at"] is not None
        r = httpx.post(f"{base}/v1/tenants", json={"name": "After"}, headers=auth)
        assert r.status_code == 401, r.text
    listed = json.loads(cli("operator-key", "list", cwd=tmp_path, env=env).stdout)
    mine = [k for k in listed if k["id"] == created["id"]]
    assert len(mine) == 1
    assert set(mine[0]) == {"id", "start", "created_at", "revoked_at"}
    assert mine[0]["start"] == created["key"][:10]
    assert mine[0]["revoked_at"] is not None
    out = cli("operator-key", "revoke", "opk_unknown", cwd=tmp_path, env=env)
    assert out.returncode == 1
    assert "NOT_FOUND" in out.stderr


def test_cli_trusts_an_issuer_and_disabling_it_refuses_its_tokens_on_the_running_server(
    tmp_path: Path,
) -> None:
    env = clean_env({"AUTHSVC_ALLOW_PRIVATE_ISSUERS": "true", "AUTHSVC_REVOCATION_POLL_S": "0.2"})
    created = json.loads(
        cli("tenant", "create", "Fed", "--slug", "fed", cwd=tmp_path, env=env).stdout
    )
    admin = {"Authorization": f"Bearer {created['admin_key']['key']}"}
    keys = Keys()
    with serve() as idp, running_server(tmp_path, env) as (base, _):
        idp.routes["/.well-known/openid-configuration"] = Reply.json(
            {"issuer": idp.url(), "jwks_uri": idp.url("/jwks")}
        )
        idp.routes["/jwks"] = Reply.json(keys.jwks())
        grant = '{"scope": "PIPES:READ:orders", "fixed_params": {"org_id": {"claim": "org_id"}}}'
        out = cli(
            "trusted-issuer", "create", "fed",
            "--issuer", idp.url(),
            "--audience", "urn:example:data",
            "--grant", grant,
            "--grant", "pipes:read:top",
            "--origin", "https://app.example",
            "--algorithm", "RS256",
            "--ttl-s", "300",
            cwd=tmp_path,
            env=env,
        )  # fmt: skip
        assert out.returncode == 0, out.stderr
        issuer = json.loads(out.stdout)
        assert issuer["id"].startswith("tis_")
        assert issuer["enabled"] is True
        assert issuer["grants"] == [
            {"scope": "PIPES:READ:orders", "fixed_params": {"org_id": {"claim": "org_id"}}},
            {"scope": "PIPES:READ:top", "fixed_params": {}},
        ]
        assert (issuer["algorithms"], issuer["ttl_s"]) == (["RS256"], 300)
        assert (issuer["jwks_uri"], issuer["subject_claim"]) == (None, "sub")
        assert idp.requests == []  # creation resolves the host, fetches nothing

        listed = json.loads(cli("trusted-issuer", "list", "fed", cwd=tmp_path, env=env).stdout)
        assert listed == [
            {
                k: issuer[k]
                for k in ("id", "issuer", "enabled", "audiences", "allowed_origins", "grants")
            }
        ]
        assert listed[0]["audiences"] == ["urn:example:data"]
        assert listed[0]["allowed_origins"] == ["https://app.example"]

        now = int(time.time())
        subject = sign(
            {"alg": "RS256", "kid": "rsa-1"},
            {"iss": idp.url(), "sub": "alice", "aud": "urn:example:data", "iat": now,
             "exp": now + 600, "org_id": 42},
            keys.rsa,
            "RS256",
        )  # fmt: skip
        r = httpx.post(
            f"{base}/t/fed/oauth2/token",
            data={
                "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
                "subject_token": subject,
                "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
                "scope": "PIPES:READ:orders",
            },
            headers={"Origin": "https://app.example"},
        )
        assert r.status_code == 200, r.text
        token = r.json()["access_token"]
        v = httpx.post(f"{base}/v1/verify", json={"token": token}, headers=admin).json()
        assert (v["code"], v["key_id"], v["fixed_params"]) == ("VALID", issuer["id"], {})
        assert v["scopes"] == [{"scope": "PIPES:READ:orders", "fixed_params": {"org_id": 42}}]

        out = cli("trusted-issuer", "disable", "fed", issuer["id"], cwd=tmp_path, env=env)
        assert out.returncode == 0, out.stderr
        assert json.loads(out.stdout)["enabled"] is False
        # Another process changed the database: the server learns it by polling (0.2 s).
        deadline = time.monotonic() + 5
        while (
            code := httpx.post(f"{base}/v1/verify", json={"token": token}, headers=admin).json()[
                "code"
            ]
        ) == "VALID":
            assert time.monotonic() < deadline, "the disabled issuer's token is still valid"
            time.sleep(0.05)
        assert code == "DISABLED"
    listed = json.loads(cli("trusted-issuer", "list", "fed", cwd=tmp_path, env=env).stdout)
    assert [i["enabled"] for i in listed] == [False]


REFUSED_ISSUERS = [
    (("--algorithm", "HS256"), "INVALID_ALG"),
    (("--algorithm", "none"), "INVALID_ALG"),
    (("--grant", "ADMIN"), "INVALID_SCOPE"),
    (("--grant", '{"scope": "PIPES:READ:x"'), "INVALID_SCOPE"),
    (("--grant", '{"scope": "PIPES:READ:x", "scope": "PIPES:READ:*"}'), "DUPLICATE_MEMBER"),
    (("--origin", "*"), "INVALID_ISSUER"),
    (("--ttl-s", "0"), "INVALID_TTL"),
    (("--subject-claim", ""), "INVALID_CLAIM_REF"),
]


def test_cli_refuses_an_invalid_trusted_issuer_with_exit_1_and_stores_nothing(
    tmp_path: Path,
) -> None:
    env = clean_env({"AUTHSVC_ALLOW_PRIVATE_ISSUERS": "true"})
    assert cli("tenant", "create", "Fed", "--slug", "fed", cwd=tmp_path, env=env).returncode == 0
    with serve() as idp:
        for extra, code in REFUSED_ISSUERS:
            out = cli(
                "trusted-issuer", "create", "fed",
                "--issuer", idp.url(), "--audience", "aud", "--grant", "PIPES:READ:x", *extra,
                cwd=tmp_path,
                env=env,
            )  # fmt: skip
            assert out.returncode == 1, (extra, out.stdout)
            assert f"({code})" in out.stderr, (extra, out.stderr)
            assert out.stderr.startswith("authsvc: ")
            assert "Traceback" not in out.stderr
        assert idp.requests == []
    assert json.loads(cli("trusted-issuer", "list", "fed", cwd=tmp_path, env=env).stdout) == []


def test_cli_trusted_issuer_refuses_a_private_issuer_by_default_and_an_unknown_id(
    tmp_path: Path,
) -> None:
    env = clean_env()
    assert cli("tenant", "create", "Fed", "--slug", "fed", cwd=tmp_path, env=env).returncode == 0
    with serve() as idp:
        out = cli(
            "trusted-issuer", "create", "fed",
            "--issuer", idp.url(), "--audience", "aud", "--grant", "PIPES:READ:x",
            cwd=tmp_path,
            env=env,
        )  # fmt: skip
        assert idp.connections == 0
    assert out.returncode == 1
    assert "(INVALID_ISSUER)" in out.stderr
    assert "private_address" in out.stderr or "not_https" in out.stderr
    out = cli("trusted-issuer", "disable", "fed", "tis_unknown", cwd=tmp_path, env=env)
    assert (out.returncode, "(NOT_FOUND)" in out.stderr) == (1, True)
    out = cli("trusted-issuer", "list", "nope", cwd=tmp_path, env=env)
    assert (out.returncode, "(NOT_FOUND)" in out.stderr) == (1, True)
