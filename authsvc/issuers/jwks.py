"""The public keys of trusted identity providers: JWKS parsing and a per-issuer cache.

Parsing (:func:`parse_jwks`)
============================

A JWKS (RFC 7517 §5) becomes ``kid → IssuerKey``, a ``cryptography`` public key with the set
of algorithms it may verify. Allowed algorithms are RS256, PS256, ES256 and EdDSA only (never
``none``, never HS*: a symmetric key in a public document would be a shared secret).

* RSA (RFC 7518 §6.3.1): 2048 to 8192 bits, odd public exponent 3 .. 2**32 (a huge exponent
  or modulus would make every verification slow);
* EC (RFC 7518 §6.2.1): ``crv`` P-256 only, ``x`` and ``y`` exactly 32 bytes, point on the curve;
* OKP (RFC 8037 §2): ``crv`` Ed25519 only, ``x`` exactly 32 bytes.

A key's usable algorithms are its ``alg`` member if present (RFC 7517 §4.4), else those of its
type (RSA → RS256, PS256; EC P-256 → ES256; OKP → EdDSA), intersected with the issuer's
configured ``algorithms``. A key is skipped, with a logged reason and never its material, when:
``kid`` is missing (the verifier requires one); ``use`` is present and not ``sig`` (§4.2);
``key_ops`` is present without ``verify`` (§4.3); ``kty``/``crv``/``alg`` is unsupported or
inconsistent; no algorithm remains; it carries private members (``d``, ``p``, ``q``, ``dp``,
``dq``, ``qi``, ``oth``, or an ``oct`` ``k``: a JWKS must never carry secrets, so such a key is
refused); or its ``kid`` is shared with another usable key (the key would be ambiguous, and
the key pins the algorithm). ``x5c``/``x5t`` are ignored: the key is ``n``/``e`` or ``x``/``y``.
A document that is not ``{"keys": [...]}`` or has more than ``max_keys`` (100) keys is refused
whole (:class:`InvalidJwks`); its size is capped by the fetcher.

Cache (:class:`JwksClient`)
===========================

One entry per trusted issuer (``JwksSource.cache_id``), LRU-bounded (``max_issuers``). Keys come
from the inline ``jwks``, else the configured ``jwks_uri``, else OIDC discovery
(``<issuer>/.well-known/openid-configuration``, whose ``issuer`` must equal the configured one
exactly, OIDC Discovery §4.3) and its ``jwks_uri``. Times are monotonic (injected).

* Freshness: ``Cache-Control: max-age`` of the JWKS response (RFC 9111 §5.2.2.1), clamped to
  [60 s, 24 h]; ``no-store``/``no-cache`` mean the minimum; default 5 min without a header.
* Unknown ``kid`` in a fresh set: refetch, at most once every ``refetch_interval_s`` (5 s)
  per issuer; a miss inside that window answers "unknown key" at once.
* Single flight: concurrent refreshes of one issuer share one fetch; a cancelled caller does not
  cancel it for the others.
* Failure: the previous keys keep being served, for at most ``max_stale_s`` (24 h) past their
  expiry (a key the IdP removed must not live forever because its JWKS is unreachable). When
  no key set is available at all, :meth:`JwksClient.get_key` raises :class:`JwksUnavailable`
  (→ 503), distinct from ``None`` (an unknown key → ``invalid_grant``). Failed attempts are
  throttled by the same interval, so an outage is not hammered.
* An entry whose ``JwksSource`` differs from the requested one is refetched (a changed issuer
  can never be served stale keys); :meth:`JwksClient.invalidate` drops an entry explicitly.
"""

from __future__ import annotations

import asyncio
import binascii
import logging
import re
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, Literal, Protocol, TypeAlias, get_args

from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from authsvc.clock import Clock
from authsvc.errors import Code, InvalidRequest
from authsvc.issuers.fetch import FetchError, JsonDocument
from authsvc.revocation.events import RevocationEvent

__all__ = [
    "SUBJECT_ALGORITHMS",
    "DocumentFetcher",
    "InvalidJwks",
    "IssuerKey",
    "IssuerPublicKey",
    "JwksClient",
    "JwksSource",
    "JwksStatus",
    "JwksUnavailable",
    "KeySet",
    "SubjectAlg",
    "discovery_url",
    "is_valid_kid",
    "parse_algorithms",
    "parse_jwks",
    "ttl_from_cache_control",
]

