"""Who may do what to which key (DESIGN §8): the rules of key management, as pure functions.

* **Roots and descendants.** ADMIN keys manage every key of their tenant. Any other caller sees
  and manages only itself and its descendants (the keys created by it, transitively); any other
  key is a 404 to it, indistinguishable from a key that does not exist.
* **Creation.** A child gets at most the caller's grants as they are now (down-scoping, §1); a
  key created by a non-ADMIN key derives from it (``parent_id``), so it is bounded by and charged
  against its creator for as long as it lives. A key created by a key that expires inherits
  that expiry when it gives none; a later one is refused.
* **Changes only narrow; only ADMIN widens.** A non-ADMIN caller may, on itself or a
  descendant: rename, change metadata, narrow grants (each scope covered by the key's current
  grants, filters only tightened), bring the expiry forward (never remove it), keep every limit
  while tightening it or add new ones, set an identity on a key that has none, disable. Anything
  else is a :class:`~authsvc.errors.ScopeEscalation` naming the field, and nothing is changed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from authsvc.errors import ScopeEscalation
from authsvc.keys.state import KeyInfo
from authsvc.principal import Principal
from authsvc.ratelimit.limits import RateLimitDef, loosened
from authsvc.scopes import Grant, downscope


def visible(principal: Principal, key_id: str, ancestors: Sequence[str]) -> bool:
    """Whether ``principal`` may see and manage the key ``key_id`` whose ancestors (nearest
    first) are ``ancestors``."""
    return principal.admin or key_id == principal.id or principal.id in ancestors


def child_expiry(principal: Principal, requested: datetime | None) -> datetime | None:
    """The expiry of a key ``principal`` creates: never after the creator's own."""
    limit = principal.expires_at
    if limit is None:
        return requested
    if requested is None:
        return limit
    if requested > limit:
        raise ScopeEscalation("expires_at", "would outlive the key that creates it")
    return requested


def narrowed(current: KeyInfo, changes: Mapping[str, Any]) -> dict[str, Any]:
    """``changes`` as a non-ADMIN caller may make them, or :class:`ScopeEscalation` (see the
    module docstring).

    ``changes`` holds the parsed new values of the fields present: ``grants`` (tuple of
    :class:`Grant`, as requested), ``ratelimits`` (tuple of :class:`RateLimitDef`),
    ``identity``, ``expires_at``, ``enabled``, ``name``, ``metadata``. In the result, requested
    grants inherit the key's current filters (§1), as when it was created.
    """
    out = dict(changes)
    if "grants" in changes:
        requested: Sequence[Grant] = changes["grants"]
        out["grants"] = downscope(current.grants, requested)
    if "ratelimits" in changes:
        limits: Sequence[RateLimitDef] = changes["ratelimits"]
        name = loosened(current.ratelimits, limits)
        if name is not None:
            raise ScopeEscalation("ratelimits", f"would drop or loosen the limit '{name}'")
    if (
        "identity" in changes
        and changes["identity"] != current.identity
        and current.identity is not None
    ):
        raise ScopeEscalation("identity", "would move the key out of its identity's limits")
    if "expires_at" in changes:
        expiry: datetime | None = changes["expires_at"]
        if current.expires_at is not None and (expiry is None or expiry > current.expires_at):
            raise ScopeEscalation("expires_at", "would extend the key's life")
    if changes.get("enabled") is True and not current.enabled:
        raise ScopeEscalation("enabled", "would enable a disabled key")
    return out
