"""``GET /sdk/authsvc.js``: the browser module of DESIGN §9, served as it ships in the package.

An ES module without dependencies or build step (``createTokenSource``). Module scripts are
fetched in CORS mode, so any origin may load it (``Access-Control-Allow-Origin: *``; it holds
nothing secret); it is cacheable for an hour and revalidated with its ETag.
"""

from __future__ import annotations

import functools
import hashlib
from importlib import resources

from litestar import Request, Response, get

MAX_AGE_S = 3600


@functools.cache
def _module() -> tuple[bytes, str]:
    body = resources.files("authsvc").joinpath("sdk/authsvc.js").read_bytes()
    return body, '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


@get("/sdk/authsvc.js", tags=["frontend (public)"], security=[{}], include_in_schema=True)
async def sdk_module(request: Request) -> Response[bytes]:  # type: ignore[type-arg]
    body, etag = _module()
    headers = {
        "Cache-Control": f"public, max-age={MAX_AGE_S}",
        "ETag": etag,
        "Access-Control-Allow-Origin": "*",
    }
    if request.headers.get("if-none-match") == etag:
        return Response(b"", status_code=304, headers=headers)
    return Response(body, media_type="text/javascript; charset=utf-8", headers=headers)