log = logging.getLogger(__name__)

SubjectAlg: TypeAlias = Literal["RS256", "PS256", "ES256", "EdDSA"]
SUBJECT_ALGORITHMS: Final[tuple[SubjectAlg, ...]] = get_args(SubjectAlg)
IssuerPublicKey: TypeAlias = rsa.RSAPublicKey | ec.EllipticCurvePublicKey | Ed25519PublicKey

MAX_KEYS: Final = 100
_RSA_MIN_BITS: Final = 2048  # RFC 7518 §3.3
_RSA_MAX_BITS: Final = 8192
_RSA_MAX_EXPONENT: Final = 2**32
_TYPE_ALGS: Final[Mapping[str, frozenset[str]]] = {
    "RSA": frozenset({"RS256", "PS256"}),
    "EC": frozenset({"ES256"}),
    "OKP": frozenset({"EdDSA"}),
}
_PRIVATE_MEMBERS: Final = ("d", "p", "q", "dp", "dq", "qi", "oth", "k")
_B64URL: Final = re.compile(r"[A-Za-z0-9_-]+")
_LAST_CHAR_OK: Final = {2: frozenset("AQgw"), 3: frozenset("AEIMQUYcgkosw048")}
# Printable ASCII without spaces: what real IdPs use, and nothing that can break a log line.
_KID: Final = re.compile(r"[\x21-\x7e]{1,256}")
_MAX_AGE: Final = re.compile(r'\s*max-age\s*=\s*"?(\d{1,12})"?\s*', re.IGNORECASE)


class InvalidJwks(Exception):
    """The document is not a usable JWKS (not ``{"keys": [...]}``, or too many keys)."""


class JwksUnavailable(Exception):
    """No key set of this issuer is available (never fetched, or too stale): a 503.

    ``reason`` is a :data:`~authsvc.issuers.fetch.FetchReason` or one of ``bad_jwks``,
    ``bad_discovery``, ``issuer_mismatch``.
    """

    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        self.message = message
        super().__init__(message)


@dataclass(frozen=True, slots=True)
class IssuerKey:
    """One verification key of an identity provider and the algorithms it may verify."""

    kid: str
    algorithms: frozenset[str]
    public_key: IssuerPublicKey = field(repr=False)


@dataclass(frozen=True, slots=True)
class KeySet:
    keys: Mapping[str, IssuerKey]
    #: ``(kid or None, reason)`` for every key left out; for logs and admin diagnostics.
    skipped: tuple[tuple[str | None, str], ...] = ()


def is_valid_kid(kid: object) -> bool:
    """A ``kid`` we look up: 1-256 printable ASCII characters without spaces."""
    return isinstance(kid, str) and _KID.fullmatch(kid) is not None


def parse_algorithms(value: object) -> frozenset[str]:
    """The ``algorithms`` of a trusted issuer (creation time); ``None`` means all allowed."""
    if value is None:
        return frozenset(SUBJECT_ALGORITHMS)
    if not isinstance(value, list | tuple) or not value:
        raise InvalidRequest("algorithms must be a non-empty list.", code=Code.INVALID_ALG)
    algs = set()
    for item in value:
        if item not in SUBJECT_ALGORITHMS:
            raise InvalidRequest(
                f"algorithms may contain only {', '.join(SUBJECT_ALGORITHMS)}.",
                code=Code.INVALID_ALG,
            )
        algs.add(item)
    return frozenset(algs)


# --------------------------------------------------------------------------- parsing


def _b64(value: object) -> bytes | None:
    """Strict unpadded, canonical base64url (RFC 7515 §2, RFC 7518 §2 Base64urlUInt)."""
    if not isinstance(value, str) or not _B64URL.fullmatch(value):
        return None
    rem = len(value) % 4
    if rem == 1 or (rem and value[-1] not in _LAST_CHAR_OK[rem]):
        return None
    std = value.replace("-", "+").replace("_", "/") + "=" * (-len(value) % 4)
    return binascii.a2b_base64(std)


def _rsa(jwk: Mapping[str, Any]) -> IssuerPublicKey | str:
    n_raw, e_raw = _b64(jwk.get("n")), _b64(jwk.get("e"))
    if n_raw is None or e_raw is None:
        return "RSA key without valid n and e"
    n, e = int.from_bytes(n_raw, "big"), int.from_bytes(e_raw, "big")
    if not _RSA_MIN_BITS <= n.bit_length() <= _RSA_MAX_BITS:
        return "RSA modulus outside 2048-8192 bits"
    if e < 3 or e % 2 == 0 or e > _RSA_MAX_EXPONENT:
        return "RSA public exponent not accepted"
    try:
        return rsa.RSAPublicNumbers(e, n).public_key()
    except ValueError:
        return "invalid RSA key"


