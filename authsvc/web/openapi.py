"""OpenAPI fix-ups: document the error body the service really sends.

Litestar documents validation failures with its own ``{status_code, detail, extra}`` shape, but
every error of this service goes through :mod:`authsvc.web.exceptions` and is
``{"error", "code"}`` (OAuth endpoints: RFC 6749 bodies, left as their handlers document them).
"""

from __future__ import annotations

from litestar import Litestar
from litestar.openapi.spec import OpenAPIMediaType, Reference, Schema
from litestar.openapi.spec.enums import OpenAPIType

ERROR_SCHEMA = Schema(
    type=OpenAPIType.OBJECT,
    required=["error", "code"],
    properties={
        "error": Schema(type=OpenAPIType.STRING, description="A human sentence; no secrets."),
        "code": Schema(type=OpenAPIType.STRING, description="Stable machine-readable code."),
    },
    description="Every non-OAuth error body.",
)
_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


def document_error_bodies(app: Litestar) -> None:
    spec = app.openapi_schema
    if spec.components.schemas is None:
        spec.components.schemas = {}
    spec.components.schemas["Error"] = ERROR_SCHEMA
    ref = Reference(ref="#/components/schemas/Error")
    for path, item in (spec.paths or {}).items():
        if "/oauth2/" in path:
            continue
        for method in _METHODS:
            operation = getattr(item, method, None)
            if operation is None or not operation.responses:
                continue
            for status, response in operation.responses.items():
                if status.startswith(("4", "5")) and not isinstance(response, Reference):
                    response.content = {"application/json": OpenAPIMediaType(schema=ref)}
