"""Canary values through every path a run takes: a `Secret`, the password of a URL parameter and
the value of a secret-looking parameter (`api_token: str`) given with -p or in the spec.

After a successful run published to a live portal, a failed scheduled run that mails its owner,
and a batch on a Dask cluster, no canary is in any file of the run folders (bytes, PDF text and
metadata), the mails, the CLI's output, `nbpress runs`, or the portal's rows and stored files.
Every assertion here fails when the masking in toolkit.runs.masking or the parameters stored by
toolkit.runs.pipeline are undone.
"""

from __future__ import annotations

import os
from email import message_from_bytes
import secrets as pysecrets
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml

from tests.conftest import make_notebook, pdf_text
from tests.test_publish_client import portal, portal_app  # noqa: F401  (fixtures: a live portal)

PARAMS = """
from toolkit import Secret
db_password: Secret = ""
db_url: str = ""
api_token: str = ""
n: int = 1
"""

LEAKY = """
import toolkit as tk
print("secret", db_password, "url", db_url, "token", api_token)
tk.text("note", f"connecting to {db_url} with {api_token} and {db_password}")
tk.metric("n", n)
"""

RAISES = "raise RuntimeError(f'login failed: {db_url} token={api_token} password={db_password}')"


class Canaries:
    def __init__(self) -> None:
        self.secret, self.password, self.token = (f"canary-{pysecrets.token_hex(8)}" for _ in range(3))
        self.url = f"postgresql://bob:{self.password}@db.example.org/events"
        self.masked_url = "postgresql://bob:***@db.example.org/events"

    @property
    def values(self) -> list[str]:
        return [self.secret, self.password, self.token]

    @property
    def env(self) -> dict[str, str]:
        return {"NBPRESS_SECRET_DB_PASSWORD": self.secret}

    def args(self) -> list[str]:
        return ["-p", f"db_url={self.url}", "-p", f"api_token={self.token}"]


