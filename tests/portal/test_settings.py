"""Settings: declared, documented, validated at start-up with one clear line."""

from __future__ import annotations

import pytest

from publish_server import create_app
from publish_server.errors import ConfigError
from publish_server.settings import SETTINGS, settings_table_markdown, write_dev_secrets
from tests.conftest import ROOT
from tests.portal.conftest import base_config


def test_docs_match_the_declared_settings():
    doc = (ROOT / "docs" / "portal-settings.md").read_text(encoding="utf-8")
    assert doc.endswith(settings_table_markdown()), "regenerate docs/portal-settings.md from settings.py"
    assert all(s.doc for s in SETTINGS)


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"SECRET_KEY": None}, "setting SECRET_KEY is required"),
        ({"JWT_SECRET": "short"}, "setting JWT_SECRET is too short"),
        ({"MAX_UPLOAD_MB": "lots"}, "setting MAX_UPLOAD_MB (from create_app config): expected an integer"),
        ({"ACCESS_TOKEN_MINUTES": 60}, "ACCESS_TOKEN_MINUTES (from create_app config): must be at most 15"),
        ({"PASSWORD_MIN_LENGTH": 6}, "must be at least 8"),
        ({"COOKIE_SECURE": "perhaps"}, "expected true or false"),
    ],
)
def test_misconfiguration_stops_start_up_with_one_line(tmp_path, overrides, message):
    config = base_config(**overrides)
    for key in [k for k, v in overrides.items() if v is None]:
        config.pop(key)
    with pytest.raises(ConfigError) as info:
        create_app(config, instance_path=tmp_path / "instance")
    assert message in str(info.value) and "\n" not in str(info.value)


def test_same_key_for_flask_and_jwt_is_refused(tmp_path):
    key = "k" * 40
    with pytest.raises(ConfigError, match="must differ"):
        create_app(base_config(SECRET_KEY=key, JWT_SECRET=key), instance_path=tmp_path / "i")


def test_instance_file_and_environment(tmp_path, monkeypatch):
    instance = tmp_path / "instance"
    instance.mkdir()
    (instance / "portal.toml").write_text('MAX_UPLOAD_MB = 7\nSECRET_KEY = "%s"\nJWT_SECRET = "%s"\n' % ("a" * 40, "b" * 40))
    monkeypatch.setenv("NBPRESS_MAX_UPLOAD_MB", "9")
    app = create_app({}, instance_path=instance)
    assert app.config["NBPRESS"]["MAX_UPLOAD_MB"] == 9  # the environment wins over the file
    (instance / "portal.toml").write_text('MAX_UPLAOD_MB = 7\n')
    with pytest.raises(ConfigError, match="unknown setting MAX_UPLAOD_MB"):
        create_app({}, instance_path=instance)


def test_dev_secrets_are_generated_once_and_private(tmp_path):
    instance = tmp_path / "instance"
    path = write_dev_secrets(instance)
    first = path.read_text()
    assert write_dev_secrets(instance).read_text() == first
    assert path.stat().st_mode & 0o777 == 0o600
    app = create_app({"TESTING": True}, instance_path=instance)
    assert app.config["NBPRESS"]["COOKIE_SECURE"] is False and len(app.config["SECRET_KEY"]) >= 32
