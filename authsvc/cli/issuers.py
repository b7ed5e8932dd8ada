"""``authsvc trusted-issuer``: a tenant's trusted identity providers, and the ``--grant``
syntax (a scope or a JSON grant template)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from authsvc.cli.runner import print_json, run, tenant_principal
from authsvc.errors import Code, InvalidRequest
from authsvc.issuers.state import IssuerState
from authsvc.services import Services


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
        p = await tenant_principal(s, args.tenant)
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

    print_json(run(args, go))
    return 0


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
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
