"""The proof suite reuses the portal's fixtures (SQLite and PostgreSQL, memory mailer, sign-in helpers)."""

from __future__ import annotations

import pytest

from tests.portal.conftest import (  # noqa: F401  (fixtures)
    api_token, app, client, database_url, login, make_user, passwords, pg_template,
)
from tests.proof.seed import Seed, seed_portal


@pytest.fixture
def seeded(app, client) -> Seed:
    """The seeded portal: users, groups, reports, publications, grants, publisher tokens, sessions."""
    return seed_portal(app, client)
