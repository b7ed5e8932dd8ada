"""nginx for the example: the shipped ``deploy/nginx/authsvc.conf``, unchanged, behind a small
CORS layer so that a page on another origin can call the data API.

Two servers in one nginx:

- **the shipped gateway**, the template with its four placeholders filled in (as
  ``tests/integration/test_nginx.py`` does), listening on a unix socket: ``auth_request`` to
  ``/v1/authz``, the X-Authsvc-* strip, the 401/403/429 answers;
- **the CORS layer** on the public port. A browser sends a preflight ``OPTIONS`` without the
  ``Authorization`` header before a call that carries one; the shipped gateway would refuse it
  (401) and the browser would never send the real call, so the layer answers preflight itself
  (204) and passes every other request, its raw URI unchanged, to the gateway. It adds
  ``Access-Control-Allow-Origin`` for the page origin only (``map``: any other origin gets no
  CORS header, so its page cannot read the answer) to every answer, the gateway's 401 included:
  without it the page could not see the 401 and the token source could not retry.

A customer with one nginx puts the layer's lines into the gateway's ``location /v0/`` (and its
``@authsvc_401`` / ``@authsvc_403`` locations) instead; the README shows them.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Final

ROOT: Final = Path(__file__).resolve().parents[2]
TEMPLATE: Final = ROOT / "deploy" / "nginx" / "authsvc.conf"
HEADERS_MORE_PATHS: Final = (
    "/usr/lib/nginx/modules/ngx_http_headers_more_filter_module.so",
    "/usr/lib64/nginx/modules/ngx_http_headers_more_filter_module.so",
    "/usr/share/nginx/modules/ngx_http_headers_more_filter_module.so",
)
EXPOSED: Final = (
    "RateLimit, RateLimit-Policy, X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset, "
    "Retry-After, WWW-Authenticate"
)


def find_nginx() -> str | None:
    found = shutil.which("nginx")
    if found:
        return found
    return next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.access(p, os.X_OK)), None
    )


def headers_more_module() -> str | None:
    return next((p for p in HEADERS_MORE_PATHS if os.path.exists(p)), None)


def _cors_layer(*, listen: int, socket_path: Path, page_origin: str) -> str:
    return f"""
map $http_origin $example_cors_origin {{
    default "";
    "{page_origin}" $http_origin;
}}

upstream example_gateway {{
    server unix:{socket_path};
    keepalive 8;
}}

server {{
    listen 127.0.0.1:{listen};

    location / {{
        if ($request_method = OPTIONS) {{
            add_header Access-Control-Allow-Origin $example_cors_origin always;
            add_header Access-Control-Allow-Methods "GET, OPTIONS" always;
            add_header Access-Control-Allow-Headers "Authorization" always;
            add_header Access-Control-Max-Age 600 always;
            add_header Vary Origin always;
            return 204;
        }}
        add_header Access-Control-Allow-Origin $example_cors_origin always;
        add_header Access-Control-Expose-Headers "{EXPOSED}" always;
        add_header Vary Origin always;

        proxy_pass http://example_gateway;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_set_header Host $host;
    }}
}}
"""


def render(
    workdir: Path,
    *,
    listen: int,
    authsvc: str,
    data_api: str,
    gateway_key: str,
    page_origin: str,
) -> Path:
    """Write nginx.conf (+ site.conf, mode 0600: it holds the gateway key) into ``workdir``."""
    socket_path = workdir / "gateway.sock"
    site = (
        TEMPLATE.read_text()
        .replace("${LISTEN_PORT}", f"unix:{socket_path}")
        .replace("${AUTHSVC_ADDR}", authsvc)
        .replace("${DATA_API_ADDR}", data_api)
        .replace("${GATEWAY_KEY}", gateway_key)
    )
    if "${" in site:
        raise RuntimeError(f"{TEMPLATE} has a placeholder this example does not fill")
    site_path = workdir / "site.conf"
    site_path.touch(mode=0o600)
    site_path.write_text(site)
    for d in ("client", "proxy", "fastcgi", "uwsgi", "scgi"):
        (workdir / d).mkdir(exist_ok=True)
    module = headers_more_module()
    load = f"load_module {module};\n" if module else ""
    user = "user root;\n" if os.geteuid() == 0 else ""
    main = f"""{load}{user}worker_processes 1;
daemon off;
pid {workdir}/nginx.pid;
error_log {workdir}/error.log warn;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {workdir}/client;
    proxy_temp_path {workdir}/proxy;
    fastcgi_temp_path {workdir}/fastcgi;
    uwsgi_temp_path {workdir}/uwsgi;
    scgi_temp_path {workdir}/scgi;
{_cors_layer(listen=listen, socket_path=socket_path, page_origin=page_origin)}
    include {site_path};
}}
"""
    path = workdir / "nginx.conf"
    path.write_text(main)
    return path
