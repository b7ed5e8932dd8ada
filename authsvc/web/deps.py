"""Named dependency aliases for handler signatures (Litestar resolves them by parameter name).

Only the authenticated caller lives here; each domain's controller names its own service
(``Keys = NamedDependency[KeyService]``), so no module needs a container of every service.
"""

from __future__ import annotations

from typing import TypeAlias

from litestar.di import NamedDependency

from authsvc.principal import Principal

Caller: TypeAlias = NamedDependency[Principal]
"""``caller``: an API key of a tenant, authenticated and charged (see ``verify/guard.py``)."""
Operator: TypeAlias = NamedDependency[Principal]
"""``operator``: an operator key."""
