"""The import boundary at run time: what a process of one side has loaded after doing real work.

tests/test_architecture.py reads the source (``ast``) and catches an ``import`` statement of the
other package; these tests run each side in its own fresh interpreter and look at
``sys.modules`` at the end, so an import done by a dependency, by ``importlib`` or only on one code
path is caught too:

- the toolkit (every module imported; a real ``nbpress run --publish`` to a real portal, then
  ``nbpress runs``) loads neither ``publish_server`` nor Flask: the HTTP API is the contract;
- the portal (``create_app``, an upload, sign-in, the pages and the download) loads neither the
  toolkit nor the toolkit's heavy libraries (pandas, matplotlib, WeasyPrint).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

from tests.conftest import ROOT, make_notebook
from tests.test_publish_client import portal, portal_app  # noqa: F401 - the fixtures: a real portal on loopback

NOT_IN_THE_TOOLKIT = {"publish_server", "flask"}
NOT_IN_THE_PORTAL = {"toolkit", "pandas", "matplotlib", "weasyprint"}
REPORT = "LOADED = sorted({name.split('.')[0] for name in sys.modules})\nprint('LOADED ' + json.dumps(LOADED))\n"


def _loaded(code: str, *, cwd, env: dict | None = None) -> set[str]:
    """Run ``code`` in a fresh interpreter; the top-level packages it had loaded at its end."""
    program = "import json, sys\n" + textwrap.dedent(code) + REPORT
    environment = {**os.environ, **(env or {})}
    result = subprocess.run([sys.executable, "-c", program], cwd=cwd, env=environment, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    [line] = [line for line in result.stdout.splitlines() if line.startswith("LOADED ")]
    return set(json.loads(line.removeprefix("LOADED ")))


def test_importing_every_toolkit_module_loads_no_portal(tmp_path):
    loaded = _loaded("""
        import importlib, pkgutil, toolkit
        names = [m.name for m in pkgutil.walk_packages(toolkit.__path__, "toolkit.") if not m.name.endswith("__main__")]
        for name in names:
            importlib.import_module(name)
        assert len(names) > 40, names  # really every module
    """, cwd=tmp_path)
    assert not loaded & NOT_IN_THE_TOOLKIT, sorted(loaded & NOT_IN_THE_TOOLKIT)


def test_a_real_run_that_publishes_loads_no_portal(portal, project):  # noqa: F811 - the fixture
    make_notebook(project.notebooks_dir / "tiny.ipynb", "n: int = 2", "import toolkit as tk\ntk.metric('n', n, label='N')")
    loaded = _loaded(f"""
        from toolkit.cli import main
        main(["--project", {str(project.root)!r}, "run", "tiny", "--publish", "--portal", {portal.url!r}], standalone_mode=False)
        main(["--project", {str(project.root)!r}, "runs"], standalone_mode=False)
    """, cwd=project.root, env={"NBPRESS_PUBLISH_TOKEN": portal.token})
    [run_dir] = (project.runs_dir / "tiny").iterdir()
    assert [p.run_id for p in portal.publications()] == [run_dir.name]  # it did run and publish
    assert {"toolkit", "papermill", "weasyprint", "requests"} <= loaded  # the whole path ran in that process
    assert not loaded & NOT_IN_THE_TOOLKIT, sorted(loaded & NOT_IN_THE_TOOLKIT)


def test_the_portal_serving_loads_no_toolkit_nor_its_heavy_libraries(tmp_path):
    loaded = _loaded(f"""
        import hashlib, io
        from flask_migrate import upgrade
        from publish_server import create_app
        from publish_server.extensions import db
        from publish_server.models import User
        from publish_server.publishing import create_publisher_token
        from publish_server.signin.passwords import Passwords
        from tests.portal.conftest import _login, base_config, make_pdf

        app = create_app(base_config(), instance_path={str(tmp_path / "instance")!r})
        with app.app_context():
            upgrade()
            _row, token = create_publisher_token("ci")
            db.session.add(User(email="ida@example.com", display_name="Ida", role="recipient",
                                password_hash=Passwords.from_settings(app.config["NBPRESS"]).hash("correct horse battery staple 42")))
            db.session.commit()
        client = app.test_client()
        pdf = make_pdf(marker="boundary")
        metadata = {{"report": "weekly_statistics", "run_id": "run-1", "sha256": hashlib.sha256(pdf).hexdigest(), "pages": 1,
                     "period_label": "2026-W47", "parameters": {{"week": "2026-11-16"}}, "audience": {{"users": ["ida@example.com"]}}}}
        posted = client.post("/api/v1/publications", headers={{"Authorization": "Bearer " + token}},
                             data={{"metadata": json.dumps(metadata), "file": (io.BytesIO(pdf), "report.pdf", "application/pdf")}})
        assert posted.status_code == 201, posted.get_json()
        signed_in = _login(client, "ida@example.com", "correct horse battery staple 42")
        assert signed_in.status_code == 303, signed_in.status_code
        assert client.get("/").status_code == 200
        assert client.get("/reports/weekly_statistics").status_code == 200
        public_id = posted.get_json()["id"]
        assert client.get(f"/p/{{public_id}}/download").data == pdf
        assert client.get(f"/p/{{public_id}}/view").status_code == 200
        assert client.get("/api/openapi.json").status_code == 200
    """, cwd=ROOT)
    assert {"publish_server", "flask", "sqlalchemy"} <= loaded  # the portal did the work in that process
    assert not loaded & NOT_IN_THE_PORTAL, sorted(loaded & NOT_IN_THE_PORTAL)
