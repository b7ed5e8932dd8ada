"""Issuer and JWKS URL rules: https only, public addresses only, decided before any connection.

Resolution is injected (a fake DNS answer) where a public name is needed; literal addresses and
``localhost`` go through the real system resolver, which answers them without the network.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st

from authsvc.issuers.fetch import JsonFetcher
from authsvc.issuers.urls import (
    FetchError,
    Resolver,
    check_issuer_url,
    check_jwks_url,
    is_public_address,
)

REFUSED = [
    "0.0.0.0",  # noqa: S104 (an address to refuse, not to bind)
    "0.1.2.3",
    "10.0.0.1",
    "100.64.0.1",
    "100.127.255.254",
    "127.0.0.1",
    "127.255.255.254",
    "169.254.169.254",
    "172.16.0.1",
    "172.31.255.255",
    "192.0.0.9",
    "192.0.2.1",
    "192.88.99.1",
    "192.168.1.1",
    "198.18.0.1",
    "198.51.100.7",
    "203.0.113.9",
    "224.0.0.1",
    "239.255.255.250",
    "240.0.0.1",
    "255.255.255.255",
    "::",
    "::1",
    "::127.0.0.1",
    "::ffff:127.0.0.1",
    "::ffff:10.0.0.1",
    "::ffff:169.254.169.254",
    "64:ff9b::a00:1",
    "64:ff9b::7f00:1",
    "64:ff9b:1::1",
    "100::1",
    "2001::1",
    "2001:db8::1",
    "2002:7f00:1::",
    "2002:a9fe:a9fe::1",
    "3fff::1",
    "5f00::1",
    "fc00::1",
    "fd12:3456::1",
    "fe80::1",
    "fe80::1%1",
    "fec0::1",
    "ff02::1",
    "ff0e::1",
]
ACCEPTED = [
    "1.1.1.1",
    "8.8.8.8",
    "93.184.215.14",
    "100.63.255.255",
    "100.128.0.1",
    "172.15.255.255",
    "172.32.0.1",
    "2606:4700:4700::1111",
    "2a00:1450:4007:80f::200e",
    "::ffff:8.8.8.8",
    "64:ff9b::808:808",
    "2002:808:808::1",
]


@pytest.mark.parametrize("address", REFUSED)
def test_non_public_addresses_are_refused(address: str) -> None:
    assert not is_public_address(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ACCEPTED)
def test_public_addresses_are_accepted(address: str) -> None:
    assert is_public_address(ipaddress.ip_address(address))


@given(st.ip_addresses(v=4))
def test_an_ipv4_mapped_address_is_judged_like_its_ipv4_address(v4: ipaddress.IPv4Address) -> None:
    mapped = ipaddress.IPv6Address(f"::ffff:{v4}")
    assert is_public_address(mapped) == is_public_address(v4)


@given(st.ip_addresses(v=4))
def test_a_nat64_address_is_judged_like_its_ipv4_address(v4: ipaddress.IPv4Address) -> None:
    nat64 = ipaddress.IPv6Address(int(ipaddress.IPv6Address("64:ff9b::")) | int(v4))
    assert is_public_address(nat64) == is_public_address(v4)


@given(st.ip_addresses(v=4))
def test_rfc1918_loopback_and_link_local_are_never_public(v4: ipaddress.IPv4Address) -> None:
    if v4.is_private or v4.is_loopback or v4.is_link_local or v4.is_multicast:
        assert not is_public_address(v4)


def dns(answer: Sequence[str]) -> tuple[list[str], Resolver]:
    asked: list[str] = []

    async def resolve(host: str, port: int) -> Sequence[str]:
        asked.append(host)
        return list(answer)

    return asked, resolve


async def test_an_https_issuer_on_a_public_address_is_accepted() -> None:
    asked, resolve = dns(["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"])
    result = await check_issuer_url(
        "https://idp.example.com/realms/acme", allow_private=False, resolver=resolve
    )
    assert result is None
    assert asked == ["idp.example.com"]


@pytest.mark.parametrize(
    "url",
    [
        "http://idp.example.com",
        "ftp://idp.example.com/x",
        "ws://idp.example.com",
        "idp.example.com",
    ],
)
async def test_a_non_https_issuer_is_refused_without_resolving(url: str) -> None:
    asked, resolve = dns(["93.184.215.14"])
    result = await check_issuer_url(url, allow_private=False, resolver=resolve)
    assert isinstance(result, FetchError)
    assert result.reason in {"not_https", "bad_url"}
    assert asked == []


async def test_a_name_resolving_to_a_private_address_is_refused() -> None:
    _, resolve = dns(["10.1.2.3"])
    result = await check_issuer_url(
        "https://idp.example.com", allow_private=False, resolver=resolve
    )
    assert isinstance(result, FetchError)
    assert result.reason == "private_address"
    assert "idp.example.com" in result.message


async def test_one_private_address_among_public_ones_refuses_the_name() -> None:
    _, resolve = dns(["93.184.215.14", "169.254.169.254"])
    result = await check_issuer_url(
        "https://idp.example.com", allow_private=False, resolver=resolve
    )
    assert isinstance(result, FetchError)
    assert result.reason == "private_address"


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1/",
        "https://localhost/",
        "https://10.0.0.1/",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/",
        "https://[::ffff:127.0.0.1]/",
        "https://2130706433/",
        "https://0x7f.1/",
        "https://0/",
    ],
)
async def test_loopback_private_and_metadata_hosts_are_refused(url: str) -> None:
    result = await check_jwks_url(url, allow_private=False)
    assert isinstance(result, FetchError)
    assert result.reason in {"private_address", "resolve_failed"}


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("https://user:pw@idp.example.com/", "bad_url"),
        ("https://idp.example.com/#frag", "bad_url"),
        ("https://idp.example.com/?tenant=1", "bad_url"),
        ("https://idp.example.com:0/", "bad_url"),
        ("https://idp.example.com:70000/", "bad_url"),
        ("https:///path", "bad_url"),
        ("https://" + "a" * 3000 + ".com/", "bad_url"),
        ("", "bad_url"),
    ],
)
async def test_malformed_issuer_urls_are_refused(url: str, reason: str) -> None:
    _, resolve = dns(["93.184.215.14"])
    result = await check_issuer_url(url, allow_private=False, resolver=resolve)
    assert isinstance(result, FetchError)
    assert result.reason == reason


async def test_a_jwks_uri_may_carry_a_query() -> None:
    _, resolve = dns(["93.184.215.14"])
    assert (
        await check_jwks_url(
            "https://idp.example.com/keys?v=2", allow_private=False, resolver=resolve
        )
        is None
    )


async def test_allow_private_lifts_the_https_and_address_rules() -> None:
    assert await check_issuer_url("http://127.0.0.1:8080/realm", allow_private=True) is None
    assert await check_issuer_url("http://localhost:8080", allow_private=True) is None


async def test_allow_private_keeps_the_form_rules() -> None:
    result = await check_issuer_url("http://user@127.0.0.1/", allow_private=True)
    assert isinstance(result, FetchError)
    assert result.reason == "bad_url"


async def test_a_name_that_does_not_resolve_is_refused() -> None:
    async def nxdomain(host: str, port: int) -> Sequence[str]:
        raise OSError("no such name")

    result = await check_issuer_url("https://nope.invalid", allow_private=False, resolver=nxdomain)
    assert isinstance(result, FetchError)
    assert result.reason == "resolve_failed"


async def test_a_resolver_that_hangs_is_bounded_by_the_timeout() -> None:
    import asyncio

    async def hang(host: str, port: int) -> Sequence[str]:
        await asyncio.sleep(30)
        return []

    result = await check_issuer_url(
        "https://slow.example.com", allow_private=False, resolver=hang, timeout_s=0.1
    )
    assert isinstance(result, FetchError)
    assert result.reason == "timeout"


async def test_the_fetcher_refuses_a_private_name_before_connecting() -> None:
    asked, resolve = dns(["127.0.0.1"])
    fetcher = JsonFetcher(allow_private=False, resolver=resolve)
    with pytest.raises(FetchError) as caught:
        await fetcher.get_json("https://rebind.example.com/jwks")
    assert caught.value.reason == "private_address"
    assert asked == ["rebind.example.com"]
