"""Secret inputs: declared `Secret` in the parameters cell, read from the environment only,
never written into the notebook, run.json or any output (masked as ***)."""

from __future__ import annotations

import os
import secrets as pysecrets
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import make_notebook
from toolkit.errors import ParameterError, SpecError
from toolkit.inputs.params import read_schema
from toolkit.inputs.prepare import read_inputs
from toolkit.inputs.spec import find_report, load_spec

PARAMS = """
from toolkit import Secret
import toolkit as tk
db_password: Secret = ""   # the warehouse password
api_key: tk.Secret
n: int = 2
"""


def canary() -> str:
    return f"canary-{pysecrets.token_hex(8)}"


def run_cli(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("nbpress")
    clean = {k: v for k, v in os.environ.items() if not k.startswith("NBPRESS_SECRET_")}
    return subprocess.run([str(exe), *args], cwd=cwd, capture_output=True, text=True, timeout=300, env={**clean, **env})


@pytest.fixture
def secret_report(project):
    make_notebook(project.notebooks_dir / "vault.ipynb", PARAMS, "print(n, len(db_password), len(api_key))")
    return project


def test_secret_annotation_is_read_statically(secret_report):
    schema = read_schema(secret_report.notebooks_dir / "vault.ipynb")
    assert schema.secrets == ["db_password", "api_key"]
    assert schema["db_password"].type.describe() == "Secret"
    assert schema.resolve({}) == {"n": 2}  # secrets are not values: they come from the environment


def test_secret_comes_from_the_default_variable_or_the_specs(secret_report):
    inputs = read_inputs(find_report("vault", secret_report.notebooks_dir))
    assert inputs.secrets == {"db_password": "NBPRESS_SECRET_DB_PASSWORD", "api_key": "NBPRESS_SECRET_API_KEY"}
    prepared = inputs.prepare({}, environ={"NBPRESS_SECRET_DB_PASSWORD": "a", "NBPRESS_SECRET_API_KEY": "b"})
    assert prepared.secrets == inputs.secrets and prepared.parameters == {"n": 2}

    (secret_report.notebooks_dir / "vault.yml").write_text("secrets:\n  db_password: {env: WAREHOUSE_PASSWORD}\n")
    inputs = read_inputs(find_report("vault", secret_report.notebooks_dir))
    assert inputs.secrets["db_password"] == "WAREHOUSE_PASSWORD"
    with pytest.raises(ParameterError, match="WAREHOUSE_PASSWORD is not set") as info:
        inputs.prepare({}, environ={"NBPRESS_SECRET_DB_PASSWORD": "a", "NBPRESS_SECRET_API_KEY": "b"})
    assert info.value.exit_code == 2


@pytest.mark.parametrize(("yaml", "key"), [
    ("secrets:\n  n: {env: X}\n", "secrets.n"),
    ("secrets:\n  db_password: {env: 'not a name'}\n", "secrets.db_password.env"),
    ("secrets:\n  db_password: {variable: X}\n", "secrets.db_password"),
    ("parameters:\n  db_password: x\n", "parameters.db_password"),
    ("header_parameters: [api_key]\n", "header_parameters"),
    ("grid:\n  api_key: [a, b]\n", "grid.api_key"),
])
def test_bad_secret_specs_are_refused(secret_report, yaml, key):
    spec_path = secret_report.notebooks_dir / "vault.yml"
    spec_path.write_text(yaml)
    with pytest.raises(SpecError) as info:
        read_inputs(load_spec(spec_path))
    assert info.value.key.startswith(key)
    assert "'x'" not in str(info.value)


def test_a_value_given_for_a_secret_is_refused(secret_report):
    inputs = read_inputs(find_report("vault", secret_report.notebooks_dir))
    for values, assignments in (({}, ["db_password=hunter2"]), ({"api_key": "hunter2"}, [])):
        with pytest.raises(ParameterError, match="comes from the environment variable NBPRESS_SECRET_") as info:
            inputs.given(values, assignments)
        assert "hunter2" not in str(info.value)


def test_cli_refuses_secret_values_and_missing_variables(secret_report, tmp_path):
    root = secret_report.root
    env = {"NBPRESS_SECRET_DB_PASSWORD": canary(), "NBPRESS_SECRET_API_KEY": canary()}
    given = run_cli("run", "vault", "-p", "db_password=x", cwd=root, env=env)
    assert given.returncode == 2
    assert given.stderr.strip().splitlines() == [
        "nbpress: error: parameter 'db_password': is a secret: its value comes from the environment variable"
        " NBPRESS_SECRET_DB_PASSWORD only, never from -p or a values file"]
    values = tmp_path / "values.yml"
    values.write_text("api_key: x\n")
    assert run_cli("run", "vault", "-f", str(values), cwd=root, env=env).returncode == 2

    missing = run_cli("run", "vault", cwd=root, env={"NBPRESS_SECRET_DB_PASSWORD": env["NBPRESS_SECRET_DB_PASSWORD"]})
    assert missing.returncode == 2
    assert missing.stderr.strip() == (
        "nbpress: error: parameter 'api_key': is a secret and the environment variable NBPRESS_SECRET_API_KEY is not set")
    assert env["NBPRESS_SECRET_DB_PASSWORD"] not in missing.stdout + missing.stderr
    assert not secret_report.runs_dir.exists()  # refused before a run folder or kernel


def _secret_env(monkeypatch) -> dict[str, str]:
    env = {"NBPRESS_SECRET_DB_PASSWORD": canary(), "NBPRESS_SECRET_API_KEY": canary()}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    return env


def test_the_kernel_reads_the_secret_from_its_environment_not_the_notebook(secret_report, monkeypatch):
    import json

    import nbformat

    from toolkit.inputs.prepare import prepare
    from toolkit.notebook.records import read_records
    from toolkit.runs.pipeline import run_report

    env = _secret_env(monkeypatch)
    make_notebook(secret_report.notebooks_dir / "vault.ipynb", PARAMS,
                  "tk.metric('length', len(db_password) + len(api_key))")
    prepared = prepare(find_report("vault", secret_report.notebooks_dir))
    run_dir, record = run_report(prepared, secret_report)
    assert record.status == "succeeded"
    nb = nbformat.read(str(run_dir / "executed.ipynb"), as_version=4)
    assert read_records(nb)["length"].value == len(env["NBPRESS_SECRET_DB_PASSWORD"]) * 2
    injected = nb.cells[1].source
    assert "__import__(\"os\").environ['NBPRESS_SECRET_DB_PASSWORD']" in injected
    assert nb.metadata.papermill.parameters["db_password"] == "***"
    saved = json.loads((run_dir / "run.json").read_text())
    assert saved["parameters"] == {"n": 2, "db_password": "***", "api_key": "***"}
    for value in env.values():
        assert value not in (run_dir / "executed.ipynb").read_text() and value not in (run_dir / "run.json").read_text()


def _leaks(run_dir: Path, values) -> list[str]:
    """Every file under the run folder (bytes), the PDF's text and metadata: where a value shows."""
    from pypdf import PdfReader

    from tests.conftest import pdf_text

    found = []
    for path in sorted(p for p in run_dir.rglob("*") if p.is_file()):
        data = path.read_bytes()
        texts = [data.decode("utf-8", "replace")]
        if path.suffix == ".pdf":
            texts.append(pdf_text(path))
            reader = PdfReader(str(path))
            texts.append(repr(reader.metadata) + repr(reader.xmp_metadata and reader.xmp_metadata.rdf_root.toxml()))
        for value in values:
            if value.encode() in data or any(value in t for t in texts):
                found.append(f"{path.relative_to(run_dir)}: {value}")
    return found


LEAKY = """
print("connecting with", db_password)
tk.text("note", f"the key is {api_key}")
tk.metric("length", len(db_password))
db_password
"""


def test_a_successful_run_keeps_no_secret_anywhere(secret_report):
    make_notebook(secret_report.notebooks_dir / "vault.ipynb", PARAMS, LEAKY)
    env = {"NBPRESS_SECRET_DB_PASSWORD": canary(), "NBPRESS_SECRET_API_KEY": canary()}
    result = run_cli("run", "vault", cwd=secret_report.root, env=env)
    assert result.returncode == 0, result.stderr
    [run_dir] = list((secret_report.runs_dir / "vault").iterdir())
    assert (run_dir / "report.pdf").exists()
    assert "connecting with ***" in (run_dir / "executed.ipynb").read_text()
    assert _leaks(run_dir, env.values()) == []
    assert not any(v in result.stdout + result.stderr for v in env.values())


def test_a_failed_run_keeps_no_secret_in_its_error_notebook_or_mail(secret_report):
    import json

    (secret_report.notebooks_dir / "vault.yml").write_text(
        "owner: analyst@example.com\nsecrets:\n  db_password: {env: WAREHOUSE_PASSWORD}\n")
    make_notebook(secret_report.notebooks_dir / "vault.ipynb", PARAMS, LEAKY,
                  "raise RuntimeError(f'login refused for password {db_password!r} and key {api_key}')")
    env = {"WAREHOUSE_PASSWORD": canary(), "NBPRESS_SECRET_API_KEY": canary()}
    result = run_cli("run", "vault", cwd=secret_report.root, env=env)
    assert result.returncode == 1
    assert "login refused for password '***' and key ***" in result.stderr
    [run_dir] = list((secret_report.runs_dir / "vault").iterdir())
    error = json.loads((run_dir / "run.json").read_text())["error"]
    assert error["evalue"] == "login refused for password '***' and key ***"
    assert _leaks(run_dir, env.values()) == []
    assert not any(v in result.stdout + result.stderr for v in env.values())


def test_the_owner_mail_is_masked(secret_report, monkeypatch, tmp_path):
    from toolkit.deliver.owner_notice import notify_owner
    from toolkit.runs.run_folder import FailureRecord, RunRecord
    import datetime as dt

    env = _secret_env(monkeypatch)
    value = env["NBPRESS_SECRET_DB_PASSWORD"]
    record = RunRecord(report="vault", run_id="r1", parameters={"db_password": "***"}, period="", spec={},
                       notebook="vault.ipynb", notebook_sha256="0" * 64, started=dt.datetime.now(dt.timezone.utc),
                       versions={}, trigger="schedule", attempt=1, status="failed",
                       error=FailureRecord(stage="execute", type="ExecutionError", message=f"boom {value}"))
    sent = notify_owner(tmp_path, record, "analyst@example.com")
    assert value not in sent.body and "boom ***" in sent.body
    assert value not in (tmp_path / "notification.eml").read_text()


def test_a_local_batch_gets_secrets_from_the_environment_and_keeps_none(secret_report):
    make_notebook(secret_report.notebooks_dir / "vault.ipynb", PARAMS, LEAKY,
                  "if n == 2: raise RuntimeError(f'bad password {db_password}')")
    env = {"NBPRESS_SECRET_DB_PASSWORD": canary(), "NBPRESS_SECRET_API_KEY": canary()}
    result = run_cli("run", "vault", "--grid", "n=1,2", "-w", "2", cwd=secret_report.root, env=env)
    assert result.returncode == 1, result.stderr
    assert "bad password ***" in result.stdout
    folders = list((secret_report.runs_dir / "vault").iterdir())
    assert len(folders) == 2
    for run_dir in folders:
        assert _leaks(run_dir, env.values()) == []
    assert not any(v in result.stdout + result.stderr for v in env.values())
