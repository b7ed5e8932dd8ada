"""A stand-in identity provider for tests: its keys, JWKS, tokens, and a real HTTP(S) server.

The server is a ``ThreadingHTTPServer`` on loopback in a daemon thread: real sockets, real
HTTP/1.1 and, with :func:`tls_material`, real TLS with a certificate for a made-up hostname
signed by a throwaway CA. Every request is recorded, so a test can assert that nothing was
sent at all.
"""

from __future__ import annotations

import base64
import datetime
import json
import ssl
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.x509.oid import NameOID
from jwt.algorithms import get_default_algorithms

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | Ed25519PrivateKey


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def uint(value: int) -> str:
    return b64(value.to_bytes((value.bit_length() + 7) // 8 or 1, "big"))


def segment(value: Any) -> str:
    return b64(json.dumps(value).encode())


def public_jwk(key: PrivateKey, kid: str, **extra: Any) -> dict[str, Any]:
    """The public JWK of ``key`` (RFC 7518 §6, RFC 8037 §2)."""
    if isinstance(key, rsa.RSAPrivateKey):
        numbers = key.public_key().public_numbers()
        jwk: dict[str, Any] = {"kty": "RSA", "n": uint(numbers.n), "e": uint(numbers.e)}
    elif isinstance(key, ec.EllipticCurvePrivateKey):
        point = key.public_key().public_numbers()
        size = (key.curve.key_size + 7) // 8
        crv = {"secp256r1": "P-256", "secp384r1": "P-384"}[key.curve.name]
        jwk = {
            "kty": "EC",
            "crv": crv,
            "x": b64(point.x.to_bytes(size, "big")),
            "y": b64(point.y.to_bytes(size, "big")),
        }
    else:
        raw = key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        jwk = {"kty": "OKP", "crv": "Ed25519", "x": b64(raw)}
    return {**jwk, "kid": kid, **extra}


def private_jwk(key: rsa.RSAPrivateKey, kid: str) -> dict[str, Any]:
    """An RSA JWK with its private members (what a JWKS must never contain)."""
    numbers = key.private_numbers()
    return {
        **public_jwk(key, kid),
        "d": uint(numbers.d),
        "p": uint(numbers.p),
        "q": uint(numbers.q),
        "dp": uint(numbers.dmp1),
        "dq": uint(numbers.dmq1),
        "qi": uint(numbers.iqmp),
    }


def sign(header: Mapping[str, Any], payload: Any, key: PrivateKey, alg: str) -> str:
    """A compact JWS whose signature verifies under ``key`` with ``alg`` (whatever the header)."""
    signing_input = f"{segment(dict(header))}.{segment(payload)}"
    signature = get_default_algorithms()[alg].sign(signing_input.encode(), key)
    return f"{signing_input}.{b64(signature)}"


class Keys:
    """One key of each supported type, generated once per test module (RSA is slow)."""

    def __init__(self) -> None:
        self.rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.ec = ec.generate_private_key(ec.SECP256R1())
        self.ed = Ed25519PrivateKey.generate()

    def jwks(self, **extra: Any) -> dict[str, Any]:
        return {
            "keys": [
                public_jwk(self.rsa, "rsa-1", **extra),
                public_jwk(self.ec, "ec-1", **extra),
                public_jwk(self.ed, "ed-1", **extra),
            ]
        }


# --------------------------------------------------------------------------- TLS


@dataclass(frozen=True)
class TlsMaterial:
    server: ssl.SSLContext
    client: ssl.SSLContext


def tls_material(tmp: Path, hostname: str) -> TlsMaterial:
    """A throwaway CA, a server certificate for ``hostname``, and both SSL contexts."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "authsvc test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(hostname)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    cert_file, key_file, ca_file = tmp / "server.pem", tmp / "server.key", tmp / "ca.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert_file, key_file)
    client = ssl.create_default_context(cafile=str(ca_file))
    return TlsMaterial(server=server, client=client)


# --------------------------------------------------------------------------- server


@dataclass
class Reply:
    status: int = 200
    body: bytes = b"{}"
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    #: Send the body in this many bytes per write (with ``chunk_delay_s`` between writes).
    chunk: int = 0
    chunk_delay_s: float = 0.0
    #: No Content-Length: the body ends when the connection closes.
    unframed: bool = False

    @classmethod
    def json(cls, document: Any, **kwargs: Any) -> Reply:
        return cls(body=json.dumps(document).encode(), **kwargs)


@dataclass
class Seen:
    path: str
    host: str | None
    sni: str | None


class IdpServer:
    """Routes ``path → Reply`` (or a callable returning one); records every request."""

    def __init__(self) -> None:
        self.routes: dict[str, Reply | Callable[[], Reply]] = {}
        self.requests: list[Seen] = []
        self.connections = 0
        self._lock = threading.Lock()
        self.port = 0
        self.sni: str | None = None

    def url(self, path: str = "", host: str = "127.0.0.1", scheme: str = "http") -> str:
        return f"{scheme}://{host}:{self.port}{path}"

    def connected(self) -> None:
        with self._lock:
            self.connections += 1

    def record(self, seen: Seen) -> None:
        with self._lock:
            self.requests.append(seen)

    def reply_for(self, path: str) -> Reply:
        route = self.routes.get(path)
        if route is None:
            return Reply(status=404, body=b"not found")
        return route() if callable(route) else route


def _handler(idp: IdpServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            idp.record(Seen(self.path, self.headers.get("Host"), idp.sni))
            reply = idp.reply_for(self.path)
            if reply.delay_s:
                time.sleep(reply.delay_s)
            try:
                self.send_response(reply.status)
                headers = {"Content-Type": "application/json", **reply.headers}
                if reply.unframed:
                    headers["Connection"] = "close"
                    self.close_connection = True
                else:
                    headers.setdefault("Content-Length", str(len(reply.body)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                if reply.chunk:
                    for start in range(0, len(reply.body), reply.chunk):
                        self.wfile.write(reply.body[start : start + reply.chunk])
                        self.wfile.flush()
                        time.sleep(reply.chunk_delay_s)
                else:
                    self.wfile.write(reply.body)
            except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
                pass

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@contextmanager
def serve(tls: TlsMaterial | None = None) -> Iterator[IdpServer]:
    """A running :class:`IdpServer` on 127.0.0.1 (HTTPS when ``tls`` is given)."""
    idp = IdpServer()

    class Server(ThreadingHTTPServer):
        def process_request(self, request: Any, client_address: Any) -> None:
            idp.connected()
            super().process_request(request, client_address)

    httpd = Server(("127.0.0.1", 0), _handler(idp))
    httpd.daemon_threads = True
    if tls is not None:

        def remember_sni(_sock: Any, name: str | None, _ctx: Any) -> None:
            idp.sni = name

        tls.server.sni_callback = remember_sni
        httpd.socket = tls.server.wrap_socket(httpd.socket, server_side=True)
    idp.port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    try:
        yield idp
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)
