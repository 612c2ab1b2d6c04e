"""The toolkit's settings table: documented, complete, and in agreement with the portal's mail settings."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from toolkit import settings
from toolkit.errors import UsageError

ROOT = Path(__file__).resolve().parents[1]


def test_the_docs_are_generated_from_the_table():
    doc = (ROOT / "docs" / "toolkit-settings.md").read_text(encoding="utf-8")
    assert doc.endswith(settings.settings_table_markdown()), "regenerate docs/toolkit-settings.md from toolkit/settings.py"


def test_every_nbpress_variable_the_toolkit_names_is_declared():
    declared = {s.variable for s in settings.SETTINGS} | {settings.RUN_ID}
    named: dict[str, str] = {}
    for path in sorted((ROOT / "toolkit").rglob("*.py")):
        for found in re.findall(r"\bNBPRESS_[A-Z][A-Z0-9_]*[A-Z0-9]\b", path.read_text(encoding="utf-8")):
            named.setdefault(found, str(path.relative_to(ROOT)))
    undeclared = {name: where for name, where in named.items()
                  if name not in declared and not any(name.startswith(prefix) for prefix, _ in settings.PATTERNS)}
    assert not undeclared, f"declare these in toolkit/settings.py: {undeclared}"


def test_mail_settings_are_the_portals_with_the_portals_defaults():
    from publish_server.settings import SETTINGS as PORTAL

    portal = {s.name: s for s in PORTAL if s.name.startswith("MAIL_")}
    toolkit = {s.name: s for s in settings.SETTINGS if s.name.startswith("MAIL_")}
    assert set(toolkit) == set(portal)
    for name, setting in toolkit.items():
        assert (setting.type, setting.default, setting.secret) == (portal[name].type, portal[name].default, portal[name].secret), name


@pytest.mark.parametrize(("name", "raw", "expected"), [
    ("FORK_KERNELS", "0", False), ("FORK_KERNELS", "yes", True), ("DEBUG", "", False), ("MAIL_TIMEOUT_SECONDS", "30", 30),
])
def test_values_are_parsed_by_type(name, raw, expected):
    assert settings.get(name, {f"NBPRESS_{name}": raw}) == expected


def test_unset_gives_the_default():
    assert settings.get("PUBLISH_CONFIG", {}) == "~/.config/nbpress/publish.toml"


@pytest.mark.parametrize(("name", "raw"), [("FORK_KERNELS", "maybe"), ("MAIL_TIMEOUT_SECONDS", "ten"), ("MAIL_TIMEOUT_SECONDS", "0")])
def test_a_bad_value_is_one_line_naming_the_variable(name, raw):
    with pytest.raises(UsageError, match=f"^NBPRESS_{name}: "):
        settings.get(name, {f"NBPRESS_{name}": raw})
