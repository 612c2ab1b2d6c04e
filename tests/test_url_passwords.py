"""Passwords in URL parameters are masked before recipients see them, by the toolkit (before it
sends) and by the portal (before it stores). The two packages never import each other, so each
has its own small function: both must give the same answer, and both must stay linear in the
length of the value (the regex they replace backtracked: a 64,000-character value took 3.3 s).
"""

from __future__ import annotations

import random
import re

import pytest

from publish_server.publishing import mask_url_passwords as portal_mask
from tests.deadline import deadline
from toolkit.deliver.portal_client import mask_url_passwords as toolkit_mask

MASKS = pytest.mark.parametrize("mask", [toolkit_mask, portal_mask], ids=["toolkit", "portal"])

# The former pattern: the reference for what is masked (on short inputs only: it is quadratic).
_REFERENCE = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^:/@\s]*:)[^@\s]+(?P<tail>@)")

CASES = [
    ("postgresql://bob:pw@host/db", "postgresql://bob:***@host/db"),
    ("a=postgresql://u:p@h/db b=redis://:secret@cache:6379/0", "a=postgresql://u:***@h/db b=redis://:***@cache:6379/0"),
    ("a://u:p@b://v:q@h", "a://u:***@b://v:***@h"),  # back to back
    ("postgresql://bob@host/db", "postgresql://bob@host/db"),  # no password
    ("bob@host", "bob@host"),
    ("bob:pw@host", "bob:pw@host"),  # no scheme
    ("mysql://u:p:a:ss@h/db", "mysql://u:***@h/db"),  # ':' in the password
    ("s3://key:abc/def+ghi@bucket", "s3://key:***@bucket"),  # '/' in the password
    ("a://u:b://x@h", "a://u:***@h"),  # '://' in the password
    ("git+ssh://me:pw@host:repo", "git+ssh://me:***@host:repo"),
    ("see <postgresql://u:p@h/db>, then", "see <postgresql://u:***@h/db>, then"),
    ("pg://ü:pä@h", "pg://ü:***@h"),
    ("https://host:8443/path", "https://host:8443/path"),  # a port, no '@'
    ("ftp://u:p q@h", "ftp://u:p q@h"),  # whitespace ends a password
    ("x://u:@h", "x://u:@h"),  # an empty password
    ("123://u:p@h", "123://u:p@h"),  # a scheme starts with a letter
    ("1abc://u:p@h", "1abc://u:***@h"),
    ("://u:p@h", "://u:p@h"),
    ("x://a/b:p@h", "x://a/b:p@h"),  # '/' ends the user
    ("", ""),
]


@MASKS
@pytest.mark.parametrize(("value", "shown"), CASES, ids=[c[0] or "empty" for c in CASES])
def test_passwords_in_urls_are_masked(mask, value, shown):
    assert mask(value) == shown


@MASKS
def test_the_masking_matches_the_former_pattern_on_many_short_values(mask):
    draw = random.Random(20261122)
    pieces = ["a", "Z", "1", "+", ".", "-", ":", "/", "@", " ", "\n", "://", "ü", "x:", "p@"]
    for _ in range(20_000):
        value = "".join(draw.choice(pieces) for _ in range(draw.randint(0, 16)))
        assert mask(value) == _REFERENCE.sub(r"\g<head>***\g<tail>", value), value


ADVERSARIAL = {
    "one long scheme-like run": "a" * 1_000_000,
    "many URLs with a user and no '@'": "a://u:" * 170_000,
    "many schemes, nothing after": "a://" * 250_000,
    "a long password with no '@'": "a://u:" + "p" * 1_000_000,
    "a long user with no ':'": "a://" + "u" * 1_000_000,
}


@MASKS
@pytest.mark.parametrize("value", ADVERSARIAL.values(), ids=ADVERSARIAL.keys())
def test_a_1_mb_adversarial_value_is_masked_in_linear_time(mask, value):
    with deadline():  # the former regex needed ~800 s for such a value
        assert mask(value) == value


@MASKS
def test_a_1_mb_value_full_of_urls_is_masked_in_linear_time(mask):
    with deadline():
        shown = mask("a://u:p@" * 125_000)
    assert shown == "a://u:***@" * 125_000