def _ec(jwk: Mapping[str, Any]) -> IssuerPublicKey | str:
    if jwk.get("crv") != "P-256":
        return "unsupported EC curve"
    x, y = _b64(jwk.get("x")), _b64(jwk.get("y"))
    if x is None or y is None or len(x) != 32 or len(y) != 32:  # RFC 7518 §6.2.1.2-3: full size
        return "EC key coordinates are not 32 bytes"
    try:  # SEC 1 §2.3.4: the uncompressed point, checked to be on the curve
        return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b"\x04" + x + y)
    except ValueError:
        return "EC point is not on the curve"


def _okp(jwk: Mapping[str, Any]) -> IssuerPublicKey | str:
    if jwk.get("crv") != "Ed25519":  # RFC 8037 §2; Ed448 and X25519/X448 are not signatures here
        return "unsupported OKP curve"
    x = _b64(jwk.get("x"))
    if x is None or len(x) != 32:
        return "Ed25519 key is not 32 bytes"
    try:
        return Ed25519PublicKey.from_public_bytes(x)
    except ValueError:
        return "invalid Ed25519 key"


_PARSERS: Final[Mapping[str, Callable[[Mapping[str, Any]], IssuerPublicKey | str]]] = {
    "RSA": _rsa,
    "EC": _ec,
    "OKP": _okp,
}


def _parse_key(jwk: object, allowed: frozenset[str]) -> IssuerKey | str:
    if not isinstance(jwk, Mapping):
        return "not a JSON object"
    kid = jwk.get("kid")
    if not is_valid_kid(kid):
        return "missing or invalid kid"
    assert isinstance(kid, str)
    if any(name in jwk for name in _PRIVATE_MEMBERS):
        return "private key material present; key refused"
    use = jwk.get("use")
    if use is not None and use != "sig":  # RFC 7517 §4.2
        return "use is not sig"
    ops = jwk.get("key_ops")
    if ops is not None and (not isinstance(ops, list) or "verify" not in ops):  # RFC 7517 §4.3
        return "key_ops does not include verify"
    kty = jwk.get("kty")
    parser = _PARSERS.get(kty) if isinstance(kty, str) else None
    if parser is None:
        return "unsupported kty"
    assert isinstance(kty, str)
    alg = jwk.get("alg")
    if alg is None:
        usable = _TYPE_ALGS[kty]
    elif isinstance(alg, str) and alg in _TYPE_ALGS[kty]:  # RFC 7517 §4.4
        usable = frozenset({alg})
    else:
        return "alg not supported for this key type"
    usable = usable & allowed
    if not usable:
        return "no algorithm allowed for this issuer"
    key = parser(jwk)
    if isinstance(key, str):
        return key
    return IssuerKey(kid=kid, algorithms=usable, public_key=key)


def parse_jwks(
    document: object, *, algorithms: Collection[str], max_keys: int = MAX_KEYS
) -> KeySet:
    """The usable keys of a JWKS document; :class:`InvalidJwks` if it is not one at all."""
    allowed = frozenset(algorithms) & frozenset(SUBJECT_ALGORITHMS)
    if not isinstance(document, Mapping) or not isinstance(document.get("keys"), list):
        raise InvalidJwks("The document is not a JWK Set.")  # RFC 7517 §5: "keys" REQUIRED
    items: list[object] = document["keys"]
    if len(items) > max_keys:
        raise InvalidJwks(f"The JWK Set has more than {max_keys} keys.")
    keys: dict[str, IssuerKey] = {}
    duplicated: set[str] = set()
    skipped: list[tuple[str | None, str]] = []
    for item in items:
        parsed = _parse_key(item, allowed)
        if isinstance(parsed, str):
            kid = item.get("kid") if isinstance(item, Mapping) else None
            skipped.append((kid if is_valid_kid(kid) else None, parsed))
            continue
        if parsed.kid in keys or parsed.kid in duplicated:
            duplicated.add(parsed.kid)
            keys.pop(parsed.kid, None)
            skipped.append((parsed.kid, "kid used by several keys"))
            continue
        keys[parsed.kid] = parsed
    return KeySet(keys=keys, skipped=tuple(skipped))


