"""OpenAPI fix-ups: document what the service really sends and takes.

* Every error body is ``{"error", "code"}`` (:mod:`authsvc.web.exceptions`), with ``code`` one
  of the registry's (:class:`authsvc.errors.Code`); Litestar would document its own
  ``{status_code, detail, extra}`` shape. OAuth endpoints answer RFC 6749 bodies and are left
  as their handlers document them.
* :func:`schema_of` derives a request schema from a msgspec struct (for handlers that decode
  their body themselves, like ``POST /v1/verify``), so the document cannot drift from the type.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec
from litestar import Litestar
from litestar.openapi.spec import OpenAPIMediaType, Reference, Schema
from litestar.openapi.spec.enums import OpenAPIType

from authsvc.errors import CATALOG

ERROR_SCHEMA = Schema(
    type=OpenAPIType.OBJECT,
    required=["error", "code"],
    properties={
        "error": Schema(type=OpenAPIType.STRING, description="A human sentence; no secrets."),
        "code": Schema(
            type=OpenAPIType.STRING,
            enum=[str(code) for code, info in CATALOG.items() if info.where != "internal"],
            description="Stable machine-readable code (see docs/architecture.md).",
        ),
    },
    description="Every non-OAuth error body.",
)
_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")
_NESTED = {"properties", "items", "any_of", "one_of", "all_of", "additional_properties"}


def _convert(node: Any, defs: dict[str, Any]) -> Any:
    if isinstance(node, list):
        return [_convert(item, defs) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        return _convert(defs[node["$ref"].rsplit("/", 1)[1]], defs)
    fields: dict[str, Any] = {}
    for name, value in node.items():
        key = _CAMEL.sub("_", name).lower()
        if key == "type":
            fields[key] = OpenAPIType(value)
        elif key == "properties":
            fields[key] = {k: _convert(v, defs) for k, v in value.items()}
        elif key in _NESTED:
            fields[key] = _convert(value, defs)
        else:
            fields[key] = value
    return Schema(**fields)


def schema_of(struct: type[msgspec.Struct]) -> Schema:
    """The OpenAPI schema of a msgspec struct, from msgspec's own JSON Schema of it."""
    raw = msgspec.json.schema(struct)
    schema: Schema = _convert(raw, raw.get("$defs", {}))
    return schema


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
