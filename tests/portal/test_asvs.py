"""Checks for rows of the OWASP ASVS table in docs/security-model.md that no other test proved.

Each test names the requirements it stands for. The rest of the table points at the tests
beside this one (test_auth.py, test_twostep.py, ...); tests/portal/test_security_docs.py makes
sure every test the table names exists.
"""

from __future__ import annotations

import ast
import base64
import datetime as dt
import re
from pathlib import Path

import sqlalchemy as sa

from publish_server.extensions import db
from publish_server.models import PublisherToken, User
from publish_server.errors import PasswordRejected
from publish_server.signin.passwords import Passwords
from tests.conftest import ROOT
from tests.portal.conftest import TEST_PASSWORD, make_pdf
from tests.portal.test_publishing import metadata_for, new_publisher_token, post_publication, publish_ok

EMAIL = "reader@example.org"


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def fast_hasher(**kwargs) -> Passwords:
    return Passwords(memory_kib=64, time_cost=1, **kwargs)


# --- V2: passwords ------------------------------------------------------------------------------


def test_long_passwords_with_spaces_and_emoji_are_accepted_whole():
    """2.1.2 (64 characters allowed, more than 128 refused), 2.1.3 (no truncation), 2.1.4 (any
    printable Unicode, spaces and emoji included; one code point is one character)."""
    hasher = fast_hasher()
    sixty_four = ("ünïcödé passphrase \U0001F431 " * 4)[:64]
    assert len(hasher.check_policy(sixty_four)) == 64
    assert hasher.check_policy("\U0001F431" * 12) == "\U0001F431" * 12  # twelve emoji are twelve characters
    try:
        hasher.check_policy("\U0001F431" * 11)
        raise AssertionError("eleven characters were accepted")
    except PasswordRejected as exc:
        assert "at least 12" in str(exc)
    longest = ("a long line of words " * 7)[:127] + "!"
    assert len(hasher.check_policy(longest)) == 128
    stored = hasher.hash(longest)
    assert hasher.verify(stored, longest)
    assert not hasher.verify(stored, longest[:-1] + "?")  # the 128th character counts: nothing is cut off
    assert not hasher.verify(stored, longest[:72])  # no bcrypt-style 72-byte limit either


def test_every_password_hash_has_its_own_random_salt_of_at_least_128_bits():
    """2.4.2: a unique salt per credential, at least 32 bits (argon2-cffi: 16 random bytes)."""
    hasher = fast_hasher()
    first, second = hasher.hash(TEST_PASSWORD), hasher.hash(TEST_PASSWORD)
    salts = [encoded.split("$")[4] for encoded in (first, second)]  # $argon2id$v=19$m=..,t=..,p=..$salt$hash
    assert salts[0] != salts[1] and first != second
    raw = base64.b64decode(salts[0] + "=" * (-len(salts[0]) % 4))
    assert len(raw) >= 16


def test_a_pepper_is_needed_to_verify_and_is_not_stored():
    """2.4.5: with PASSWORD_PEPPER set, a keyed HMAC-SHA256 step runs before Argon2id; the key
    lives in the settings, not in the database, so a stolen users table alone verifies nothing."""
    pepper = "p" * 40
    stored = fast_hasher(pepper=pepper).hash(TEST_PASSWORD)
    assert fast_hasher(pepper=pepper).verify(stored, TEST_PASSWORD)
    assert not fast_hasher().verify(stored, TEST_PASSWORD)
    assert not fast_hasher(pepper="q" * 40).verify(stored, TEST_PASSWORD)
    assert pepper not in stored


def test_passwords_never_expire_and_an_earlier_one_may_be_chosen_again(client, make_user, login):
    """2.1.10: no periodic rotation (a password set ten years ago still signs in straight to the
    list) and no password history (changing back to the previous password is accepted)."""
    user = make_user(EMAIL)
    user.created_at = user.tokens_valid_after = dt.datetime(2016, 1, 4, 9, 0)
    db.session.commit()
    signed_in = login(client, EMAIL)
    assert signed_in.status_code == 303 and signed_in.headers["Location"] == "/"
    for current, new in ((TEST_PASSWORD, "a passphrase for a while 7"), ("a passphrase for a while 7", TEST_PASSWORD)):
        changed = client.post("/account/password", data={
            "csrf_token": client.get_cookie("csrf_access_token").value, "current_password": current,
            "new_password": new, "new_password_again": new})
        assert changed.status_code == 303 and changed.headers["Location"] == "/account?reason=password", new


