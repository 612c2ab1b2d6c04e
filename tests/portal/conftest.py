"""Portal fixtures in layers: database -> app -> client -> signed-in helpers.

Every portal test runs twice: on SQLite and on a real PostgreSQL (the ``postgres_url`` server
from tests/conftest.py), each test in a fresh database made from a migrated template.
"""

from __future__ import annotations

import io
import itertools
import secrets
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
    from publish_server.passwords import Passwords

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


def _login(client, email: str, password: str = TEST_PASSWORD, *, next: str = ""):
    """Sign in through the real form (GET for the login CSRF cookie, then POST); cookies stay in ``client``."""
    client.get("/login")
    csrf = client.get_cookie("login_csrf", path="/login")
    form = {"email": email, "password": password, "login_csrf": csrf.value if csrf else "", "next": next}
    return client.post("/login", data=form)


def _api_token(client, email: str, password: str = TEST_PASSWORD) -> str:
    """An API access token for ``email`` from POST /api/v1/auth/login."""
    response = client.post("/api/v1/auth/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.get_json()
    return response.get_json()["access_token"]


@pytest.fixture
def login():
    """``login(client, email, password=TEST_PASSWORD)`` -> the POST /login response; cookies stay in the client."""
    return _login


@pytest.fixture
def api_token():
    """``api_token(client, email, password=TEST_PASSWORD)`` -> an access token string for the Bearer header."""
    return _api_token
