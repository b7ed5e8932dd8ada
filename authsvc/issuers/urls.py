"""Where an outgoing fetch may go: the URL rules and the public-address rule (SSRF defence).

A trusted issuer's URLs are chosen by a tenant admin, so each one is treated as hostile input
aimed at our network position:

1. :func:`parse_target`: ``https`` only, a host, no user-info, a port in 1-65535, no fragment
   (and no query in an issuer identifier, OIDC Discovery §3);
2. :func:`resolve_target`: the host is resolved once (``getaddrinfo``) and refused unless
   **every** address is public (:func:`is_public_address`: loopback, private, link-local,
   CGNAT, multicast, reserved, documentation, unspecified, and IPv6 forms that embed such an
   IPv4 address are all refused).

:func:`check_issuer_url` and :func:`check_jwks_url` apply both when an issuer is configured;
:class:`~authsvc.issuers.fetch.JsonFetcher` applies them on every fetch and then connects only
to the addresses checked here. With ``allow_private`` (``AUTHSVC_ALLOW_PRIVATE_ISSUERS``,
development and tests) plain ``http`` and every address are allowed.

Errors are :class:`FetchError` with a stable ``reason``; its message names the URL's host at
most, never any byte of a response body.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Final, Literal, TypeAlias

import httpx

__all__ = [
    "DEFAULT_TIMEOUT_S",
    "FetchError",
    "FetchReason",
    "IPAddress",
    "Resolver",
    "Target",
    "check_issuer_url",
    "check_jwks_url",
    "is_public_address",
    "parse_target",
    "resolve_target",
    "system_resolver",
]

DEFAULT_TIMEOUT_S: Final = 2.0
_MAX_URL_LENGTH: Final = 2048

FetchReason: TypeAlias = Literal[
    "bad_url",
    "not_https",
    "resolve_failed",
    "private_address",
    "network",
    "timeout",
    "redirect",
    "http_status",
    "too_large",
    "bad_encoding",
    "bad_json",
]

IPAddress: TypeAlias = ipaddress.IPv4Address | ipaddress.IPv6Address
#: ``(host, port)`` → the addresses the host resolves to, as IP literal strings.
Resolver: TypeAlias = Callable[[str, int], Awaitable[Sequence[str]]]


class FetchError(Exception):
    """A refused or failed fetch. ``reason`` is stable; the message is safe to show an admin."""

    def __init__(self, reason: FetchReason, message: str) -> None:
        self.reason: FetchReason = reason
        self.message = message
        super().__init__(message)

    def __repr__(self) -> str:
        return f"FetchError({self.reason!r}, {self.message!r})"


# --------------------------------------------------------------------------- addresses

# IANA IPv4/IPv6 Special-Purpose Address Registries (RFC 6890 and updates): every block that is
# not globally reachable, plus anycast/relay blocks that have no business serving a JWKS.
_V4_BLOCKED: Final = tuple(
    ipaddress.IPv4Network(net)
    for net in (
        "0.0.0.0/8",  # "this network", RFC 791
        "10.0.0.0/8",  # private, RFC 1918
        "100.64.0.0/10",  # shared address space (CGNAT), RFC 6598
        "127.0.0.0/8",  # loopback, RFC 1122
        "169.254.0.0/16",  # link-local (cloud metadata lives here), RFC 3927
        "172.16.0.0/12",  # private, RFC 1918
        "192.0.0.0/24",  # IETF protocol assignments, RFC 6890
        "192.0.2.0/24",  # TEST-NET-1, RFC 5737
        "192.88.99.0/24",  # 6to4 relay anycast, RFC 7526
        "192.168.0.0/16",  # private, RFC 1918
        "198.18.0.0/15",  # benchmarking, RFC 2544
        "198.51.100.0/24",  # TEST-NET-2, RFC 5737
        "203.0.113.0/24",  # TEST-NET-3, RFC 5737
        "224.0.0.0/4",  # multicast, RFC 5771
        "240.0.0.0/4",  # reserved (and 255.255.255.255 broadcast), RFC 1112
    )
)
_V6_GLOBAL_UNICAST: Final = ipaddress.IPv6Network("2000::/3")  # RFC 4291 §2.4
_V6_BLOCKED: Final = tuple(
    ipaddress.IPv6Network(net)
    for net in (
        "2001::/23",  # IETF protocol assignments incl. Teredo 2001::/32, RFC 2928
        "2001:db8::/32",  # documentation, RFC 3849
        "3fff::/20",  # documentation, RFC 9637
    )
)
_V6_MAPPED: Final = ipaddress.IPv6Network("::ffff:0:0/96")  # RFC 4291 §2.5.5.2
_V6_NAT64: Final = ipaddress.IPv6Network("64:ff9b::/96")  # RFC 6052 §2.1
_V6_6TO4: Final = ipaddress.IPv6Network("2002::/16")  # RFC 3056 §2


def is_public_address(address: IPAddress) -> bool:
    """Whether ``address`` is globally reachable unicast (the only kind we may connect to).

    Decided by explicit tables, not ``ipaddress.is_global``, whose answers changed between
    Python patch releases. IPv6 must be global unicast (``2000::/3``, which excludes ``::1``,
    ``::``, ULA ``fc00::/7``, link-local ``fe80::/10``, multicast ``ff00::/8`` and the rest);
    an IPv6 address that embeds an IPv4 one (mapped, NAT64, 6to4) is judged by that IPv4
    address, so ``::ffff:127.0.0.1`` is loopback.
    """
    if isinstance(address, ipaddress.IPv4Address):
        return not any(address in net for net in _V4_BLOCKED)
    if address.scope_id:
        return False
    if address in _V6_MAPPED or address in _V6_NAT64:
        return is_public_address(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    if address in _V6_6TO4:
        return is_public_address(ipaddress.IPv4Address((int(address) >> 80) & 0xFFFFFFFF))
    if address not in _V6_GLOBAL_UNICAST:
        return False
    return not any(address in net for net in _V6_BLOCKED)


async def system_resolver(host: str, port: int) -> Sequence[str]:
    """The operating system's resolver (``getaddrinfo``), TCP addresses in its order."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    seen: dict[str, None] = {}
    for _family, _type, _proto, _canon, sockaddr in infos:
        seen.setdefault(str(sockaddr[0]), None)
    return list(seen)