def _inputs(html: str) -> dict[str, str]:
    """name -> the whole <input> tag, for every input of the page."""
    return {re.search(r'name="([^"]+)"', tag).group(1): tag for tag in re.findall(r"<input[^>]*>", html)}


def test_password_forms_have_only_their_fields_and_password_manager_hints(client, make_user, login):
    """2.1.11 (paste and password managers work: no script, autocomplete hints) and 2.5.2 (no
    password hint or secret question: the forms hold nothing else)."""
    form = client.get("/login").get_data(as_text=True)
    inputs = _inputs(form)
    assert set(inputs) == {"login_csrf", "next", "email", "password"}
    assert 'autocomplete="username"' in inputs["email"] and 'autocomplete="current-password"' in inputs["password"]
    make_user(EMAIL)
    login(client, EMAIL)
    account = client.get("/account").get_data(as_text=True)
    inputs = _inputs(account)
    assert set(inputs) == {"csrf_token", "next", "username", "current_password", "new_password", "new_password_again"}
    assert 'autocomplete="current-password"' in inputs["current_password"]
    assert 'autocomplete="new-password"' in inputs["new_password"] and 'autocomplete="new-password"' in inputs["new_password_again"]
    for html in (form, account):
        assert "<script" not in html and "onpaste" not in html.lower() and "oncopy" not in html.lower()


def test_a_fresh_database_has_no_accounts_and_no_publisher_tokens(app):
    """2.5.4: no default, shared or built-in account exists; operators create every one."""
    assert db.session.scalar(sa.select(sa.func.count()).select_from(User)) == 0
    assert db.session.scalar(sa.select(sa.func.count()).select_from(PublisherToken)) == 0


# --- V3 and V13: where tokens are read ---------------------------------------------------------


def test_tokens_in_the_query_string_open_nothing(app, client, make_user, api_token):
    """3.1.1 and 13.1.3: session tokens are read from the Authorization header and cookies only,
    never from a URL, so no page or API link can carry one."""
    make_user(EMAIL)
    token = api_token(client, EMAIL)
    stranger = app.test_client()
    for name in ("jwt", "access_token", "token"):
        assert stranger.get(f"/api/v1/publications?{name}={token}").status_code == 401, name
        page = stranger.get(f"/?{name}={token}")
        assert page.status_code == 303 and page.headers["Location"].startswith("/login"), name
    assert stranger.get("/api/v1/publications", headers=bearer(token)).status_code == 200  # the same token, in its header


def test_browser_cookies_do_not_open_the_api(client, make_user, login):
    """13.2.3 and 4.2.2: the API reads the Authorization header only, so a signed-in browser's
    cookies authorise no API call that another site could make the browser send."""
    make_user(EMAIL)
    login(client, EMAIL)
    assert client.get("/account").status_code == 200  # the cookies are good for pages
    csrf = {"X-CSRF-TOKEN": client.get_cookie("csrf_access_token").value}
    assert client.get("/api/v1/publications", headers=csrf).status_code == 401
    assert client.post("/api/v1/auth/refresh", headers=csrf).status_code == 401
    assert client.post("/api/v1/auth/logout", headers=csrf).status_code == 401
    changed = client.post("/api/v1/auth/password", headers=csrf, json={"current_password": TEST_PASSWORD, "new_password": "another passphrase 42"})
    assert changed.status_code == 401
    assert client.get("/account").status_code == 200  # nothing was signed out or changed


def test_https_answers_ask_for_https_from_then_on(client):
    """13.2.6 (with the front server's TLS): answers over HTTPS carry Strict-Transport-Security, so
    a browser never falls back to plain HTTP for the portal."""
    secure = client.get("/login", base_url="https://localhost")
    assert secure.headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"
    assert "Strict-Transport-Security" not in client.get("/login").headers  # plain-HTTP development: not sent


