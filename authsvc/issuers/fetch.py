"""Outgoing GETs of small JSON documents (JWKS, OIDC discovery) that cannot be turned into SSRF.

A trusted issuer's URLs are chosen by a tenant admin, so every fetch is treated as hostile
input aimed at our network position. One fetch:

1. parses the URL (``https`` only, a host, no user-info, a port in 1-65535) and
2. resolves the host once and refuses unless **every** address is public, both by the rules of
   :mod:`authsvc.issuers.urls`;
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
import json
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import httpx

from authsvc.issuers.urls import (
    DEFAULT_TIMEOUT_S,
    FetchError,
    IPAddress,
    Resolver,
    Target,
    parse_target,
    resolve_target,
    system_resolver,
)

__all__ = [
    "DEFAULT_MAX_BYTES",
    "MAX_REDIRECTS",
    "JsonDocument",
    "JsonFetcher",
]

DEFAULT_MAX_BYTES: Final = 256 * 1024
MAX_REDIRECTS: Final = 2
_REDIRECT_STATUSES: Final = frozenset({301, 302, 303, 307, 308})


@dataclass(frozen=True, slots=True)
class JsonDocument:
    """A fetched JSON object and the response's ``Cache-Control`` (for the caller's cache)."""

    url: str
    body: dict[str, Any]
    cache_control: str | None


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
        target = parse_target(url, allow_private=self.allow_private, identifier=False)
        try:
            async with asyncio.timeout(self.timeout_s):
                addresses = await resolve_target(
                    target, allow_private=self.allow_private, resolver=self._resolver
                )
                return await self._follow(target, addresses)
        except TimeoutError:
            raise FetchError("timeout", f"Fetching from {target.host} timed out.") from None

    async def _follow(self, target: Target, addresses: Sequence[IPAddress]) -> JsonDocument:
        current = target
        for _ in range(MAX_REDIRECTS + 1):
            location = await self._get_one(current, addresses)
            if isinstance(location, JsonDocument):
                return location
            try:
                following = parse_target(
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

    async def _get_one(self, target: Target, addresses: Sequence[IPAddress]) -> JsonDocument | str:
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

    async def _get_at(self, target: Target, address: IPAddress) -> JsonDocument | str:
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
