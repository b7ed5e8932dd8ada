"""The ``authsvc`` command (the console entry point :func:`main`). Every subcommand goes through
the same services as the HTTP API.

One module per command group: :mod:`~authsvc.cli.server` (``serve``, ``init``),
:mod:`~authsvc.cli.database` (``db``), :mod:`~authsvc.cli.tenants` (``operator-key``,
``tenant``, ``key``, ``signing-key``, ``token``) and :mod:`~authsvc.cli.issuers`
(``trusted-issuer``); :mod:`~authsvc.cli.runner` runs a command against the services.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from authsvc.cli import database, issuers, server, tenants
from authsvc.errors import AuthsvcError

__all__ = ["build_parser", "main"]

DESCRIPTION = (
    "The ``authsvc`` command. Every subcommand goes through the same services as the HTTP API."
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="authsvc", description=DESCRIPTION)
    sub = parser.add_subparsers(dest="command", required=True)
    for group in (server, database, tenants, issuers):
        group.add_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.func(args)
    except AuthsvcError as exc:
        print(f"authsvc: {exc.message} ({exc.code})", file=sys.stderr)
        return 1
    return code