# --- V5: output encoding and dynamic code ------------------------------------------------------


def test_markup_and_template_syntax_in_metadata_are_shown_as_text(client, make_user, login):
    """5.3.1 and 5.3.3 (HTML-encoded by the template engine), 5.2.5 (publisher text is data in a
    template, never a template), 5.3.2 (characters of any script come back as they were sent)."""
    make_user(EMAIL)
    token = new_publisher_token()
    pdf = make_pdf(marker="markup")
    title = "<script>alert(1)</script> {{ 7*7 }} {% if 1 %}x{% endif %} Wöchentlich 週報"
    meta = metadata_for(pdf, report="markup", run_id="m1", title=title, period_label="<b>W47</b>", audience={"users": [EMAIL]})
    assert post_publication(client, token, pdf, meta).status_code == 201
    login(client, EMAIL)
    for path in ("/", "/reports/markup"):
        html = client.get(path).get_data(as_text=True)
        assert "<script>alert(1)</script>" not in html and "<b>W47</b>" not in html, path
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "&lt;b&gt;W47&lt;/b&gt;" in html, path
        assert "{{ 7*7 }} {% if 1 %}x{% endif %} Wöchentlich 週報" in html, path  # shown as typed, not evaluated


def _python_files() -> list[Path]:
    return sorted((ROOT / "publish_server").rglob("*.py"))


def test_the_portal_runs_no_dynamic_code_no_unsafe_deserialiser_and_no_shell():
    """5.2.4 (no eval), 5.3.8 and 12.3.5 (commands are fixed argument lists, never a shell),
    5.5.1 and 5.5.3 (no pickle, marshal, shelve or YAML): a static check of publish_server."""
    problems = []
    for path in _python_files():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        where = path.relative_to(ROOT)
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                modules = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                problems += [f"{where}:{node.lineno} imports {m}" for m in modules
                             if m.split(".")[0] in {"pickle", "marshal", "shelve", "yaml", "dill"}]
            if isinstance(node, ast.Name) and node.id in {"render_template_string"}:
                problems.append(f"{where}:{node.lineno} uses {node.id}")
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            if isinstance(func, ast.Name) and func.id in {"eval", "exec", "compile", "__import__"}:
                problems.append(f"{where}:{node.lineno} calls {func.id}()")
            if isinstance(func, ast.Attribute) and func.attr in {"system", "popen", "from_string"}:
                problems.append(f"{where}:{node.lineno} calls .{func.attr}()")
            if any(k.arg == "shell" and not (isinstance(k.value, ast.Constant) and k.value.value is False) for k in node.keywords):
                problems.append(f"{where}:{node.lineno} passes shell=")
            if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id == "subprocess" \
                    and func.attr in {"run", "Popen", "call", "check_call", "check_output"}:
                if not node.args or not isinstance(node.args[0], ast.List):
                    problems.append(f"{where}:{node.lineno} runs a command that is not a literal argument list")
    assert problems == []
    assert any("subprocess.run([" in p.read_text(encoding="utf-8") for p in _python_files())  # the check sees the one it guards


# --- V12: where uploads live --------------------------------------------------------------------


def test_uploads_are_stored_outside_the_web_root_with_limited_permissions(app, client):
    """12.4.1: published files live under the instance folder (0700), not under the static folder,
    each readable by owner and group only (0640), and no URL maps onto the store."""
    body = publish_ok(client, new_publisher_token())
    files = Path(app.config["FILES_DIR"]).resolve()
    stored = files / body["sha256"][:2] / f"{body['sha256']}.pdf"
    assert stored.is_file() and stored.stat().st_mode & 0o777 == 0o640
    assert files.is_relative_to(Path(app.instance_path).resolve())
    assert Path(app.instance_path).stat().st_mode & 0o777 == 0o700
    assert not files.is_relative_to(Path(app.static_folder).resolve())
    relative = f"{body['sha256'][:2]}/{body['sha256']}.pdf"
    for path in (f"/static/{relative}", f"/files/{relative}", f"/{relative}", f"/static/../files/{relative}"):
        assert client.get(path).status_code == 404, path
