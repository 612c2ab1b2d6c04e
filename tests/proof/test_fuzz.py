"""schemathesis against the portal's own OpenAPI document, in-process (WSGI), on a seeded portal.

Every operation is fuzzed three times per database: without credentials, with bad ones (garbage,
a tampered, unsigned or alg=none JWT, a revoked publisher token, a refresh token, the other kind
of token) and with good ones, each with data that fits the schema and data that does not. All of
schemathesis's checks run on every response (no 5xx; status codes, content types, headers and
bodies as declared; negative data rejected); on top of that an operation that declares a
security scheme must answer 401, 403 or 404 without good credentials.

The operations are read from the app's document when the tests are collected, so a new
operation is fuzzed without touching this file. The seed is :mod:`tests.proof.seed`.
"""

from __future__ import annotations

import hashlib
import secrets
import tempfile

import jsonschema
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.core.parameters import ParameterLocation
from schemathesis.generation.modes import GenerationMode
from schemathesis.checks import negative_data_rejection

from tests.proof.profile import PROFILE

CREDENTIALS = ("none", "bad", "good")
PROVES = {
    "none": "no 5xx; answers as documented; protected operations answer 401/403/404 without credentials",
    "bad": "no 5xx; answers as documented; forged, tampered, revoked or wrong-kind tokens open nothing",
    "good": "no 5xx; every answer (status, headers, body) matches the OpenAPI document with valid credentials",
}


def _operations() -> list[tuple[str, str]]:
    """(METHOD, path) of every documented operation, from an app built only for this."""
    from publish_server import create_app
    from publish_server.openapi import build_document

    with tempfile.TemporaryDirectory(prefix="nbpress-fuzz-") as instance:
        app = create_app({"SECRET_KEY": secrets.token_urlsafe(40), "JWT_SECRET": secrets.token_urlsafe(40),
                          "MAIL_URL": "memory:"}, instance_path=instance)
        with app.test_request_context():
            document = build_document(app)
    return [(method.upper(), path) for path, item in document["paths"].items() for method in item]


def pytest_generate_tests(metafunc):
    if "operation" in metafunc.fixturenames:
        # The OpenAPI document is public and takes no credentials: fuzzed once, without any.
        runs = [(op, kind) for op in _operations() for kind in CREDENTIALS if op[1] != "/api/openapi.json" or kind == "none"]
        metafunc.parametrize("operation, credentials", runs, ids=[f"{m} {p}-{kind}" for (m, p), kind in runs])


def _good_token(kind: str | None, path: str, seed) -> str:
    if kind == "publisher":
        return seed.publisher_token
    return seed.sessions["alice"]["refresh_token"] if path.endswith("/auth/refresh") else seed.access("alice")


def _bad_token(case, kind: str | None, seed) -> str:
    """One of several wrong credentials, picked from the generated case (so a failure replays)."""
    alice = seed.access("alice")
    head, payload, _signature = alice.split(".")
    choices = [
        "garbage",
        alice[:-4] + ("AAAA" if not alice.endswith("AAAA") else "BBBB"),  # signature tampered
        f"{head}.{payload}.",  # signature removed
        "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0." + payload + ".",  # alg=none
        seed.revoked_token,
        alice if kind == "publisher" else seed.publisher_token,  # the other kind of token
    ]
    if not case.operation.path.endswith("/auth/refresh"):
        choices.append(seed.sessions["alice"]["refresh_token"])  # a refresh token is not an access token
    else:
        choices.append(alice)  # nor is an access token a refresh token
    digest = hashlib.sha256(repr((case.path_parameters, case.query, case.body)).encode()).digest()
    return choices[digest[0] % len(choices)]


def _query_fits_the_document(case) -> bool:
    """Does the query actually sent fit the declared parameters? (schemathesis sometimes marks a
    query negative whose values all fit, e.g. when the extra property it meant to add was dropped)."""
    declared = {p["name"]: p.get("schema", {}) for p in case.operation.definition.raw.get("parameters", []) if p.get("in") == "query"}
    query = case.query or {}
    if set(query) - set(declared):
        return False
    return all(jsonschema.Draft202012Validator(declared[name]).is_valid(value) for name, value in query.items())


def _negative_only_in_headers(case) -> bool:
    negative = {location for location, part in case.meta.components.items() if part.mode.is_negative}
    if ParameterLocation.QUERY in negative and _query_fits_the_document(case):
        negative.discard(ParameterLocation.QUERY)
    return negative <= {ParameterLocation.HEADER}


def _security(operation) -> str | None:
    found = operation.definition.raw.get("security") or []
    return next(iter(found[0]), None) if found else None


def test_the_api_under_fuzzing(app, seeded, credentials, operation, proof):
    method, path = operation
    proof.case("API fuzzing (schemathesis)", f"{method} {path}, {credentials} credentials", PROVES[credentials])
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", app)
    api_operation = schema[path][method]
    kind = _security(api_operation)
    strategy = st.one_of(api_operation.as_strategy(GenerationMode.POSITIVE), api_operation.as_strategy(GenerationMode.NEGATIVE))

    @given(case=strategy)
    @settings(max_examples=PROFILE.fuzz_examples, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    def run(case):
        case.headers = {k: v for k, v in (case.headers or {}).items() if k.lower() != "authorization"}
        auth = {}  # passed as explicit headers: schemathesis's ignored_auth check then probes without them
        if credentials == "bad":
            auth["Authorization"] = f"Bearer {_bad_token(case, kind, seeded)}"
        elif credentials == "good" and kind is not None:
            auth["Authorization"] = f"Bearer {_good_token(kind, path, seeded)}"
        positive = case.meta is None or case.meta.generation.mode.is_positive
        if credentials == "good" and positive and "public_id" in (case.path_parameters or {}):
            # Half the examples name a publication alice may read, so the granted paths run too.
            if len(str(case.path_parameters["public_id"])) % 2 == 0:
                case.path_parameters["public_id"] = seeded.publications["w47"].public_id
        excluded = []
        if credentials == "good" and not positive and _negative_only_in_headers(case):
            excluded.append(negative_data_rejection)  # its only flaw was the auth header, replaced by a good one
        response = case.call_and_validate(headers=auth or None, excluded_checks=excluded)
        if kind is not None and credentials != "good":
            assert response.status_code in (401, 403, 404), f"{method} {path} answered {response.status_code} without good credentials"

    run()
