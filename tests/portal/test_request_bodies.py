"""Request bodies are bounded before they are parsed (publish_server.jsonbody and its callers).

Python's json module recurses once per level of nesting: 5,000 nested '[' (a 10 KB body) raised
RecursionError, a 500 with a traceback, before anyone signed in. Every JSON body, and the
publication metadata with its parameters, is now checked for size and nesting first; over a
limit is a 400 in the portal's usual JSON shape that says the limit, never a 500.
"""

from __future__ import annotations

import json
import logging

import pytest

from publish_server import jsonbody
from tests.deadline import deadline
from tests.portal.conftest import make_pdf
from tests.portal.test_publishing import metadata_for, new_publisher_token, post_publication, publication_count, stored_files

LOGIN = "/api/v1/auth/login"
SIGN_IN = [LOGIN, "/api/v1/auth/verify", "/api/v1/auth/resend"]
DEEP = "[" * 5000 + "]" * 5000
TOO_DEEP = "body: nested deeper than 32 levels."


def errors_logged(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno >= logging.ERROR]


def nested(depth: int) -> str:
    """A JSON value ``depth`` levels deep."""
    return "[" * depth + "]" * depth


# --- the pre-check ---------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "depth"), [
    ("1", 0),
    ("[]", 1),
    ('{"a": [1, {"b": []}], "c": {}}', 4),
    ("[[[]]] [", 3),  # the deepest point counts, not where the text ends
    ('"[[[{{{"', 0),  # brackets inside a string are text
    ('["\\"[[[", [2]]', 2),  # an escaped quote does not end the string
    ('["\\\\", [[2]]]', 3),  # an escaped backslash does not escape the quote after it
    ('["\\\\\\"[[", 1]', 1),  # nor does it hide the escaped quote after it
    ('["[[[', 1),  # an unterminated string
])
def test_nesting_is_counted_outside_strings(text, depth):
    assert jsonbody.nesting(text) == depth


def test_the_pre_check_is_linear_on_a_1_mb_text():
    with deadline():
        assert jsonbody.nesting('"' + "\\" * 1_000_000 + '"[') == 1
        assert jsonbody.nesting("[]" * 500_000) == 1


# --- JSON bodies of the API ------------------------------------------------------------------


@pytest.mark.parametrize("path", SIGN_IN)
@pytest.mark.parametrize("body", [DEEP, '{"email": ' + DEEP + ', "password": "x"}', '{"a": ' * 5000 + "1" + "}" * 5000],
                         ids=["array", "in a field", "objects"])
def test_deeply_nested_json_on_sign_in_is_400_without_a_traceback(client, caplog, path, body):
    with caplog.at_level(logging.ERROR):
        response = client.post(path, data=body, content_type="application/json")
    assert response.status_code == 400, response.get_data(as_text=True)[:200]
    assert response.get_json() == {"error": "bad_request", "message": TOO_DEEP}
    assert errors_logged(caplog) == []


def test_sign_in_accepts_32_levels_of_nesting_and_refuses_33(client):
    def login(depth: int):
        extra = nested(depth - 1)  # inside the body's own object: one level
        return client.post(LOGIN, data=f'{{"email": "nobody@example.org", "password": "wrong", "x": {extra}}}',
                           content_type="application/json")

    assert login(32).status_code == 401  # read and answered: no such account
    refused = login(33)
    assert refused.status_code == 400 and refused.get_json()["message"] == TOO_DEEP


def test_a_json_body_over_64_kib_is_refused_before_it_is_parsed(client):
    body = json.dumps({"email": "nobody@example.org", "password": "wrong"}).encode()
    at_the_cap = body + b" " * (64 * 1024 - len(body))
    assert client.post(LOGIN, data=at_the_cap, content_type="application/json").status_code == 401
    response = client.post(LOGIN, data=at_the_cap + b" ", content_type="application/json")
    assert response.status_code == 400
    assert response.get_json() == {"error": "bad_request", "message": "body: at most 64 KiB of JSON."}


def test_a_deep_body_in_utf_16_is_counted_as_text_not_as_bytes(client):
    response = client.post(LOGIN, data=DEEP.encode("utf-16"), content_type="application/json")
    assert response.status_code == 400 and response.get_json()["message"] == TOO_DEEP


