"""The authenticated caller of a management operation."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from authsvc.errors import Forbidden
from authsvc.scopes import Grant, find_grant, parse_scope


@dataclass(frozen=True, slots=True)
class Principal:
    kind: Literal["operator", "key"]
    id: str
    tenant_id: str | None = None
    tenant_slug: str | None = None
    grants: tuple[Grant, ...] = ()
    expires_at: datetime | None = None
    """When the presented credential stops working (a token minted from it never outlives it)."""

    @property
    def actor(self) -> str:
        return f"{self.kind}:{self.id}"

    def has(self, scope: str) -> bool:
        return find_grant(self.grants, parse_scope(scope)) is not None

    def require(self, scope: str) -> None:
        if not self.has(scope):
            raise Forbidden(f"This operation requires the {scope} scope.")

    @property
    def tenant(self) -> str:
        """The tenant id of a key principal (operator principals have none)."""
        if self.tenant_id is None:
            raise Forbidden("This operation needs an API key of a tenant.")
        return self.tenant_id
