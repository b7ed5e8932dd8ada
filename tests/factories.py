"""Domain values built directly, for unit tests that need no database."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from authsvc.tenants.policy import TenantPolicy

ISSUER = "https://auth.test/t/acme"


def tenant_policy(**changes: Any) -> TenantPolicy:
    now = datetime.now(UTC)
    policy = TenantPolicy(
        id="ten_1",
        slug="acme",
        name="Acme",
        enabled=True,
        issuer=ISSUER,
        audiences=(ISSUER,),
        default_token_ttl_s=900,
        max_token_ttl_s=3600,
        signing_alg="ES256",
        signing_key_rotation_s=0,
        allow_query_token=False,
        token_horizon_at=None,
        created_at=now,
        updated_at=now,
    )
    return replace(policy, **changes)
