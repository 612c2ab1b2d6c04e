"""Which notebook this kernel serves, by its current name: what ``tk.preview()`` renders as.

ipykernel sets ``__session__`` from ``JPY_SESSION_NAME`` when the kernel starts, and nothing
updates it when JupyterLab renames or moves the notebook: a renamed notebook would preview as
"Untitled" until the kernel restarts. The Jupyter server does know: JupyterLab tells it about a
rename (``PATCH /api/sessions``). So the kernel asks the servers this user runs (their
``jpserver-*.json`` files in Jupyter's runtime folder give URL, token and root folder) for the
session whose kernel id is this kernel's (the id is in the kernel's connection file name).

When no server answers (a password-only server, a kernel not started by a Jupyter server),
VS Code's ``__vsc_ipynb_file__``, then ``__session__``, are used; else None.
"""

from __future__ import annotations

import glob
import json
import os
import re
import sys
import urllib.request
from pathlib import Path

__all__ = ["current_notebook"]

# The preview must take under a second; a server on this machine answers in milliseconds.
_TIMEOUT = 0.5
_KERNEL_ID = re.compile(r"kernel-(.+)\.json")
# The servers are this user's own, on this machine: never through an http_proxy.
_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def current_notebook(namespace: dict) -> Path | None:
    """The absolute path of the notebook this kernel serves, as it is named now."""
    found = _from_jupyter_server()
    if found is not None:
        return found
    for key in ("__vsc_ipynb_file__", "__session__"):
        value = namespace.get(key)
        if isinstance(value, str) and value.endswith(".ipynb"):
            return Path(value).resolve()
    return None


def _kernel_id() -> str | None:
    """This kernel's id, from its connection file's name (``kernel-<id>.json``)."""
    kernelapp = sys.modules.get("ipykernel.kernelapp")
    if kernelapp is None or not kernelapp.IPKernelApp.initialized():  # not in a kernel: create none
        return None
    match = _KERNEL_ID.fullmatch(Path(kernelapp.IPKernelApp.instance().connection_file).name)
    return match.group(1) if match else None


def _server_infos() -> list[dict]:
    try:
        from jupyter_core.paths import jupyter_runtime_dir  # a dependency of ipykernel
    except ImportError:
        return []
    infos = []
    for path in glob.glob(os.path.join(jupyter_runtime_dir(), "jpserver-*.json")):
        try:
            infos.append(json.loads(Path(path).read_text(encoding="utf-8")))
        except (OSError, ValueError):  # a server writing or removing its file right now
            continue
    return infos


def _from_jupyter_server() -> Path | None:
    kernel_id = _kernel_id()
    if kernel_id is None:
        return None
    for info in _server_infos():
        if not info.get("url") or not info.get("root_dir"):
            continue
        request = urllib.request.Request(info["url"].rstrip("/") + "/api/sessions")
        if info.get("token"):
            request.add_header("Authorization", f"token {info['token']}")
        try:
            with _opener.open(request, timeout=_TIMEOUT) as response:
                sessions = json.load(response)
        except (OSError, ValueError):  # gone, refusing (password only), not JSON: ask the next one
            continue
        for session in sessions:
            if (session.get("kernel") or {}).get("id") == kernel_id and session.get("path"):
                return (Path(info["root_dir"]) / session["path"]).resolve()
    return None
