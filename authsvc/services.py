"""The service container: every domain service, built once per application from settings.

:func:`build_services` is used by the HTTP app and the CLI alike, so both go through the same
domain code.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine

from authsvc.audit.service import AuditService
from authsvc.clock import Clock, SystemClock
from authsvc.db.engine import SessionFactory, make_engine, make_session_factory
from authsvc.identities.service import IdentityService
from authsvc.keys.cache import KeyCache
from authsvc.keys.service import KeyService
from authsvc.keys.usage import UsageRecorder
from authsvc.master import MasterSecrets, load_master_secrets
from authsvc.metrics import Metrics
from authsvc.oauth.service import OAuthService
from authsvc.operators import OperatorService
from authsvc.ratelimit.memory import MemoryLimiter
from authsvc.ratelimit.redis import RedisLimiter
from authsvc.ratelimit.types import Limiter
from authsvc.redis_clients import RedisClients, make_redis_clients
from authsvc.revocation.bus import LocalBus, RedisBus
from authsvc.revocation.denylist import Denylist
from authsvc.revocation.events import RevocationBus
from authsvc.revocation.poller import RevocationPoller
from authsvc.settings import Settings
from authsvc.signing.rotation import RotationTask
from authsvc.signing.service import SigningKeyService
from authsvc.tenants.service import TenantService
from authsvc.tokens.policy import PolicyCache
from authsvc.tokens.service import TokenService
from authsvc.tokens.verifier import TokenVerifier
from authsvc.verify.service import VerifyService


@dataclass(eq=False)
class Services:
    """Plain attribute bag; handed to handlers as an opaque dependency."""

    settings: Settings
    clock: Clock
    engine: AsyncEngine
    db: SessionFactory
    secrets: MasterSecrets
    bus: RevocationBus
    operators: OperatorService
    tenants: TenantService
    keys: KeyService
    identities: IdentityService
    audit: AuditService
    # token issuing, signing keys, OAuth (issue #3)
    policies: PolicyCache
    signing: SigningKeyService
    tokens: TokenService
    token_verifier: TokenVerifier
    oauth: OAuthService
    rotation: RotationTask
    # verification, rate limits, revocation (issue #4)
    metrics: Metrics
    denylist: Denylist
    limiter: Limiter
    key_cache: KeyCache
    verifier: VerifyService
    poller: RevocationPoller
    usage: UsageRecorder
    redis: RedisClients | None = None

    async def aclose(self) -> None:
        await self.limiter.aclose()
        if self.redis is not None:
            await self.redis.aclose()
        await self.engine.dispose()


def build_services(
    settings: Settings,
    *,
    clock: Clock | None = None,
    engine: AsyncEngine | None = None,
) -> Services:
    clock = clock or SystemClock()
    engine = engine or make_engine(settings)
    db = make_session_factory(engine)
    master = load_master_secrets(settings)
    metrics = Metrics()
    denylist = Denylist()
    redis = make_redis_clients(settings.redis_url) if settings.redis_url else None
    bus: RevocationBus
    limiter: Limiter
    if redis is not None:
        bus = RedisBus(redis.commands, redis.subscriber, denylist, metrics)
        injected = None if isinstance(clock, SystemClock) else clock  # else Redis TIME
        limiter = RedisLimiter(
            redis.commands, fail_open=settings.ratelimit_fail_open, clock=injected
        )
    else:
        bus, limiter = LocalBus(denylist, metrics), MemoryLimiter(clock)
    hash_secret = master.key_hash_secret
    keys = KeyService(db, clock, hash_secret, bus)
    identities = IdentityService(db, clock, bus)
    tenants = TenantService(db=db, clock=clock, settings=settings, keys=keys, bus=bus)
    key_cache = KeyCache(keys, identities, metrics)
    usage = UsageRecorder(db, clock)
    denylist.listeners += [key_cache.on_event]
    poller = RevocationPoller(db, denylist, clock, metrics, interval_s=settings.revocation_poll_s)
    policies = PolicyCache(tenants)
    signing = SigningKeyService(db, clock, master, bus)
    tenants.on_create.append(signing.on_tenant_create)
    tenants.on_update.append(signing.on_tenant_update)
    tokens = TokenService(
        db=db,
        clock=clock,
        policies=policies,
        signing=signing,
        keys=keys,
        denylist=denylist,
        bus=bus,
    )
    token_verifier = TokenVerifier(
        policies=policies, signing=signing, keys=keys, denylist=denylist, clock=clock
    )
    denylist.listeners += [policies.on_event, signing.keyring.on_event, token_verifier.on_event]
    verifier = VerifyService(
        key_cache, limiter, clock, metrics, usage=usage, base_url=settings.effective_base_url
    )
    verifier.enable_jwt(token_verifier, denylist)
    assert verifier.tokens is not None
    return Services(
        settings=settings,
        clock=clock,
        engine=engine,
        db=db,
        secrets=master,
        bus=bus,
        operators=OperatorService(db, clock, hash_secret),
        tenants=tenants,
        keys=keys,
        identities=identities,
        audit=AuditService(db),
        policies=policies,
        signing=signing,
        tokens=tokens,
        token_verifier=token_verifier,
        # Introspection and exchange share /v1/verify's verified-token cache.
        oauth=OAuthService(
            tokens=tokens, verifier=verifier.tokens, lookup=key_cache.record, clock=clock
        ),
        rotation=RotationTask(signing, clock),
        metrics=metrics,
        denylist=denylist,
        limiter=limiter,
        key_cache=key_cache,
        verifier=verifier,
        poller=poller,
        usage=usage,
        redis=redis,
    )
