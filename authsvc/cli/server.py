"""Getting a server running: ``authsvc serve`` and ``authsvc init`` (the first operator key)."""

from __future__ import annotations

import argparse
import json
import os
import sys

from authsvc.cli.runner import current_revision, run, settings_of
from authsvc.db import migrate
from authsvc.services import Services


async def _has_usable_operator_key(services: Services) -> bool:
    return any(k.revoked_at is None for k in await services.operators.list_keys())


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from authsvc.web.protocol import NAME as PROTOCOL

    settings = settings_of(args)
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
        has_operator = run(args, _has_usable_operator_key)
        print(f"authsvc: embedded mode, data in {settings.data_dir.resolve()}")
        if not has_operator:
            print("authsvc: no usable operator key; create one with:  authsvc init")
    elif run(args, current_revision) != migrate.head_revision():
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
    # Server flags chosen by measurement (docs/benchmarks.md, "ASGI server"): httptools (h11
    # halves the floor) on the asyncio loop (uvloop: same throughput, 2-7x the p99), with
    # TCP_NODELAY set per connection (see authsvc.web.protocol).
    uvicorn.run(
        "authsvc.app:app_from_env",
        factory=True,
        http=PROTOCOL,
        loop="asyncio",
        host=settings.host,
        port=settings.port,
        workers=args.workers,
        log_level=settings.log_level.lower(),
        access_log=False,
    )
    return 0


def cmd_init(args: argparse.Namespace) -> int:
    created = run(args, lambda s: s.operators.create_key(actor="cli"))
    if args.json:
        print(json.dumps({"operator_key": created.key}))
        return 0
    base = settings_of(args).effective_base_url
    print("Operator key (shown once, store it now):")
    print(f"  {created.key}")
    print("Create a tenant:")
    print(f"  curl -s -X POST {base}/v1/tenants -H 'Authorization: Bearer <operator key>' \\")
    print("    -H 'Content-Type: application/json' -d '{\"name\": \"Acme\"}'")
    return 0


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    serve = sub.add_parser("serve", help="run the HTTP service")
    serve.add_argument("--host", default=None)
    serve.add_argument("--port", type=int, default=None)
    serve.add_argument("--workers", type=int, default=1)
    serve.set_defaults(func=cmd_serve)

    init = sub.add_parser("init", help="create an operator key and print it once")
    init.add_argument("--json", action="store_true")
    init.set_defaults(func=cmd_init)