def ttl_from_cache_control(
    value: str | None, *, default: float = 300.0, minimum: float = 60.0, maximum: float = 86400.0
) -> float:
    """Seconds to keep a response: ``max-age`` (RFC 9111 §5.2.2.1) clamped to the bounds.

    ``no-store``/``no-cache`` give the minimum (the keys must be cached a little anyway, or
    every exchange would fetch); several ``max-age`` directives, the smallest.
    """
    if not value:
        return default
    ages: list[int] = []
    for directive in value.split(","):
        name = directive.strip().lower()
        if name in ("no-store", "no-cache"):
            return minimum
        match = _MAX_AGE.fullmatch(directive)
        if match is not None:
            ages.append(int(match.group(1)))
    if not ages:
        return default
    return float(min(max(min(ages), minimum), maximum))


def discovery_url(issuer: str) -> str:
    """OIDC Discovery §4.1: the issuer, without a trailing ``/``, + the well-known path."""
    return issuer.rstrip("/") + "/.well-known/openid-configuration"


# --------------------------------------------------------------------------- cache


class DocumentFetcher(Protocol):
    async def get_json(self, url: str) -> JsonDocument: ...


@dataclass(frozen=True, slots=True)
class JwksSource:
    """Where one trusted issuer's keys come from. ``cache_id`` is the trusted issuer's id.

    Two sources with the same ``cache_id`` but different fields are different configurations:
    the cached keys of the old one are never served for the new one.
    """

    cache_id: str
    issuer: str
    jwks_uri: str | None = None
    jwks: Mapping[str, Any] | None = None
    algorithms: frozenset[str] = frozenset(SUBJECT_ALGORITHMS)


@dataclass(frozen=True, slots=True)
class JwksStatus:
    """What an admin may see about an issuer's key cache (no key material)."""

    fetched_at: datetime | None
    kids: tuple[str, ...]
    last_error: str | None


@dataclass(slots=True, eq=False)
class _Entry:
    source: JwksSource
    keys: Mapping[str, IssuerKey] | None = None
    expires_at: float = 0.0
    fetched_at: datetime | None = None
    last_attempt: float | None = None
    last_error: str | None = None
    inflight: asyncio.Task[None] | None = None