# --------------------------------------------------------------------------- URL rules


@dataclass(frozen=True, slots=True)
class Target:
    """A URL that passed the rules, and where to connect: its host and effective port."""

    url: httpx.URL
    host: str  # ASCII (IDNA) hostname or IP literal, without brackets
    port: int
    netloc: str  # Host header value: host[:port], IPv6 in brackets

    @property
    def origin(self) -> tuple[str, str, int]:
        return (self.url.scheme, self.host, self.port)


def parse_target(url: str, *, allow_private: bool, identifier: bool) -> Target:
    if not isinstance(url, str) or not url or len(url) > _MAX_URL_LENGTH:
        raise FetchError("bad_url", "The URL is empty or too long.")
    try:
        parsed = httpx.URL(url)
        port = parsed.port
    except (httpx.InvalidURL, ValueError, TypeError):
        raise FetchError("bad_url", "The URL cannot be parsed.") from None
    scheme = parsed.scheme
    if scheme != "https" and not (allow_private and scheme == "http"):
        raise FetchError("not_https", "Only https URLs are allowed.")
    host = parsed.raw_host.decode("ascii").rstrip(".")
    if not host:
        raise FetchError("bad_url", "The URL has no host.")
    if parsed.userinfo:
        raise FetchError("bad_url", "The URL must not carry user information.")
    if port is not None and not 0 < port < 65536:
        raise FetchError("bad_url", "The URL port is out of range.")
    if parsed.fragment or "#" in url:
        raise FetchError("bad_url", "The URL must not have a fragment.")
    # OIDC Discovery §3 / RFC 8414 §2: an issuer identifier has no query and no fragment.
    if identifier and (parsed.query or "?" in url):
        raise FetchError("bad_url", "An issuer identifier must not have a query.")
    effective_port = port if port is not None else (443 if scheme == "https" else 80)
    return Target(parsed, host, effective_port, parsed.netloc.decode("ascii"))


async def resolve_target(
    target: Target, *, allow_private: bool, resolver: Resolver
) -> tuple[IPAddress, ...]:
    try:
        literal: IPAddress | None = ipaddress.ip_address(target.host)
    except ValueError:
        literal = None
    if literal is not None:
        candidates: Sequence[str] = [str(literal)]
    else:
        try:
            candidates = await resolver(target.host, target.port)
        except (OSError, UnicodeError):
            raise FetchError("resolve_failed", f"Host {target.host} does not resolve.") from None
    addresses: list[IPAddress] = []
    for text in candidates:
        try:
            addresses.append(ipaddress.ip_address(text))
        except ValueError:
            raise FetchError("resolve_failed", f"Host {target.host} does not resolve.") from None
    if not addresses:
        raise FetchError("resolve_failed", f"Host {target.host} does not resolve.")
    # Every address, not just the first: any one of them could be the one we end up using.
    if not allow_private and not all(is_public_address(a) for a in addresses):
        raise FetchError("private_address", f"Host {target.host} resolves to a non-public address.")
    return tuple(addresses)


async def _check_url(
    url: str, *, allow_private: bool, identifier: bool, resolver: Resolver | None, timeout_s: float
) -> FetchError | None:
    try:
        target = parse_target(url, allow_private=allow_private, identifier=identifier)
        async with asyncio.timeout(timeout_s):
            await resolve_target(
                target, allow_private=allow_private, resolver=resolver or system_resolver
            )
    except FetchError as exc:
        return exc
    except TimeoutError:
        return FetchError("timeout", "Resolving the host timed out.")
    return None


async def check_issuer_url(
    url: str,
    *,
    allow_private: bool,
    resolver: Resolver | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> FetchError | None:
    """Whether ``url`` may be a trusted issuer identifier: ``None`` if so, else the refusal.

    For creation time (a 400 naming ``reason``): the URL rules, no query (OIDC Discovery §3),
    and the host resolved now with the address rule applied. Nothing is fetched.
    """
    return await _check_url(
        url, allow_private=allow_private, identifier=True, resolver=resolver, timeout_s=timeout_s
    )


async def check_jwks_url(
    url: str,
    *,
    allow_private: bool,
    resolver: Resolver | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> FetchError | None:
    """Like :func:`check_issuer_url` for a configured ``jwks_uri`` (a query is allowed)."""
    return await _check_url(
        url, allow_private=allow_private, identifier=False, resolver=resolver, timeout_s=timeout_s
    )
