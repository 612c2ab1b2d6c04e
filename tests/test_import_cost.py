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


def test_kernels_forked_from_the_template_import_jsonschema_as_usual():
    found = _probe(
        "import asyncio, json\n"
        "from toolkit.execute.forked_kernels import ForkServer, fork_kernel_manager\n"
        "async def ask(launcher):\n"
        "    km = launcher(kernel_name='python3')\n"
        "    await km.start_kernel()\n"
        "    kc = km.client(); kc.start_channels()\n"
        "    try:\n"
        "        await kc.wait_for_ready(timeout=60)\n"
        "        seen = []\n"
        "        code = 'import jsonschema; print(\"iri\" in jsonschema.FormatChecker.checkers)'\n"
        "        await kc.execute_interactive(code, timeout=60, output_hook=seen.append)\n"
        "        return [m['content']['text'].strip() for m in seen if m['msg_type'] == 'stream']\n"
        "    finally:\n"
        "        kc.stop_channels(); await km.shutdown_kernel(now=True)\n"
        "with ForkServer(()) as server:\n"
        "    print(json.dumps({'kernel': asyncio.run(ask(fork_kernel_manager(server.socket_path)))}))"
    )
    assert found == {"kernel": ["True"]}
