"""The JWKS fetcher and client against a real local HTTP(S) server.

Loopback is private, so these run with ``allow_private=True`` except where the point is the
refusal: then the server must see no connection at all.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator, Sequence

import pytest

from authsvc.clock import FrozenClock
from authsvc.issuers.fetch import JsonFetcher
from authsvc.issuers.jwks_cache import JwksClient, JwksSource, JwksUnavailable
from authsvc.issuers.urls import FetchError
from tests.idp import (
    IdpServer,
    Keys,
    Reply,
    TlsMaterial,
    private_jwk,
    public_jwk,
    serve,
    tls_material,
)

SECRET_BODY = "do-not-echo-9f3a"


@pytest.fixture(scope="module")
def keys() -> Keys:
    return Keys()


@pytest.fixture
def idp() -> Iterator[IdpServer]:
    with serve() as server:
        yield server


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsMaterial:
    return tls_material(tmp_path_factory.mktemp("tls"), "issuer.test")


@pytest.fixture
def tls_idp(tls: TlsMaterial) -> Iterator[IdpServer]:
    with serve(tls) as server:
        yield server


def fetcher(**kwargs: object) -> JsonFetcher:
    options: dict[str, object] = {"allow_private": True}
    options.update(kwargs)
    return JsonFetcher(**options)  # type: ignore[arg-type]


async def refused(url: str, **kwargs: object) -> FetchError:
    with pytest.raises(FetchError) as caught:
        await fetcher(**kwargs).get_json(url)
    return caught.value


# --------------------------------------------------------------------------- basics


async def test_a_json_document_is_fetched_with_its_cache_control(idp: IdpServer) -> None:
    idp.routes["/jwks"] = Reply.json({"keys": []}, headers={"Cache-Control": "max-age=120"})
    document = await fetcher().get_json(idp.url("/jwks"))
    assert document.body == {"keys": []}
    assert document.cache_control == "max-age=120"
    assert [seen.path for seen in idp.requests] == ["/jwks"]


async def test_the_connection_is_pinned_to_the_checked_address_with_the_hostname_for_tls(
    tls: TlsMaterial, tls_idp: IdpServer
) -> None:
    asked: list[str] = []

    async def resolve(host: str, port: int) -> Sequence[str]:
        asked.append(host)
        return ["127.0.0.1"] if len(asked) == 1 else ["192.0.2.1"]  # a rebinding resolver

    tls_idp.routes["/jwks"] = Reply.json({"keys": []})
    url = f"https://issuer.test:{tls_idp.port}/jwks"  # resolvable only through `resolve`
    document = await fetcher(resolver=resolve, ssl_context=tls.client).get_json(url)
    assert document.body == {"keys": []}
    assert asked == ["issuer.test"]  # asked once: the answer checked is the answer used
    (seen,) = tls_idp.requests
    assert seen.host == f"issuer.test:{tls_idp.port}"
    assert seen.sni == "issuer.test"


async def test_the_certificate_is_checked_against_the_hostname(
    tls: TlsMaterial, tls_idp: IdpServer
) -> None:
    async def resolve(host: str, port: int) -> Sequence[str]:
        return ["127.0.0.1"]

    tls_idp.routes["/jwks"] = Reply.json({"keys": []})
    error = await refused(
        f"https://other.test:{tls_idp.port}/jwks", resolver=resolve, ssl_context=tls.client
    )
    assert error.reason == "network"
    assert tls_idp.requests == []


async def test_an_untrusted_certificate_is_refused(tls_idp: IdpServer) -> None:
    async def resolve(host: str, port: int) -> Sequence[str]:
        return ["127.0.0.1"]

    tls_idp.routes["/jwks"] = Reply.json({"keys": []})
    error = await refused(f"https://issuer.test:{tls_idp.port}/jwks", resolver=resolve)
    assert error.reason == "network"
    assert tls_idp.requests == []


# --------------------------------------------------------------------------- refused up front


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:{port}/jwks",
        "https://127.0.0.1:{port}/jwks",
        "https://localhost:{port}/jwks",
        "https://[::1]:{port}/jwks",
        "https://[::ffff:127.0.0.1]:{port}/jwks",
        "https://2130706433:{port}/jwks",
        "https://10.0.0.1:{port}/jwks",
        "https://169.254.169.254/latest/meta-data",
        "http://idp.example.com/jwks",
    ],
)
async def test_without_allow_private_nothing_is_sent_to_private_or_plain_http_urls(
    idp: IdpServer, url: str
) -> None:
    idp.routes["/jwks"] = Reply.json({"keys": []})
    started = time.monotonic()
    error = await refused(url.format(port=idp.port), allow_private=False)
    assert error.reason in {"private_address", "not_https"}
    assert time.monotonic() - started < 1.0
    assert idp.connections == 0
    assert idp.requests == []


async def test_without_allow_private_a_jwks_client_never_connects(idp: IdpServer) -> None:
    idp.routes["/.well-known/openid-configuration"] = Reply.json({"issuer": idp.url()})
    client = JwksClient(JsonFetcher(allow_private=False), clock=FrozenClock(0))
    source = JwksSource("ti_1", issuer=idp.url(scheme="https"))
    with pytest.raises(JwksUnavailable) as caught:
        await client.get_key(source, "k1")
    assert caught.value.reason == "private_address"
    assert idp.connections == 0


# --------------------------------------------------------------------------- hostile servers


async def test_a_slow_server_is_cut_off_at_the_deadline(idp: IdpServer) -> None:
    idp.routes["/jwks"] = Reply.json({"keys": []}, delay_s=5)
    started = time.monotonic()
    error = await refused(idp.url("/jwks"))
    assert error.reason == "timeout"
    assert time.monotonic() - started < 2.5


async def test_a_trickling_body_is_cut_off_at_the_total_deadline(idp: IdpServer) -> None:
    body = json.dumps({"keys": [], "pad": "x" * 200}).encode()
    idp.routes["/jwks"] = Reply(body=body, chunk=8, chunk_delay_s=0.25)
    started = time.monotonic()
    error = await refused(idp.url("/jwks"))
    assert error.reason == "timeout"
    assert time.monotonic() - started < 2.5


async def test_a_declared_giant_document_is_refused_before_reading(idp: IdpServer) -> None:
    idp.routes["/jwks"] = Reply(body=b"{}", headers={"Content-Length": str(50 * 1024 * 1024)})
    error = await refused(idp.url("/jwks"))
    assert error.reason == "too_large"


async def test_an_undeclared_giant_document_is_aborted_past_the_cap(idp: IdpServer) -> None:
    giant = b'{"keys": [], "pad": "' + b"x" * (4 * 1024 * 1024) + b'"}'
    idp.routes["/jwks"] = Reply(body=giant, unframed=True)
    started = time.monotonic()
    error = await refused(idp.url("/jwks"))
    assert error.reason == "too_large"
    assert time.monotonic() - started < 2.0


async def test_a_document_just_under_the_cap_is_accepted(idp: IdpServer) -> None:
    body = b'{"pad": "' + b"x" * (256 * 1024 - 20) + b'"}'
    assert len(body) <= 256 * 1024
    idp.routes["/jwks"] = Reply(body=body, unframed=True)
    assert (await fetcher().get_json(idp.url("/jwks"))).body["pad"].startswith("x")


async def test_a_compressed_body_is_refused(idp: IdpServer) -> None:
    idp.routes["/jwks"] = Reply(body=b"\x1f\x8b", headers={"Content-Encoding": "gzip"})
    error = await refused(idp.url("/jwks"))
    assert error.reason == "bad_encoding"


async def test_a_redirect_to_another_host_is_refused(idp: IdpServer) -> None:
    target = idp.url("/jwks", host="localhost")
    idp.routes["/old"] = Reply(status=302, headers={"Location": target}, body=b"")
    idp.routes["/jwks"] = Reply.json({"keys": []})
    error = await refused(idp.url("/old"))
    assert error.reason == "redirect"
    assert [seen.path for seen in idp.requests] == ["/old"]


@pytest.mark.parametrize(
    "location",
    [
        "http://169.254.169.254/latest/meta-data",
        "https://127.0.0.1:{port}/jwks",
        "//evil.example/jwks",
    ],
)
async def test_redirects_to_another_origin_are_refused(idp: IdpServer, location: str) -> None:
    idp.routes["/old"] = Reply(
        status=301, headers={"Location": location.format(port=idp.port)}, body=b""
    )
    error = await refused(idp.url("/old"))
    assert error.reason == "redirect"
    assert len(idp.requests) == 1


async def test_a_same_origin_redirect_is_followed(idp: IdpServer) -> None:
    idp.routes["/old"] = Reply(status=308, headers={"Location": "/jwks"}, body=b"")
    idp.routes["/jwks"] = Reply.json({"keys": []})
    assert (await fetcher().get_json(idp.url("/old"))).body == {"keys": []}
    assert [seen.path for seen in idp.requests] == ["/old", "/jwks"]


async def test_a_redirect_loop_stops(idp: IdpServer) -> None:
    idp.routes["/loop"] = Reply(status=302, headers={"Location": "/loop"}, body=b"")
    error = await refused(idp.url("/loop"))
    assert error.reason == "redirect"
    assert len(idp.requests) == 3


@pytest.mark.parametrize("status", [201, 204, 304, 401, 404, 500, 503])
async def test_any_status_but_200_is_refused_without_echoing_the_body(
    idp: IdpServer, status: int
) -> None:
    idp.routes["/jwks"] = Reply(status=status, body=SECRET_BODY.encode())
    error = await refused(idp.url("/jwks"))
    assert error.reason == "http_status"
    assert SECRET_BODY not in str(error)
    assert SECRET_BODY not in repr(error)


@pytest.mark.parametrize(
    "body",
    [
        b"[1, 2]",
        b'"keys"',
        b"not json " + SECRET_BODY.encode(),
        b'{"keys": [], "keys": [{"kid": "x"}]}',
        b'{"n": NaN}',
        b"\xff\xfe{\x00}\x00",
        b"",
    ],
)
async def test_a_body_that_is_not_one_json_object_is_refused(idp: IdpServer, body: bytes) -> None:
    idp.routes["/jwks"] = Reply(body=body)
    error = await refused(idp.url("/jwks"))
    assert error.reason == "bad_json"
    assert SECRET_BODY not in str(error)


async def test_a_closed_port_is_a_network_error(idp: IdpServer) -> None:
    error = await refused("http://127.0.0.1:1/jwks")
    assert error.reason == "network"


# --------------------------------------------------------------------------- the JWKS client


def idp_client(idp: IdpServer, **kwargs: object) -> tuple[JwksClient, JwksSource, list[float]]:
    mono = [1000.0]
    client = JwksClient(
        fetcher(),
        clock=FrozenClock(1_800_000_000),
        monotonic=lambda: mono[0],
        **kwargs,  # type: ignore[arg-type]
    )
    return client, JwksSource("ti_1", issuer=idp.url("/realms/acme")), mono


def publish(idp: IdpServer, jwks: object, **reply: object) -> None:
    issuer = idp.url("/realms/acme")
    idp.routes["/realms/acme/.well-known/openid-configuration"] = Reply.json(
        {"issuer": issuer, "jwks_uri": idp.url("/realms/acme/certs")}
    )
    idp.routes["/realms/acme/certs"] = Reply.json(jwks, **reply)


def jwks_requests(idp: IdpServer) -> int:
    return sum(seen.path == "/realms/acme/certs" for seen in idp.requests)


async def test_keys_come_from_discovery_and_are_cached_by_max_age(
    idp: IdpServer, keys: Keys
) -> None:
    publish(idp, keys.jwks(), headers={"Cache-Control": "public, max-age=600"})
    client, source, mono = idp_client(idp)
    for kid in ("rsa-1", "ec-1", "ed-1", "ec-1"):
        assert await client.get_key(source, kid) is not None
    assert jwks_requests(idp) == 1
    mono[0] += 601
    assert await client.get_key(source, "ec-1") is not None
    assert jwks_requests(idp) == 2


async def test_a_discovery_document_for_another_issuer_is_refused(
    idp: IdpServer, keys: Keys
) -> None:
    publish(idp, keys.jwks())
    idp.routes["/realms/acme/.well-known/openid-configuration"] = Reply.json(
        {"issuer": idp.url("/realms/other"), "jwks_uri": idp.url("/realms/acme/certs")}
    )
    client, source, _ = idp_client(idp)
    with pytest.raises(JwksUnavailable) as caught:
        await client.get_key(source, "ec-1")
    assert caught.value.reason == "issuer_mismatch"
    assert jwks_requests(idp) == 0


async def test_hundreds_of_keys_refuse_the_document(idp: IdpServer, keys: Keys) -> None:
    publish(idp, {"keys": [public_jwk(keys.ec, f"k{i}") for i in range(300)]})
    client, source, _ = idp_client(idp)
    with pytest.raises(JwksUnavailable) as caught:
        await client.get_key(source, "k1")
    assert caught.value.reason == "bad_jwks"


async def test_a_hundred_keys_are_all_usable(idp: IdpServer, keys: Keys) -> None:
    publish(idp, {"keys": [public_jwk(keys.ec, f"k{i}") for i in range(100)]})
    client, source, _ = idp_client(idp)
    assert await client.get_key(source, "k0") is not None
    assert await client.get_key(source, "k99") is not None


async def test_a_giant_jwks_is_unavailable(idp: IdpServer) -> None:
    publish(idp, {"keys": [], "pad": "x" * (300 * 1024)})
    client, source, _ = idp_client(idp)
    with pytest.raises(JwksUnavailable) as caught:
        await client.get_key(source, "k1")
    assert caught.value.reason == "too_large"


async def test_unsupported_and_private_keys_are_skipped_and_the_rest_served(
    idp: IdpServer, keys: Keys, caplog: pytest.LogCaptureFixture
) -> None:
    leaked = private_jwk(keys.rsa, "leaky")
    publish(
        idp,
        {
            "keys": [
                leaked,
                {"kty": "oct", "kid": "hmac", "k": "c2VjcmV0LXNlY3JldA"},
                {"kty": "EC", "crv": "P-521", "kid": "p521", "x": "AA", "y": "AA"},
                public_jwk(keys.rsa, "enc", use="enc"),
                public_jwk(keys.ec, "good"),
            ]
        },
    )
    client, source, _ = idp_client(idp)
    with caplog.at_level("WARNING", logger="authsvc.issuers.jwks_cache"):
        assert await client.get_key(source, "good") is not None
        for kid in ("leaky", "hmac", "p521", "enc"):
            assert await client.get_key(source, kid) is None
    assert "leaky" in caplog.text
    assert "private key material" in caplog.text
    for secret in (leaked["d"], leaked["p"], "c2VjcmV0LXNlY3JldA"):
        assert secret not in caplog.text


async def test_fifty_concurrent_unknown_kid_lookups_make_one_fetch(
    idp: IdpServer, keys: Keys
) -> None:
    publish(idp, keys.jwks())
    client, source, mono = idp_client(idp)
    await client.get_key(source, "ec-1")
    mono[0] += 5
    publish(idp, {"keys": [*keys.jwks()["keys"], public_jwk(keys.ec, "new")]}, delay_s=0.2)
    before = len(idp.requests)
    results = await asyncio.gather(*(client.get_key(source, "new") for _ in range(50)))
    assert all(key is not None and key.kid == "new" for key in results)
    assert len(idp.requests) - before == 2  # one discovery + one JWKS, shared by all 50


async def test_unknown_kid_refetches_are_throttled_per_issuer(idp: IdpServer, keys: Keys) -> None:
    publish(idp, keys.jwks())
    client, source, mono = idp_client(idp)
    await client.get_key(source, "ec-1")
    for _ in range(30):
        assert await client.get_key(source, "unknown") is None
        mono[0] += 0.1
    assert jwks_requests(idp) == 1  # 3 s: still inside the 5 s window
    mono[0] += 2
    assert await client.get_key(source, "unknown") is None
    assert jwks_requests(idp) == 2


async def test_a_failing_refetch_keeps_serving_the_cached_keys(idp: IdpServer, keys: Keys) -> None:
    publish(idp, keys.jwks())
    client, source, mono = idp_client(idp)
    assert await client.get_key(source, "ec-1") is not None
    idp.routes["/realms/acme/certs"] = Reply(status=503, body=b"down")
    mono[0] += 301
    assert await client.get_key(source, "ec-1") is not None
    assert await client.get_key(source, "not-there") is None
    status = client.status("ti_1")
    assert status is not None
    assert status.last_error == "http_status"


async def test_an_issuer_that_never_answered_is_unavailable(idp: IdpServer) -> None:
    client, source, _ = idp_client(idp)
    with pytest.raises(JwksUnavailable) as caught:
        await client.get_key(source, "ec-1")
    assert caught.value.reason == "http_status"
