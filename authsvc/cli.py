"""The ``authsvc`` command. Every subcommand goes through the same services as the HTTP API."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict
from typing import Any

from authsvc.db import migrate
from authsvc.errors import AuthsvcError, Code, InvalidRequest
from authsvc.issuers.state import IssuerState
from authsvc.principal import Principal
from authsvc.private_paths import make_private_dir
from authsvc.scopes import ADMIN, Grant, Scope
from authsvc.services import Services, build_services
from authsvc.settings import Settings


def _settings(args: argparse.Namespace) -> Settings:
    return Settings.from_env(host=getattr(args, "host", None), port=getattr(args, "port", None))


def _run(args: argparse.Namespace, fn: Callable[[Services], Awaitable[Any]]) -> Any:
    settings = _settings(args)
    if settings.embedded:
        make_private_dir(settings.data_dir)
        migrate.upgrade(settings.effective_database_url)

    async def main() -> Any:
        services = build_services(settings)
        try:
            return await fn(services)
        finally:
            await services.aclose()

    return asyncio.run(main())


def _print(obj: Any) -> None:
    print(json.dumps(obj, indent=2, default=str))


async def _tenant_principal(services: Services, ref: str) -> Principal:
    """Act for a tenant as its administrator (the CLI runs with the operator's authority)."""
    tenant = await services.tenants.get_by_ref(ref)
    return Principal(
        kind="operator",
        id="cli",
        tenant_id=tenant.id,
        tenant_slug=tenant.slug,
        grants=(Grant(Scope(ADMIN)),),
    )


async def _has_usable_operator_key(services: Services) -> bool:
    return any(k.revoked_at is None for k in await services.operators.list_keys())


async def _current_revision(services: Services) -> str | None:
    async with services.engine.connect() as conn:
        return await conn.run_sync(migrate.current_revision)


# --- commands --------------------------------------------------------------------------------


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    settings = _settings(args)
    if args.workers > 1 and settings.redis_url is None:
        # Without Redis the limiter and the revocation bus live in each process: N workers
        # would admit N times every limit.
        print(
            f"authsvc: --workers {args.workers} needs AUTHSVC_REDIS_URL: without Redis each "
            "worker keeps its own rate limits and revocation state, so every limit would be "
            f"{args.workers}x. Set AUTHSVC_REDIS_URL or run one worker.",
            file=sys.stderr,
        )
        return 2
    # Workers build their settings from the environment: hand them the CLI's choices.
    os.environ["AUTHSVC_HOST"], os.environ["AUTHSVC_PORT"] = settings.host, str(settings.port)
    if settings.embedded:
        has_operator = _run(args, _has_usable_operator_key)
        print(f"authsvc: embedded mode, data in {settings.data_dir.resolve()}")
        if not has_operator:
            print("authsvc: no usable operator key; create one with:  authsvc init")
    elif _run(args, _current_revision) != migrate.head_revision():
        print(
            "authsvc: the database schema is not current; run: authsvc db upgrade", file=sys.stderr
        )
        return 2
    print(f"authsvc: listening on {settings.effective_base_url}  (OpenAPI at /schema)", flush=True)
    if settings.base_url_guessed:
        print(
            f"authsvc: bound to all interfaces ({settings.host}): issuers use "
            f"{settings.effective_base_url}; set AUTHSVC_BASE_URL to the URL clients use",
            file=sys.stderr,
        )
    uvicorn.run(
        "authsvc.app:app_from_env",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=args.workers,
        log_level=settings.log_level.lower(),
        access_log=False,
    )
    return 0


def cmd_init(args: argparse.Namespace) -> int:
    created = _run(args, lambda s: s.operators.create_key(actor="cli"))
    if args.json:
        print(json.dumps({"operator_key": created.key}))
        return 0
    base = _settings(args).effective_base_url
    print("Operator key (shown once, store it now):")
    print(f"  {created.key}")
    print("Create a tenant:")
    print(f"  curl -s -X POST {base}/v1/tenants -H 'Authorization: Bearer <operator key>' \\")
    print("    -H 'Content-Type: application/json' -d '{\"name\": \"Acme\"}'")
    return 0


def cmd_db(args: argparse.Namespace) -> int:
    settings = _settings(args)
    if settings.embedded:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    url = settings.effective_database_url
    if args.action == "upgrade":
        migrate.upgrade(url, args.revision or "head")
    elif args.action == "downgrade":
        migrate.downgrade(url, args.revision or "-1")
    else:
        current = asyncio.run(_check_current(settings))
        head = migrate.head_revision()
        print(f"current: {current}  head: {head}")
        return 0 if current == head else 1
    print(f"database {args.action} done")
    return 0


async def _check_current(settings: Settings) -> str | None:
    services = build_services(settings)
    try:
        return await _current_revision(services)
    finally:
        await services.aclose()


def cmd_operator_key(args: argparse.Namespace) -> int:
    async def go(s: Services) -> Any:
        if args.action == "create":
            created = await s.operators.create_key(actor="cli")
            return {"id": created.id, "key": created.key}
        if args.action == "list":
            return [asdict(k) for k in await s.operators.list_keys()]
        return asdict(await s.operators.revoke(args.key_id, actor="cli"))

    _print(_run(args, go))
    return 0


def cmd_tenant(args: argparse.Namespace) -> int:
    async def go(s: Services) -> Any:
        if args.action == "create":
            tenant, admin = await s.tenants.create(name=args.name, slug=args.slug, actor="cli")
            return {
                "tenant": {"id": tenant.id, "slug": tenant.slug, "name": tenant.name},
                "admin_key": {"id": admin.info.id, "key": admin.key},
            }
        if args.action == "list":
            rows, _ = await s.tenants.list(limit=200, cursor=None)
            return [
                {"id": t.id, "slug": t.slug, "name": t.name, "enabled": t.enabled} for t in rows
            ]
        p = await _tenant_principal(s, args.tenant)
        t = await s.tenants.disable(p.tenant, actor="cli")
        return {"id": t.id, "slug": t.slug, "enabled": t.enabled}

    _print(_run(args, go))
    return 0


def cmd_key(args: argparse.Namespace) -> int:
    async def go(s: Services) -> Any:
        p = await _tenant_principal(s, args.tenant)
        if args.action == "create":
            created = await s.keys.create(p, name=args.name, scopes=args.scope)
            return {"id": created.info.id, "key": created.key, "start": created.info.start}
        if args.action == "list":
            rows, _ = await s.keys.list(p, limit=200, cursor=None)
            return [
                {
                    "id": k.id,
                    "name": k.name,
                    "start": k.start,
                    "scopes": [str(g.scope) for g in k.grants],
                    "revoked": k.revoked_at is not None,
                }
                for k in rows
            ]
        info = await s.keys.revoke(p, args.key_id)
        return {"id": info.id, "revoked_at": info.revoked_at}

    _print(_run(args, go))
    return 0


def cmd_signing_key(args: argparse.Namespace) -> int:
    async def go(s: Services) -> Any:
        p = await _tenant_principal(s, args.tenant)
        if args.action == "rotate":
            await s.signing.rotate(p.tenant, actor="cli")
        return [
            {"kid": k.kid, "alg": k.alg, "state": k.state, "created_at": k.created_at}
            for k in await s.signing.list_keys(p.tenant)
        ]

    _print(_run(args, go))
    return 0


def cmd_token(args: argparse.Namespace) -> int:
    async def go(s: Services) -> Any:
        p = await _tenant_principal(s, args.tenant)
        revoked = await s.tokens.revoke(p, jti=args.jti, sub=args.sub, key_id=args.key_id)
        return {"revoked": revoked.field, "value": revoked.value, "cutoff": revoked.cutoff}

    _print(_run(args, go))
    return 0


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    if len({name for name, _ in pairs}) != len(pairs):
        raise InvalidRequest("--grant names the same member twice.", code=Code.DUPLICATE_MEMBER)
    return dict(pairs)


def _grant(text: str) -> str | dict[str, Any]:
    """A ``--grant``: a JSON object (``{"scope": …, "fixed_params": …}``) or a plain scope."""
    if not text.lstrip().startswith("{"):
        return text
    try:
        grant: dict[str, Any] = json.loads(text, object_pairs_hook=_no_duplicates)
    except ValueError:
        raise InvalidRequest(
            "--grant is a scope or a JSON object like "
            '{"scope": "PIPES:READ:orders", "fixed_params": {"org_id": {"claim": "org_id"}}}.',
            code=Code.INVALID_SCOPE,
        ) from None
    return grant


def _issuer_summary(state: IssuerState) -> dict[str, Any]:
    return {
        "id": state.id,
        "issuer": state.issuer,
        "enabled": state.enabled,
        "audiences": list(state.audiences),
        "allowed_origins": list(state.allowed_origins),
        "grants": [t.to_json() for t in state.grants],
    }


def _issuer_full(state: IssuerState) -> dict[str, Any]:
    return {
        **_issuer_summary(state),
        "jwks_uri": state.jwks_uri,
        "algorithms": sorted(state.algorithms),
        "subject_claim": state.subject_claim.text,
        "ttl_s": state.ttl_s,
        "created_at": state.created_at,
    }


def cmd_trusted_issuer(args: argparse.Namespace) -> int:
    async def go(s: Services) -> Any:
        p = await _tenant_principal(s, args.tenant)
        if args.action == "list":
            out: list[dict[str, Any]] = []
            cursor: str | None = None
            while True:
                page, cursor = await s.issuers.list(p, limit=200, cursor=cursor)
                out.extend(_issuer_summary(state) for state in page)
                if cursor is None:
                    return out
        if args.action == "create":
            body: dict[str, Any] = {
                "issuer": args.issuer,
                "audiences": args.audience,
                "grants": [_grant(g) for g in args.grant],
                "allowed_origins": args.origin or [],
            }
            optional = {
                "jwks_uri": args.jwks_uri,
                "subject_claim": args.subject_claim,
                "algorithms": args.algorithm,
                "ttl_s": args.ttl_s,
            }
            body.update({k: v for k, v in optional.items() if v is not None})
            return _issuer_full(await s.issuers.create(p, body))
        return _issuer_summary(await s.issuers.update(p, args.issuer_id, {"enabled": False}))

    _print(_run(args, go))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="authsvc", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the HTTP service")
    serve.add_argument("--host", default=None)
    serve.add_argument("--port", type=int, default=None)
    serve.add_argument("--workers", type=int, default=1)
    serve.set_defaults(func=cmd_serve)

    init = sub.add_parser("init", help="create an operator key and print it once")
    init.add_argument("--json", action="store_true")
    init.set_defaults(func=cmd_init)

    db = sub.add_parser("db", help="schema migrations (Alembic)")
    db.add_argument("action", choices=["upgrade", "downgrade", "check"])
    db.add_argument("revision", nargs="?")
    db.set_defaults(func=cmd_db)

    opk = sub.add_parser("operator-key", help="list, create and revoke operator keys")
    opksub = opk.add_subparsers(dest="action", required=True)
    opksub.add_parser("list")
    opksub.add_parser("create", help="a new operator key, printed once")
    opksub.add_parser("revoke", help="refused at once by running servers").add_argument("key_id")
    opk.set_defaults(func=cmd_operator_key)

    tenant = sub.add_parser("tenant", help="manage tenants")
    tsub = tenant.add_subparsers(dest="action", required=True)
    tc = tsub.add_parser("create")
    tc.add_argument("name")
    tc.add_argument("--slug")
    tsub.add_parser("list")
    td = tsub.add_parser("disable")
    td.add_argument("tenant", help="tenant id or slug")
    tenant.set_defaults(func=cmd_tenant)

    key = sub.add_parser("key", help="manage a tenant's API keys")
    ksub = key.add_subparsers(dest="action", required=True)
    kc = ksub.add_parser("create")
    kc.add_argument("tenant", help="tenant id or slug")
    kc.add_argument("--name", required=True)
    kc.add_argument("--scope", action="append", required=True, help="repeatable")
    kl = ksub.add_parser("list")
    kl.add_argument("tenant")
    kr = ksub.add_parser("revoke")
    kr.add_argument("tenant")
    kr.add_argument("key_id")
    key.set_defaults(func=cmd_key)

    sk = sub.add_parser("signing-key", help="a tenant's JWT signing keys")
    sksub = sk.add_subparsers(dest="action", required=True)
    for action in ("list", "rotate"):
        sksub.add_parser(action).add_argument("tenant", help="tenant id or slug")
    sk.set_defaults(func=cmd_signing_key)

    token = sub.add_parser("token", help="revoke a tenant's JWTs")
    toksub = token.add_subparsers(dest="action", required=True)
    tr = toksub.add_parser("revoke", help="give exactly one of --jti, --sub, --key-id")
    tr.add_argument("tenant", help="tenant id or slug")
    tr.add_argument("--jti")
    tr.add_argument("--sub")
    tr.add_argument("--key-id", dest="key_id")
    token.set_defaults(func=cmd_token)

    ti = sub.add_parser("trusted-issuer", help="a tenant's trusted identity providers")
    tisub = ti.add_subparsers(dest="action", required=True)
    tisub.add_parser("list").add_argument("tenant", help="tenant id or slug")
    tic = tisub.add_parser("create", help="trust an OIDC issuer (nothing is fetched now)")
    tic.add_argument("tenant", help="tenant id or slug")
    tic.add_argument("--issuer", required=True, help="the exact iss of its tokens")
    tic.add_argument("--audience", action="append", required=True, help="repeatable")
    tic.add_argument(
        "--grant",
        action="append",
        required=True,
        help='repeatable: a scope, or {"scope": …, "fixed_params": {"org": {"claim": "org"}}}',
    )
    tic.add_argument("--origin", action="append", help="a browser origin allowed (repeatable)")
    tic.add_argument("--jwks-uri", dest="jwks_uri", help="default: OIDC discovery")
    tic.add_argument("--subject-claim", dest="subject_claim", help="default: sub")
    tic.add_argument("--algorithm", action="append", help="repeatable (RS256, PS256, ES256, EdDSA)")
    tic.add_argument("--ttl-s", dest="ttl_s", type=int, help="lifetime of the minted tokens")
    tid = tisub.add_parser("disable", help="its tokens are refused at once")
    tid.add_argument("tenant", help="tenant id or slug")
    tid.add_argument("issuer_id")
    ti.set_defaults(func=cmd_trusted_issuer)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.func(args)
    except AuthsvcError as exc:
        print(f"authsvc: {exc.message} ({exc.code})", file=sys.stderr)
        return 1
    return code


if __name__ == "__main__":
    sys.exit(main())
