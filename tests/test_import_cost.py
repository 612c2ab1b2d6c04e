"""toolkit.import_cost: nbformat loads without rfc3987-syntax's grammars, except in kernels."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytest.importorskip("rfc3987_syntax")  # installed with Jupyter's jsonschema[format-nongpl]


def _probe(code: str) -> dict:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    return json.loads(done.stdout.splitlines()[-1])


def test_the_toolkits_processes_import_nbformat_without_the_iri_grammars():
    found = _probe(
        "import json, sys, toolkit, papermill, jsonschema\n"
        "checkers = jsonschema.FormatChecker.checkers\n"
        "before = {'lark': 'lark' in sys.modules, 'iri': 'iri' in checkers, 'uri': 'uri' in checkers}\n"
        "import rfc3987_syntax\n"  # anyone else asking still gets it
        "print(json.dumps({**before, 'later': rfc3987_syntax.is_valid_syntax('iri', 'https://example.org/ä')}))"
    )
    assert found == {"lark": False, "iri": False, "uri": True, "later": True}


def test_a_kernel_keeps_jsonschema_as_it_is():
    found = _probe(
        "import json, sys, ipykernel, toolkit, jsonschema\n"
        "print(json.dumps({'iri': 'iri' in jsonschema.FormatChecker.checkers, 'lark': 'lark' in sys.modules}))"
    )
    assert found == {"iri": True, "lark": True}