def nbpress(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("nbpress")
    clean = {k: v for k, v in os.environ.items() if not k.startswith("NBPRESS_")}
    return subprocess.run([str(exe), *args], cwd=cwd, capture_output=True, text=True, timeout=300, env={**clean, **env})


def leaks(folder: Path, values: list[str]) -> list[str]:
    """Where under ``folder`` a value shows: file bytes, and a PDF's text and metadata."""
    from pypdf import PdfReader

    found = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        data = path.read_bytes()
        texts = [data.decode("utf-8", "replace")]
        if data.startswith(b"%PDF"):
            reader = PdfReader(str(path))
            texts += [pdf_text(path), repr(reader.metadata),
                      repr(reader.xmp_metadata and reader.xmp_metadata.rdf_root.toxml())]
        found += [f"{path.relative_to(folder)}: {v}" for v in values if v.encode() in data or any(v in t for t in texts)]
    return found


def said(result: subprocess.CompletedProcess, values: list[str]) -> list[str]:
    return [v for v in values if v in result.stdout or v in result.stderr]


@pytest.fixture
def canaries() -> Canaries:
    return Canaries()


def test_a_successful_run_then_runs_and_the_portal_keep_no_canary(project, canaries, portal):  # noqa: F811
    make_notebook(project.notebooks_dir / "leaky.ipynb", PARAMS, LEAKY)
    result = nbpress("run", "leaky", *canaries.args(), cwd=project.root, env=canaries.env)
    assert result.returncode == 0, result.stderr
    [run_dir] = (project.runs_dir / "leaky").iterdir()
    executed = (run_dir / "executed.ipynb").read_text()
    assert f"url {canaries.masked_url} token ***" in executed  # the output, masked
    assert f"db_url = \\\"{canaries.masked_url}\\\"" in executed or f'db_url = "{canaries.masked_url}"' in executed
    assert leaks(run_dir, canaries.values) == [] and said(result, canaries.values) == []
    # One warning line for each parameter masked for what it looks like, suggesting Secret.
    assert result.stderr.count("parameter 'db_url' holds a URL with a password") == 1, result.stderr
    assert result.stderr.count("parameter 'api_token' looks like a secret") == 1
    assert result.stderr.count("`Secret`") == 2

    runs = nbpress("runs", "--json", cwd=project.root, env={})
    assert canaries.masked_url in runs.stdout and said(runs, canaries.values) == []

    published = nbpress("publish", str(run_dir), "--portal", portal.url, cwd=project.root,
                        env={"NBPRESS_PUBLISH_TOKEN": portal.token})
    assert published.returncode == 0, published.stderr
    assert said(published, canaries.values) == []
    with portal.app.app_context():
        from publish_server.extensions import db

        rows = [repr(row) for table in db.metadata.sorted_tables
                for row in db.session.execute(sa.select(table)).all()]
    stored = "\n".join(rows)
    assert canaries.masked_url in stored  # the publication's parameters are there, masked
    assert [v for v in canaries.values if v in stored] == []
    assert leaks(Path(portal.app.instance_path), canaries.values) == []


def test_a_failed_scheduled_run_and_its_owner_mail_keep_no_canary(project, canaries):
    make_notebook(project.notebooks_dir / "nightly.ipynb", PARAMS, LEAKY, RAISES)
    (project.notebooks_dir / "nightly.yml").write_text(yaml.safe_dump({
        "owner": "owner@example.com",
        "schedule": {"cron": "0 6 * * *", "timezone": "UTC"},
        "parameters": {"db_url": canaries.url, "api_token": canaries.token},
        "secrets": {"db_password": {"env": "WAREHOUSE_PASSWORD"}},
    }))
    result = nbpress("schedule", "--once", "nightly", cwd=project.root, env={"WAREHOUSE_PASSWORD": canaries.secret})
    assert result.returncode == 1, result.stderr
    [run_dir] = (project.runs_dir / "nightly").iterdir()
    mail = message_from_bytes((run_dir / "notification.eml").read_bytes()).get_payload(decode=True).decode()
    assert f"login failed: {canaries.masked_url} token=*** password=***" in mail
    assert leaks(run_dir, canaries.values) == [] and said(result, canaries.values) == []
    assert "parameter 'db_url' holds a URL with a password" in result.stderr


def test_a_dask_batch_keeps_no_canary(project, canaries):
    make_notebook(project.notebooks_dir / "grid.ipynb", PARAMS, LEAKY, "if n == 2:\n    " + RAISES)
    result = nbpress("run", "grid", "--grid", "n=1,2", "--cluster", "local:1", *canaries.args(),
                     cwd=project.root, env=canaries.env)
    assert result.returncode == 1, result.stdout + result.stderr  # member n=2 failed, on purpose
    assert "login failed: postgresql://bob:***@" in result.stdout
    folders = list((project.runs_dir / "grid").iterdir())
    assert len(folders) == 2
    for run_dir in folders:
        assert leaks(run_dir, canaries.values) == []
    assert said(result, canaries.values) == []
    assert result.stderr.count("parameter 'api_token' looks like a secret") == 1  # once per batch, not per member



def test_batch_kernels_keep_no_history_of_the_cells_they_ran(project, canaries, tmp_path):
    """IPython keeps every cell a kernel runs in IPYTHONDIR's history.sqlite: the injected
    parameters (the URL's password, the token) would sit there unmasked, outside any run folder.
    Kernels forked for a batch wrote it (a kernel started on its own used an in-memory history
    here); the pause gives the history thread time to write before the kernel is stopped."""
    make_notebook(project.notebooks_dir / "leaky.ipynb", PARAMS, LEAKY, "import time\ntime.sleep(1)")
    ipython_dir = tmp_path / "ipython"
    result = nbpress("run", "leaky", "--grid", "n=1,2", *canaries.args(), cwd=project.root,
                     env={**canaries.env, "IPYTHONDIR": str(ipython_dir)})
    assert result.returncode == 0, result.stdout + result.stderr
    assert (ipython_dir / "profile_default").is_dir()  # the kernels did use this IPYTHONDIR
    assert leaks(ipython_dir, canaries.values) == []
