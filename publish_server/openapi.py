"""The OpenAPI document, generated from the views themselves.

Each JSON view declares its contract with :func:`operation` (pydantic models for the body and
the answers, the security scheme); :func:`build_document` walks the app's URL map and emits
OpenAPI 3.1 from those declarations, so the document cannot drift from the code.

    @bp.post("/v1/things")
    @operation("Create a thing", body=ThingIn, responses={201: ThingOut, 400: ErrorOut}, security="bearer")
    def create_thing(): ...
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, request
from pydantic import BaseModel, ValidationError

from . import jsonbody
from .errors import BadRequest

__all__ = ["operation", "build_document", "parse_body", "ErrorOut", "SECURITY_SCHEMES"]

SECURITY_SCHEMES = {
    "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT", "description": "Access token from /api/v1/auth/login"},
    "publisher": {"type": "http", "scheme": "bearer", "description": "Publisher token (nbpress portal tokens create)"},
}


class ErrorOut(BaseModel):
    error: str
    message: str


@dataclass
class Operation:
    summary: str
    body: type[BaseModel] | None = None
    multipart: dict[str, Any] | None = None  # schema of a multipart/form-data body
    responses: dict[int, type[BaseModel] | str | None] = field(default_factory=dict)
    security: str | None = None
    tags: tuple[str, ...] = ()
    query: type[BaseModel] | None = None
    raw_body: str | None = None  # the media type of a body that is not JSON, e.g. text/html


def operation(summary: str, **details: Any) -> Callable:
    """Attach an OpenAPI operation to a view function (outermost under the route decorator)."""

    def attach(view: Callable) -> Callable:
        view.openapi = Operation(summary=summary, **details)
        return view

    return attach


def parse_body(model: type[BaseModel], *, max_bytes: int = jsonbody.MAX_BODY) -> BaseModel:
    """The JSON body validated by ``model``; anything malformed, too large or too deep is a 400, never a 500."""
    if not request.is_json:
        raise BadRequest("Send a JSON object.")
    data = jsonbody.loads(_read_body(max_bytes + 1), what="body", max_bytes=max_bytes)
    if not isinstance(data, dict):
        raise BadRequest("Send a JSON object.")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        raise BadRequest(f"{where}: {first['msg']}") from None


def _read_body(limit: int) -> bytes:
    """At most ``limit`` bytes of the body: one past a cap is enough to refuse the rest unread."""
    chunks: list[bytes] = []
    while limit > 0 and (chunk := request.stream.read(limit)):  # a read may return less than asked
        chunks.append(chunk)
        limit -= len(chunk)
    return b"".join(chunks)


def _schema_ref(model: type[BaseModel], components: dict[str, Any]) -> dict[str, str]:
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    for name, sub in schema.pop("$defs", {}).items():
        components[name] = sub
    components[model.__name__] = schema
    return {"$ref": f"#/components/schemas/{model.__name__}"}


_CONVERTER = re.compile(r"<(?:[a-z]+:)?([a-z_]+)>")


def build_document(app: Flask, *, title: str = "Notebook Press portal API", version: str = "1") -> dict[str, Any]:
    components: dict[str, Any] = {}
    paths: dict[str, Any] = {}
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        view = app.view_functions.get(rule.endpoint)
        spec: Operation | None = getattr(view, "openapi", None)
        if spec is None:
            continue
        path = _CONVERTER.sub(r"{\1}", rule.rule)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            op: dict[str, Any] = {"summary": spec.summary, "operationId": rule.endpoint.replace(".", "_") + "_" + method.lower()}
            if spec.tags:
                op["tags"] = list(spec.tags)
            params = [{"name": name, "in": "path", "required": True, "schema": {"type": "string"}} for name in rule.arguments]
            if spec.query is not None:
                for name, info in spec.query.model_json_schema().get("properties", {}).items():
                    params.append({"name": name, "in": "query", "required": name in spec.query.model_json_schema().get("required", []), "schema": info})
            if params:
                op["parameters"] = params
            if spec.body is not None:
                op["requestBody"] = {"required": True, "content": {"application/json": {"schema": _schema_ref(spec.body, components)}}}
            elif spec.multipart is not None:
                op["requestBody"] = {"required": True, "content": {"multipart/form-data": {"schema": spec.multipart}}}
            elif spec.raw_body is not None:
                op["requestBody"] = {"required": True, "content": {spec.raw_body: {"schema": {"type": "string"}}}}
            responses: dict[str, Any] = {}
            for status, answer in sorted(spec.responses.items()):
                entry: dict[str, Any] = {"description": _DESCRIPTIONS.get(status, "Answer")}
                if isinstance(answer, type) and issubclass(answer, BaseModel):
                    entry["content"] = {"application/json": {"schema": _schema_ref(answer, components)}}
                elif isinstance(answer, str):  # a media type such as application/pdf
                    entry["content"] = {answer: {"schema": {"type": "string", "format": "binary"}}}
                responses[str(status)] = entry
            if spec.security:
                responses.setdefault("401", {"description": _DESCRIPTIONS[401], "content": {"application/json": {"schema": _schema_ref(ErrorOut, components)}}})
                op["security"] = [{spec.security: []}]
            op["responses"] = responses
            paths.setdefault(path, {})[method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version},
        "paths": paths,
        "components": {"schemas": components, "securitySchemes": SECURITY_SCHEMES},
    }


_DESCRIPTIONS = {
    200: "OK", 201: "Created", 204: "No content", 206: "Partial content", 304: "Not modified",
    400: "Malformed request", 401: "Missing or invalid credentials", 403: "Not allowed",
    404: "Not found (or not granted)", 409: "Conflict", 413: "Too large", 415: "Unsupported media type (the body is not of the type this operation takes)",
    422: "Checksum or metadata mismatch", 429: "Rate limited",
    503: "Unavailable for a moment (mail server, database or rate-limit storage away): try again after Retry-After",
    507: "No room to store the file (try again later)",
}
