"""Named dependency aliases for handler signatures."""

from __future__ import annotations

from typing import TypeAlias

from litestar.di import NamedDependency

from authsvc.principal import Principal
from authsvc.services import Services

ServicesDep: TypeAlias = NamedDependency[Services]
PrincipalDep: TypeAlias = NamedDependency[Principal]
