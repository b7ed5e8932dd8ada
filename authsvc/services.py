"""The composition root: every service of one application, built complete, once, from settings.

:func:`build_services` is used by the HTTP app and the CLI alike, so both go through the same
domain code. Everything is built in dependency order and handed its collaborators at
construction; nothing is patched in afterwards. The order is forced by one loop: the caches must
exist before the :class:`~authsvc.revocation.denylist.Denylist` (it tells them of every event),
which must exist before the bus, which every writing service publishes on.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine

from authsvc.audit.service import AuditService
from authsvc.clock import Clock, SystemClock
from authsvc.db.engine import (
    Reader,
    SessionFactory,
    make_engine,
    make_reader_engine,
    make_session_factory,
)
from authsvc.identities.service import IdentityService
from authsvc.issuers.cache import IssuerCache
from authsvc.issuers.fetch import JsonFetcher
from authsvc.issuers.jwks_cache import JwksClient
from authsvc.issuers.service import IssuerService
from authsvc.keys.cache import KeyCache
from authsvc.keys.secret import KeyHasher
from authsvc.keys.service import KeyService
from authsvc.keys.store import KeyStore
from authsvc.keys.usage import UsageRecorder
from authsvc.master import MasterSecrets, load_master_secrets
from authsvc.metrics import Metrics
from authsvc.oauth.federation import FederatedExchange
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
from authsvc.signing import crypto
from authsvc.signing.keyring import Keyring
from authsvc.signing.rotation import RotationTask
from authsvc.signing.service import SIGNER_TTL_S, SigningKeyService
from authsvc.tenants.policy import TenantCache
from authsvc.tenants.service import TenantService
from authsvc.tokens.reader import TokenReader
from authsvc.tokens.service import TokenService
from authsvc.verify.service import VerifyService


@dataclass(frozen=True, eq=False)
class Services:
    """Every service and long-lived object of one application."""

    settings: Settings
    clock: Clock
    engine: AsyncEngine
    db: SessionFactory
    reader: Reader
    secrets: MasterSecrets
    metrics: Metrics
    # caches of the hot path, kept in step with the denylist
    key_cache: KeyCache
    tenant_cache: TenantCache
    keyring: Keyring
    token_reader: TokenReader
    issuer_cache: IssuerCache
    jwks_client: JwksClient
    denylist: Denylist
    # revocation and limits
    bus: RevocationBus
    poller: RevocationPoller
    limiter: Limiter
    usage: UsageRecorder
    # domain services
    operators: OperatorService
    keys: KeyService
    identities: IdentityService
    signing: SigningKeyService
    tenants: TenantService
    audit: AuditService
    tokens: TokenService
    issuers: IssuerService
    verify: VerifyService
    oauth: OAuthService
    rotation: RotationTask
    redis: RedisClients | None

    async def aclose(self) -> None:
        await self.limiter.aclose()
        if self.redis is not None:
            await self.redis.aclose()
        await self.reader.aclose()
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
    reader = Reader(make_reader_engine(settings, engine))
    master = load_master_secrets(settings)
    metrics = Metrics()
    count = metrics.count_cache
    hash_secrets = master.key_hash_secrets
    hasher = KeyHasher(hash_secrets[0], hash_secrets[1:])

    key_cache = KeyCache(KeyStore(reader, db), hasher, count=count)
    tenant_cache = TenantCache(db, settings.effective_base_url, count=count)
    keyring = Keyring(
        db,
        crypto.master_secret_map(master.current, *master.previous),
        clock,
        count=count,
        signer_ttl_s=SIGNER_TTL_S,
    )
    token_reader = TokenReader(keyring, clock, count=count)
    issuer_cache = IssuerCache(db, count=count)
    jwks_client = JwksClient(JsonFetcher(allow_private=settings.allow_private_issuers), clock=clock)
    denylist = Denylist(
        listeners=(
            key_cache.on_event,
            tenant_cache.on_event,
            keyring.on_event,
            token_reader.on_event,
            issuer_cache.on_event,
            jwks_client.on_event,
        )
    )
    poller = RevocationPoller(db, denylist, clock, metrics, interval_s=settings.revocation_poll_s)

    redis = make_redis_clients(settings.redis_url) if settings.redis_url else None
    bus: RevocationBus
    limiter: Limiter
    if redis is not None:
        bus = RedisBus(
            redis.commands, redis.subscriber, denylist, metrics, on_reconnect=(poller.poke,)
        )
        injected = None if isinstance(clock, SystemClock) else clock  # else Redis TIME
        limiter = RedisLimiter(
            redis.commands, fail_open=settings.ratelimit_fail_open, clock=injected
        )
    else:
        bus, limiter = LocalBus(denylist, metrics), MemoryLimiter(clock)

    usage = UsageRecorder(db, clock)
    keys = KeyService(db, clock, hasher, bus)
    signing = SigningKeyService(db, clock, master, keyring)
    tenants = TenantService(
        db=db,
        clock=clock,
        settings=settings,
        keys=keys,
        bus=bus,
        on_create=(signing.on_tenant_create,),
        on_update=(signing.on_tenant_update,),
    )
    tokens = TokenService(
        db=db,
        clock=clock,
        tenants=tenant_cache,
        signing=signing,
        keys=keys,
        denylist=denylist,
        bus=bus,
    )
    verify = VerifyService(
        keys=key_cache,
        tenants=tenant_cache,
        issuers=issuer_cache,
        reader=token_reader,
        denylist=denylist,
        limiter=limiter,
        usage=usage,
        clock=clock,
        metrics=metrics,
    )
    return Services(
        settings=settings,
        clock=clock,
        engine=engine,
        db=db,
        reader=reader,
        secrets=master,
        metrics=metrics,
        key_cache=key_cache,
        tenant_cache=tenant_cache,
        keyring=keyring,
        token_reader=token_reader,
        issuer_cache=issuer_cache,
        jwks_client=jwks_client,
        denylist=denylist,
        bus=bus,
        poller=poller,
        limiter=limiter,
        usage=usage,
        operators=OperatorService(db, clock, hasher),
        keys=keys,
        identities=IdentityService(db, clock, bus),
        signing=signing,
        tenants=tenants,
        audit=AuditService(db),
        tokens=tokens,
        issuers=IssuerService(db, clock, bus, allow_private=settings.allow_private_issuers),
        verify=verify,
        oauth=OAuthService(
            tenants=tenant_cache,
            verify=verify,
            tokens=tokens,
            federation=FederatedExchange(
                issuers=issuer_cache,
                jwks=jwks_client,
                limiter=limiter,
                clock=clock,
                per_subject=settings.exchange_subject_per_minute,
                per_address=settings.exchange_address_per_minute,
            ),
        ),
        rotation=RotationTask(signing, db, clock, bus),
        redis=redis,
    )
