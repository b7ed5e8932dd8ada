"""Commands on operator keys and on a tenant and what it holds: ``operator-key``, ``tenant``,
``key``, ``signing-key`` and ``token``."""

from __future__ import annotations

import argparse
from dataclasses import asdict
from typing import Any

from authsvc.cli.runner import print_json, run, tenant_principal
from authsvc.services import Services


def cmd_operator_key(args: argparse.Namespace) -> int:
    async def go(s: Services) -> Any:
        if args.action == "create":
            created = await s.operators.create_key(actor="cli")
            return {"id": created.id, "key": created.key}
        if args.action == "list":
            return [asdict(k) for k in await s.operators.list_keys()]
        return asdict(await s.operators.revoke(args.key_id, actor="cli"))

    print_json(run(args, go))
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
        p = await tenant_principal(s, args.tenant)
        t = await s.tenants.disable(p.tenant, actor="cli")
        return {"id": t.id, "slug": t.slug, "enabled": t.enabled}

    print_json(run(args, go))
    return 0


def cmd_key(args: argparse.Namespace) -> int:
    async def go(s: Services) -> Any:
        p = await tenant_principal(s, args.tenant)
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

    print_json(run(args, go))
    return 0


def cmd_signing_key(args: argparse.Namespace) -> int:
    async def go(s: Services) -> Any:
        p = await tenant_principal(s, args.tenant)
        if args.action == "rotate":
            await s.signing.rotate(p.tenant, actor="cli")
        return [
            {"kid": k.kid, "alg": k.alg, "state": k.state, "created_at": k.created_at}
            for k in await s.signing.list_keys(p.tenant)
        ]

    print_json(run(args, go))
    return 0


def cmd_token(args: argparse.Namespace) -> int:
    async def go(s: Services) -> Any:
        p = await tenant_principal(s, args.tenant)
        revoked = await s.tokens.revoke(p, jti=args.jti, sub=args.sub, key_id=args.key_id)
        return {"revoked": revoked.field, "value": revoked.value, "cutoff": revoked.cutoff}

    print_json(run(args, go))
    return 0


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
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
