"""Portal fixtures in layers: database -> app -> client -> signed-in helpers.

Every portal test runs twice: on SQLite and on a real PostgreSQL (the ``postgres_url`` server
from tests/conftest.py), each test in a fresh database made from a migrated template.
"""

from __future__ import annotations

import io
import itertools
import re
import secrets
import weakref
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask_migrate import upgrade
from pypdf import PdfWriter

from publish_server import create_app
from publish_server.extensions import db
from publish_server.models import Group, Membership, User

TEST_PASSWORD = "correct horse battery staple 42"
_counter = itertools.count()


def base_config(**overrides) -> dict:
    return {
        "SECRET_KEY": secrets.token_urlsafe(40),
        "JWT_SECRET": secrets.token_urlsafe(40),
        "COOKIE_SECURE": False,
        "ARGON2_MEMORY_KIB": 64,  # fast hashes in tests only; production default is 19 MiB
        "ARGON2_TIME_COST": 1,
        "TESTING": True,
        "MAIL_URL": "memory:",  # the recording mailer; tests/portal/test_mail.py uses a real SMTP server
        **overrides,
    }


def make_pdf(pages: int = 1, marker: str = "") -> bytes:
    writer = PdfWriter()
    for _ in range(pages):
        writer.add_blank_page(width=200, height=200)
    if marker:
        writer.add_metadata({"/Title": marker})
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


@pytest.fixture(scope="session")
def pg_template(postgres_url):
    """A migrated PostgreSQL database that each test copies (CREATE DATABASE ... TEMPLATE)."""
    admin = sa.create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        # tests/proof imports these fixtures too: a worker running both suites makes it once.
        if conn.execute(sa.text("SELECT 1 FROM pg_database WHERE datname = 'portal_template'")).first() is not None:
            yield admin, postgres_url
            return
        conn.execute(sa.text("CREATE DATABASE portal_template"))
    url = sa.engine.make_url(postgres_url).set(database="portal_template")
    app = create_app(base_config(DATABASE_URL=url.render_as_string(hide_password=False)), instance_path=Path("/tmp") / f"nbpress-tpl-{secrets.token_hex(4)}")
    with app.app_context():
        upgrade()
        db.engine.dispose()
    yield admin, postgres_url


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path):
    if request.param == "sqlite":
        return ""  # the default: a SQLite file in the instance folder
    admin, postgres_url = request.getfixturevalue("pg_template")
    name = f"portal_{next(_counter)}_{secrets.token_hex(3)}"
    with admin.connect() as conn:
        conn.execute(sa.text(f"CREATE DATABASE {name} TEMPLATE portal_template"))
    return sa.engine.make_url(postgres_url).set(database=name).render_as_string(hide_password=False)


@pytest.fixture
def app(tmp_path, database_url):
    app = create_app(base_config(DATABASE_URL=database_url), instance_path=tmp_path / "instance")
    with app.app_context():
        if not database_url:
            upgrade()
        yield app
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def passwords(app):
    from publish_server.signin.passwords import Passwords

    return Passwords.from_settings(app.config["NBPRESS"])


@pytest.fixture
def make_user(app, passwords):
    def make(email: str, password: str = TEST_PASSWORD, *, groups: tuple[str, ...] = (), role: str = "recipient", active: bool = True) -> User:
        user = User(email=email.lower(), display_name=email.split("@")[0], password_hash=passwords.hash(password), role=role, active=active)
        db.session.add(user)
        db.session.flush()
        for name in groups:
            group = db.session.scalars(sa.select(Group).where(Group.name == name)).first() or Group(name=name)
            db.session.add(group)
            db.session.flush()
            db.session.add(Membership(user_id=user.id, group_id=group.id))
        db.session.commit()
        return user

    return make


# Devices verified during a test, per app: {("web" | "api", email): device cookie / device_token}.
# A helper signing in as someone again presents their device, as their own browser would.
_DEVICES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def last_code(app, email: str) -> str:
    """The code in the latest message the recording mailer holds for ``email``."""
    sent = [m for m in app.extensions["nbpress.mailer"].sent if email.strip().lower() in str(m["To"]).lower()]
    assert sent, f"no mail to {email}"
    found = re.search(r"^\s+(\d{6,10})\s*$", sent[-1].get_body(preferencelist=("plain",)).get_content(), re.MULTILINE)
    assert found, "the last mail holds no code"
    return found.group(1)


def device_cookie_name(app) -> str:
    return "__Host-nbpress_device" if app.config["NBPRESS"]["COOKIE_SECURE"] else "nbpress_device"


def _login(client, email: str, password: str = TEST_PASSWORD, *, next: str = ""):
    """Sign in through the real forms; cookies stay in ``client``.

    GET /login for the login CSRF cookie, POST the password; when the portal asks for a code,
    read it from the recording mailer and POST it to /login/verify. Returns the last response
    (303 to ``next`` on success), as if the code step were part of signing in.
    """
    app = client.application
    known = _DEVICES.setdefault(app, {})
    key = ("web", email.strip().lower())
    if key in known:
        client.set_cookie(device_cookie_name(app), known[key])
    client.get("/login")
    csrf = client.get_cookie("login_csrf")
    form = {"email": email, "password": password, "login_csrf": csrf.value if csrf else "", "next": next}
    response = client.post("/login", data=form)
    if response.status_code != 303 or not response.headers["Location"].startswith("/login/verify"):
        return response
    challenge = client.get_cookie("login_challenge").value.partition(".")[0]
    answer = client.post("/login/verify", data={"challenge": challenge, "code": last_code(app, email), "next": next})
    device = client.get_cookie(device_cookie_name(app))
    if device is not None:
        known[key] = device.value
    return answer


def api_sign_in(client, email: str, password: str = TEST_PASSWORD) -> dict:
    """The token body of a complete API sign-in (login, and verify when a code is asked for)."""
    app = client.application
    known = _DEVICES.setdefault(app, {})
    key = ("api", email.strip().lower())
    body = {"email": email, "password": password, **({"device_token": known[key]} if key in known else {})}
    response = client.post("/api/v1/auth/login", json=body)
    if response.status_code == 202:
        started = response.get_json()
        response = client.post("/api/v1/auth/verify", json={
            "challenge_id": started["challenge_id"], "client_secret": started["client_secret"], "code": last_code(app, email)})
        if response.status_code == 200:
            known[key] = response.get_json()["device_token"]
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def _api_token(client, email: str, password: str = TEST_PASSWORD) -> str:
    """An API access token for ``email`` from POST /api/v1/auth/login (+ verify when asked)."""
    return api_sign_in(client, email, password)["access_token"]


@pytest.fixture
def login():
    """``login(client, email, password=TEST_PASSWORD)`` -> the POST /login response; cookies stay in the client."""
    return _login


@pytest.fixture
def api_token():
    """``api_token(client, email, password=TEST_PASSWORD)`` -> an access token string for the Bearer header."""
    return _api_token
