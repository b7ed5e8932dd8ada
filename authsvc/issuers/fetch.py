"""Outgoing GETs of small JSON documents (JWKS, OIDC discovery) that cannot be turned into SSRF.

A trusted issuer's URLs are chosen by a tenant admin, so every fetch is treated as hostile
input aimed at our network position. One fetch:

1. parses the URL (``https`` only, a host, no user-info, a port in 1-65535);
2. resolves the host once (``getaddrinfo``) and refuses unless **every** address is public
   (:func:`is_public_address`: loopback, private, link-local, CGNAT, multicast, reserved,
   documentation, unspecified, and IPv6 forms that embed such an IPv4 address are all refused);
3. connects to an address it checked, never to the name: the request URL carries the IP
   literal while the ``Host`` header and the TLS ``server_hostname`` (SNI and certificate
   check) stay the hostname, through httpx's documented ``sni_hostname`` request extension.
   DNS is therefore asked exactly once and the answer that was checked is the one used, so a
   rebinding resolver (public answer for the check, ``127.0.0.1`` for the connect) gains
   nothing. Addresses are tried in resolver order; the next one only after a connect error;
4. follows no redirect to another origin: up to :data:`MAX_REDIRECTS` redirects are followed
   when scheme, host and port are unchanged (on the same pinned addresses), anything else is a
   ``redirect`` error;
5. sends ``Accept-Encoding: identity`` and refuses an encoded body (a gzip bomb would defeat
   the size cap), refuses a ``Content-Length`` above the cap, then reads the body streamed and
   aborts as soon as it exceeds the cap (256 KiB);
6. parses UTF-8 JSON (RFC 8259 §8.1), refusing duplicate member names, ``NaN``/``Infinity``
   and anything that is not an object.

The whole fetch, resolution and redirects included, runs under one deadline (2 s). Each fetch
uses its own client, so no connection made for one hostname is ever reused for another one
that shares its address; ``trust_env`` is off (no proxy from the environment could bypass the
address rule). With ``allow_private`` (``AUTHSVC_ALLOW_PRIVATE_ISSUERS``, development and
tests) plain ``http`` and every address are allowed; the address is still pinned.

Errors are :class:`FetchError` with a stable ``reason``; its message names the URL's host at
most, never any byte of a response body.

Residual risk: the TLS certificate is checked against the hostname, so a pinned connection is
as authentic as any other; but with ``allow_private`` the rules are off by design, and a
public address that forwards to an internal service (an open proxy) is out of our reach.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import socket
import ssl
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal, TypeAlias

import httpx

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_TIMEOUT_S",
    "MAX_REDIRECTS",
    "FetchError",
    "FetchReason",
    "JsonDocument",
    "JsonFetcher",
    "Resolver",
    "check_issuer_url",
    "check_jwks_url",
    "is_public_address",
    "system_resolver",
]

DEFAULT_TIMEOUT_S: Final = 2.0
DEFAULT_MAX_BYTES: Final = 256 * 1024
MAX_REDIRECTS: Final = 2
_MAX_URL_LENGTH: Final = 2048
_REDIRECT_STATUSES: Final = frozenset({301, 302, 303, 307, 308})

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


@dataclass(frozen=True, slots=True)
class JsonDocument:
    """A fetched JSON object and the response's ``Cache-Control`` (for the caller's cache)."""

    url: str
    body: dict[str, Any]
    cache_control: str | None


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
class _Target:
    url: httpx.URL
    host: str  # ASCII (IDNA) hostname or IP literal, without brackets
    port: int
    netloc: str  # Host header value: host[:port], IPv6 in brackets

    @property
    def origin(self) -> tuple[str, str, int]:
        return (self.url.scheme, self.host, self.port)


def _parse(url: str, *, allow_private: bool, identifier: bool) -> _Target:
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
    return _Target(parsed, host, effective_port, parsed.netloc.decode("ascii"))


async def _resolve(
    target: _Target, *, allow_private: bool, resolver: Resolver
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
        target = _parse(url, allow_private=allow_private, identifier=identifier)
        async with asyncio.timeout(timeout_s):
            await _resolve(
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


# --------------------------------------------------------------------------- fetching


def _reject_constant(_name: str) -> Any:
    raise ValueError("NaN and Infinity are not JSON")


def _object_hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):  # RFC 8259 §4: names SHOULD be unique; we require it
        raise ValueError("duplicate member name")
    return obj


_DECODER: Final = json.JSONDecoder(object_pairs_hook=_object_hook, parse_constant=_reject_constant)


def _parse_json(raw: bytes) -> dict[str, Any]:
    try:
        obj = _DECODER.decode(raw.decode("utf-8"))  # RFC 8259 §8.1: UTF-8 between systems
    except (ValueError, RecursionError):
        raise FetchError("bad_json", "The document is not valid JSON.") from None
    if not isinstance(obj, dict):
        raise FetchError("bad_json", "The document is not a JSON object.")
    return obj


class JsonFetcher:
    """Fetches JSON objects under the rules of the module docstring.

    ``resolver`` and ``ssl_context`` are injectable for tests (a fake DNS answer, a test CA);
    production uses the system resolver and httpx's default trust store. The SSL context is
    built once, on first use.
    """

    def __init__(
        self,
        *,
        allow_private: bool,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        max_bytes: int = DEFAULT_MAX_BYTES,
        resolver: Resolver | None = None,
        ssl_context: ssl.SSLContext | None = None,
        user_agent: str = "authsvc",
    ) -> None:
        if timeout_s <= 0 or max_bytes <= 0:
            raise ValueError("timeout_s and max_bytes must be positive")
        self.allow_private = allow_private
        self.timeout_s = timeout_s
        self.max_bytes = max_bytes
        self._resolver = resolver or system_resolver
        self._ssl_context = ssl_context
        self._user_agent = user_agent

    def _context(self) -> ssl.SSLContext:
        if self._ssl_context is None:
            self._ssl_context = httpx.create_ssl_context(trust_env=True)
        return self._ssl_context

    async def get_json(self, url: str) -> JsonDocument:
        """GET ``url`` and return its JSON object; :class:`FetchError` on any refusal."""
        target = _parse(url, allow_private=self.allow_private, identifier=False)
        try:
            async with asyncio.timeout(self.timeout_s):
                addresses = await _resolve(
                    target, allow_private=self.allow_private, resolver=self._resolver
                )
                return await self._follow(target, addresses)
        except TimeoutError:
            raise FetchError("timeout", f"Fetching from {target.host} timed out.") from None

    async def _follow(self, target: _Target, addresses: Sequence[IPAddress]) -> JsonDocument:
        current = target
        for _ in range(MAX_REDIRECTS + 1):
            location = await self._get_one(current, addresses)
            if isinstance(location, JsonDocument):
                return location
            try:
                following = _parse(
                    str(current.url.join(location)),
                    allow_private=self.allow_private,
                    identifier=False,
                )
            except (FetchError, httpx.InvalidURL):
                raise FetchError("redirect", "The server redirected to an invalid URL.") from None
            if following.origin != current.origin:
                raise FetchError("redirect", f"{target.host} redirected to another origin.")
            current = following
        raise FetchError("redirect", f"{target.host} redirected too many times.")

    async def _get_one(self, target: _Target, addresses: Sequence[IPAddress]) -> JsonDocument | str:
        """One GET on the first address that connects: the document, or a same-site Location."""
        for address in addresses:
            try:
                return await self._get_at(target, address)
            except httpx.ConnectError:
                continue  # refused, unreachable or TLS failure: the next address may work
            except httpx.TimeoutException:
                raise FetchError("timeout", f"Fetching from {target.host} timed out.") from None
            except httpx.HTTPError:
                raise FetchError("network", f"The connection to {target.host} failed.") from None
        raise FetchError("network", f"Could not connect to {target.host}.")

    async def _get_at(self, target: _Target, address: IPAddress) -> JsonDocument | str:
        pinned = target.url.copy_with(host=str(address))
        headers = {
            "Host": target.netloc,
            "Accept": "application/json, application/jwk-set+json",
            "Accept-Encoding": "identity",
            "User-Agent": self._user_agent,
        }
        async with (
            httpx.AsyncClient(
                trust_env=False,
                follow_redirects=False,
                timeout=httpx.Timeout(self.timeout_s),
                transport=httpx.AsyncHTTPTransport(
                    verify=self._context(), trust_env=False, retries=0
                ),
            ) as client,
            client.stream(
                "GET", pinned, headers=headers, extensions={"sni_hostname": target.host}
            ) as response,
        ):
            status = response.status_code
            if status in _REDIRECT_STATUSES:
                location = response.headers.get("location")
                if not location:
                    raise FetchError("redirect", "The server redirected without a Location.")
                return str(location)
            if status != 200:
                raise FetchError("http_status", f"{target.host} answered HTTP {status}.")
            encoding = response.headers.get("content-encoding", "identity").strip().lower()
            if encoding != "identity":
                raise FetchError("bad_encoding", "The document has a content encoding.")
            length = response.headers.get("content-length")
            if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
                raise FetchError("too_large", f"The document exceeds {self.max_bytes} bytes.")
            body = bytearray()
            async for chunk in response.aiter_raw():
                body += chunk
                if len(body) > self.max_bytes:
                    raise FetchError("too_large", f"The document exceeds {self.max_bytes} bytes.")
            cache_control = response.headers.get("cache-control")
        return JsonDocument(str(target.url), _parse_json(bytes(body)), cache_control)