def test_a_logout_body_is_bounded_too(client, make_user, api_token, caplog):
    make_user("ana@example.org")
    token = api_token(client, "ana@example.org")
    with caplog.at_level(logging.ERROR):
        response = client.post("/api/v1/auth/logout", data=DEEP, content_type="application/json",
                               headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 400 and response.get_json()["message"] == TOO_DEEP
    assert errors_logged(caplog) == []


# --- the publication metadata ----------------------------------------------------------------


@pytest.fixture
def publisher(app) -> str:
    return new_publisher_token()


def _deep_parameter(pdf: bytes) -> str:
    return json.dumps(metadata_for(pdf, parameters={"x": "DEEP"})).replace('"DEEP"', DEEP)


@pytest.mark.parametrize("metadata", [lambda pdf: DEEP, _deep_parameter], ids=["array", "in a parameter"])
def test_deeply_nested_metadata_is_400_and_nothing_is_stored(app, client, publisher, caplog, metadata):
    pdf = make_pdf()
    with caplog.at_level(logging.ERROR):
        response = post_publication(client, publisher, pdf, metadata(pdf))
    assert response.status_code == 400, response.get_data(as_text=True)[:200]
    assert response.get_json() == {"error": "bad_request", "message": "metadata: nested deeper than 32 levels."}
    assert errors_logged(caplog) == [] and publication_count() == 0 and stored_files(app) == []


def test_an_integer_of_5000_digits_is_400_not_500(app, client, publisher, caplog):
    pdf = make_pdf()
    huge = "1" * 5000  # Python refuses to convert more than 4,300 digits (a ValueError, not a JSONDecodeError)
    with caplog.at_level(logging.ERROR):
        published = post_publication(client, publisher, pdf, json.dumps(metadata_for(pdf)).replace('"pages": 1', f'"pages": {huge}'))
        signed_in = client.post(LOGIN, data=f'{{"email": {huge}, "password": "x"}}', content_type="application/json")
    assert published.status_code == 400 and published.get_json()["message"] == "metadata: not valid JSON."
    assert signed_in.status_code == 400 and signed_in.get_json()["message"] == "body: not valid JSON."
    assert errors_logged(caplog) == [] and publication_count() == 0


def test_a_1_mb_metadata_is_refused_by_its_size_cap_without_being_parsed(app, client, publisher):
    pdf = make_pdf()
    # ~1 MB: the worst case of the former URL-password regex (about 800 s for this value).
    metadata = json.dumps(metadata_for(pdf, parameters={"dsn": "a://u:" * 170_000}))
    with deadline():
        as_file = post_publication(client, publisher, pdf, metadata, metadata_as_file=True)
        as_field = post_publication(client, publisher, pdf, metadata)
    assert as_file.status_code == 400
    assert as_file.get_json() == {"error": "bad_request", "message": "metadata: at most 256 KiB of JSON."}
    assert as_field.status_code == 413  # a form field over 500,000 bytes: Werkzeug refuses it while reading
    assert publication_count() == 0 and stored_files(app) == []


@pytest.mark.parametrize(("parameters", "message"), [
    ({f"p{i}": i for i in range(101)}, "at most 100 parameters, not 101"),
    ({"n" * 101: 1}, "a parameter name has at most 100 characters"),
    ({"dsn": "x" * 4097}, "'dsn': a value has at most 4,096 characters"),
    ({"dsn": "x" * 64_000}, "'dsn': a value has at most 4,096 characters"),  # took 3.3 s to mask before
    ({"weeks": list(range(1000))}, "'weeks': a value has at most 4,096 characters"),  # lists and objects as JSON
])
def test_parameters_over_their_limits_are_400_saying_the_limit(app, client, publisher, parameters, message):
    pdf = make_pdf()
    response = post_publication(client, publisher, pdf, metadata_for(pdf, parameters=parameters))
    assert response.status_code == 400, response.get_json()
    assert response.get_json()["message"].startswith("metadata.parameters: ") and message in response.get_json()["message"]
    assert publication_count() == 0 and stored_files(app) == []


def test_parameters_at_their_limits_are_published_with_passwords_masked(app, client, publisher):
    pdf = make_pdf()
    dsn = "postgresql://reader:s3cret@db/" + "e" * (4096 - len("postgresql://reader:s3cret@db/"))
    parameters = {"dsn": dsn, "n" * 100: 1, **{f"p{i}": i for i in range(98)}}
    response = post_publication(client, publisher, pdf, metadata_for(pdf, parameters=parameters))
    assert response.status_code == 201, response.get_json()
    shown = response.get_json()["parameters"]
    assert len(shown) == 100 and shown["dsn"] == dsn.replace("s3cret", "***")
