"""Typed settings, read from ``AUTHSVC_*`` environment variables.

Nothing here runs at import time: :meth:`Settings.from_env` is called by the CLI or by
the application factory, and tests build :class:`Settings` directly.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from authsvc.algorithms import ALGORITHMS, Alg
from authsvc.errors import ConfigurationError

WILDCARD_HOSTS = frozenset({"0.0.0.0", "::"})  # noqa: S104 (names the binds, does not bind)


@dataclass(frozen=True, slots=True)
class Settings:
    """Every setting of the service. The env variable is ``AUTHSVC_`` + the upper-cased name."""

    data_dir: Path = Path(".authsvc")
    """Embedded mode: where the SQLite file and the master secret file live."""
    database_url: str | None = None
    """SQLAlchemy async URL (``postgresql+asyncpg://…``). Unset: SQLite in ``data_dir``."""
    redis_url: str | None = None
    """``redis://…``. Unset: in-process rate limiter and revocation bus (one instance only)."""
    secret_key: str | None = None
    """Master secret (≥ 32 chars). Unset: generated once into ``data_dir/master.key`` (0600)."""
    previous_secret_keys: tuple[str, ...] = ()
    """Comma-separated former master secrets, still accepted during a rotation: they decrypt
    signing keys, and API and operator keys stored under them verify (and are re-hashed under
    the current secret on first use)."""
    base_url: str | None = None
    """Public base URL, the issuer prefix. Unset: ``http://<host>:<port>`` of ``serve``, the host
    as given (IPv6 in brackets; ``localhost`` for the wildcards ``0.0.0.0`` and ``::``)."""
    host: str = "127.0.0.1"
    """Address ``serve`` binds (``--host``)."""
    port: int = 8000
    """Port ``serve`` listens on (``--port``)."""
    revocation_poll_s: float = 2.0
    """Every instance re-reads revocations this often, in case a broadcast was lost."""
    ratelimit_fail_open: bool = True
    """Redis down: admit (true) or refuse (false) requests that have rate limits."""
    default_token_ttl_s: int = 900
    """Default JWT lifetime for new tenants."""
    max_token_ttl_s: int = 3600
    """Default maximum JWT lifetime for new tenants."""
    signing_alg: Alg = "ES256"
    """Default signing algorithm for new tenants."""
    signing_key_rotation_s: int = 30 * 86400
    """Automatic signing-key rotation period (0 disables automatic rotation)."""
    jwks_max_age_s: int = 300
    """``Cache-Control: max-age`` of the JWKS documents."""
    max_body_bytes: int = 64 * 1024
    """Larger request bodies are refused with 413."""
    db_pool_size: int = 10
    """Connections per instance to PostgreSQL (plus as many overflow connections)."""
    log_level: str = "INFO"
    """Level of authsvc's own loggers (libraries stay at INFO: at DEBUG some log SQL
    parameters)."""
    allow_private_issuers: bool = False
    """Trusted issuers (DESIGN §9) may use http and private or loopback addresses (development
    and tests only: in production an issuer URL must be https on a public address)."""
    exchange_subject_per_minute: int = 60
    """Token exchanges of identity-provider tokens allowed per subject per minute."""
    exchange_address_per_minute: int = 600
    """Token exchanges of identity-provider tokens allowed per client address per minute."""

    @property
    def embedded(self) -> bool:
        return self.database_url is None

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'authsvc.db').resolve()}"

    @property
    def effective_base_url(self) -> str:
        """``AUTHSVC_BASE_URL``, else ``http://<host>:<port>`` with the host as given.

        Issuers derive from it and RFC 8414 §3.3 wants the issuer identical to the URL a client
        was configured with, so a bound address is kept as typed (``127.0.0.1`` stays
        ``127.0.0.1``). A wildcard bind has no address a client could use: it becomes
        ``localhost``, the one name that reaches the server from its own machine, and ``serve``
        says that this is a guess (:attr:`base_url_guessed`).
        """
        if self.base_url:
            return self.base_url.rstrip("/")
        return f"http://{url_host(self.host)}:{self.port}"

    @property
    def base_url_guessed(self) -> bool:
        """No ``AUTHSVC_BASE_URL`` and a wildcard bind: the issuer base is ``localhost``."""
        return not self.base_url and self.host in WILDCARD_HOSTS

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = env.get(f"AUTHSVC_{f.name.upper()}")
            if raw is None or raw == "":
                continue
            values[f.name] = _coerce(f.name, f.type, raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        settings = cls(**values)
        settings.validate()
        return settings

    def validate(self) -> None:
        if self.secret_key is not None and len(self.secret_key) < 32:
            raise ConfigurationError("AUTHSVC_SECRET_KEY must be at least 32 characters.")
        if not self.embedded and self.secret_key is None:
            raise ConfigurationError(
                "AUTHSVC_SECRET_KEY is required when AUTHSVC_DATABASE_URL is set "
                "(every instance must share it)."
            )
        if not 0 < self.default_token_ttl_s <= self.max_token_ttl_s:
            raise ConfigurationError("Need 0 < default_token_ttl_s <= max_token_ttl_s.")
        if self.revocation_poll_s <= 0:
            raise ConfigurationError("AUTHSVC_REVOCATION_POLL_S must be positive.")
        if self.signing_alg not in ALGORITHMS:
            raise ConfigurationError(f"AUTHSVC_SIGNING_ALG must be one of {', '.join(ALGORITHMS)}.")
        if self.exchange_subject_per_minute < 1 or self.exchange_address_per_minute < 1:
            raise ConfigurationError("The exchange rate limits must be at least 1 per minute.")


def url_host(host: str) -> str:
    """``host`` as the host part of a URL: IPv6 literals bracketed, wildcards as ``localhost``."""
    if host in WILDCARD_HOSTS:
        return "localhost"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host  # a name, or already bracketed
    if address.version == 6:
        # RFC 3986 §3.2.2: IP-literal in brackets; RFC 6874 §2: "%" before a zone id as "%25".
        return "[" + host.replace("%", "%25") + "]"
    return host


def _coerce(name: str, type_: Any, raw: str) -> Any:
    t = str(type_)
    try:
        if "bool" in t:
            if raw.lower() in ("1", "true", "yes", "on"):
                return True
            if raw.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(raw)
        if t == "int":
            return int(raw)
        if t == "float":
            return float(raw)
        if "Path" in t:
            return Path(raw)
        if "tuple" in t:
            return tuple(p.strip() for p in raw.split(",") if p.strip())
    except ValueError as exc:
        raise ConfigurationError(f"AUTHSVC_{name.upper()} has an invalid value.") from exc
    return raw


def settings_doc() -> list[tuple[str, str]]:
    """(env var, default) pairs, used to keep the README table honest in a test."""
    return [(f"AUTHSVC_{f.name.upper()}", repr(f.default)) for f in fields(Settings)]