class JwksClient:
    """Keys of trusted issuers, fetched through ``fetcher`` and cached (module docstring)."""

    def __init__(
        self,
        fetcher: DocumentFetcher,
        *,
        clock: Clock,
        monotonic: Callable[[], float] = time.monotonic,
        max_issuers: int = 1000,
        refetch_interval_s: float = 5.0,
        default_ttl_s: float = 300.0,
        min_ttl_s: float = 60.0,
        max_ttl_s: float = 86400.0,
        max_stale_s: float = 86400.0,
        max_keys: int = MAX_KEYS,
    ) -> None:
        if max_issuers < 1 or not 0 < min_ttl_s <= default_ttl_s <= max_ttl_s:
            raise ValueError("invalid JWKS cache bounds")
        self._fetcher = fetcher
        self._clock = clock
        self._monotonic = monotonic
        self._max_issuers = max_issuers
        self._refetch_interval_s = refetch_interval_s
        self._ttl = (default_ttl_s, min_ttl_s, max_ttl_s)
        self._max_stale_s = max_stale_s
        self._max_keys = max_keys
        self._entries: OrderedDict[str, _Entry] = OrderedDict()

    # -- public --------------------------------------------------------------------------

    async def get_key(self, source: JwksSource, kid: str) -> IssuerKey | None:
        """The key ``kid`` of ``source``'s issuer, ``None`` if unknown (after at most one
        throttled refetch), or :class:`JwksUnavailable` if no key set is available at all."""
        entry = self._entry(source)
        now = self._monotonic()
        if entry.keys is not None and now < entry.expires_at:
            key = entry.keys.get(kid)
            if key is not None or not self._may_fetch(entry, now):
                return key
        elif not self._may_fetch(entry, now):
            return self._usable(entry, now).get(kid)
        await self._refresh(entry)
        return self._usable(entry, self._monotonic()).get(kid)

    def resolver(self, source: JwksSource) -> Callable[[str], Awaitable[IssuerKey | None]]:
        """``get_key`` bound to ``source``: the ``resolve_key`` of the subject verifier."""

        async def resolve(kid: str) -> IssuerKey | None:
            return await self.get_key(source, kid)

        return resolve

    def invalidate(self, cache_id: str) -> None:
        """Forget an issuer's keys (it was changed or deleted); an in-flight fetch is orphaned."""
        self._entries.pop(cache_id, None)

    def clear(self) -> None:
        self._entries.clear()

    def on_event(self, event: RevocationEvent) -> None:
        """Denylist listener: an issuer changed or was deleted (on any instance)."""
        if event.kind == "issuer":
            self.invalidate(event.value)

    def status(self, cache_id: str) -> JwksStatus | None:
        entry = self._entries.get(cache_id)
        if entry is None:
            return None
        kids = tuple(sorted(entry.keys)) if entry.keys is not None else ()
        return JwksStatus(entry.fetched_at, kids, entry.last_error)

    # -- internals -----------------------------------------------------------------------

    def _entry(self, source: JwksSource) -> _Entry:
        entry = self._entries.get(source.cache_id)
        if entry is not None and entry.source == source:
            self._entries.move_to_end(source.cache_id)
            return entry
        entry = _Entry(source)
        self._entries[source.cache_id] = entry
        self._entries.move_to_end(source.cache_id)
        while len(self._entries) > self._max_issuers:
            self._entries.popitem(last=False)
        return entry

    def _may_fetch(self, entry: _Entry, now: float) -> bool:
        if entry.inflight is not None:
            return True  # joining a fetch already under way costs nothing
        last = entry.last_attempt
        return last is None or now - last >= self._refetch_interval_s

    def _usable(self, entry: _Entry, now: float) -> Mapping[str, IssuerKey]:
        if entry.keys is not None and now < entry.expires_at + self._max_stale_s:
            return entry.keys
        raise JwksUnavailable(
            entry.last_error or "unavailable",
            f"The keys of issuer {entry.source.issuer} are unavailable.",
        )

    async def _refresh(self, entry: _Entry) -> None:
        task = entry.inflight
        if task is None:
            entry.last_attempt = self._monotonic()
            task = asyncio.get_running_loop().create_task(self._load(entry))
            entry.inflight = task

            def done(finished: asyncio.Task[None]) -> None:
                entry.inflight = None
                if not finished.cancelled():
                    finished.exception()  # retrieved here; awaiting callers re-raise it

            task.add_done_callback(done)
        await asyncio.shield(task)

    async def _load(self, entry: _Entry) -> None:
        source = entry.source
        try:
            keys, ttl = await self._fetch_keys(source)
        except (FetchError, JwksUnavailable) as exc:
            entry.last_error = exc.reason
            log.warning("JWKS of issuer %r unavailable (%s)", source.cache_id, exc.reason)
            return
        except InvalidJwks:
            entry.last_error = "bad_jwks"
            log.warning("JWKS of issuer %r is not a usable JWK Set", source.cache_id)
            return
        for kid, reason in keys.skipped:
            log.warning("JWKS of issuer %r: key %r skipped (%s)", source.cache_id, kid, reason)
        entry.keys = keys.keys
        entry.expires_at = self._monotonic() + ttl
        entry.fetched_at = self._clock.now()
        entry.last_error = None

    async def _fetch_keys(self, source: JwksSource) -> tuple[KeySet, float]:
        default, minimum, maximum = self._ttl
        if source.jwks is not None:
            return parse_jwks(source.jwks, algorithms=source.algorithms), maximum
        jwks_uri = source.jwks_uri
        if jwks_uri is None:
            discovery = await self._fetcher.get_json(discovery_url(source.issuer))
            if discovery.body.get("issuer") != source.issuer:  # OIDC Discovery §4.3: exact
                raise JwksUnavailable(
                    "issuer_mismatch", "The discovery document names another issuer."
                )
            found = discovery.body.get("jwks_uri")  # OIDC Discovery §3: REQUIRED
            if not isinstance(found, str) or not found:
                raise JwksUnavailable("bad_discovery", "The discovery document has no jwks_uri.")
            jwks_uri = found
        document = await self._fetcher.get_json(jwks_uri)
        keys = parse_jwks(document.body, algorithms=source.algorithms, max_keys=self._max_keys)
        ttl = ttl_from_cache_control(
            document.cache_control, default=default, minimum=minimum, maximum=maximum
        )
        return keys, ttl
