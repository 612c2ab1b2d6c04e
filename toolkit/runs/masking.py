"""Secret values masked as ``***`` in what a run keeps: the executed notebook and error texts.

The kernel reads a secret from its environment (see :mod:`toolkit.execute.papermill_run`); if the
notebook prints it, shows it in a cell's output or raises with it in the message, the value is
replaced here before the run folder is final and before the error is recorded or mailed. The
same pass masks the password of every ``scheme://user:password@`` URL in the text, and the values
:func:`toolkit.inputs.sensitive.hidden_values` names (passwords of URL parameters, values of
secret-looking names), which papermill wrote into the injected parameters cell.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from ..inputs.params import SECRET_SHOWN
from ..inputs.sensitive import mask_url_passwords

__all__ = ["secret_values", "mask_text", "mask_file", "mask_error"]


def secret_values(secrets: Mapping[str, str], environ: Mapping[str, str] | None = None) -> list[str]:
    """The values of the secrets' variables (longest first, empty ones left out)."""
    env = os.environ if environ is None else environ
    values = {env[var] for var in secrets.values() if env.get(var)}
    return sorted(values, key=len, reverse=True)


def _forms(values: Iterable[str]) -> list[str]:
    """Each value as it is and as it appears inside a JSON string (escaped)."""
    forms: list[str] = []
    for value in values:
        for form in (value, json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=False)[1:-1], repr(value)[1:-1]):
            if form and form not in forms:
                forms.append(form)
    return sorted(forms, key=len, reverse=True)


def mask_text(text: str, values: Iterable[str]) -> str:
    for form in _forms(values):
        text = text.replace(form, SECRET_SHOWN)
    return mask_url_passwords(text)


def mask_file(path: Path, values: Iterable[str]) -> None:
    """Rewrite ``path`` (a text file: the executed notebook) with the values masked, atomically."""
    if not path.exists():
        return
    text = path.read_text(encoding="utf-8")
    masked = mask_text(text, values)
    if masked == text:
        return
    if path.suffix == ".ipynb" and not _is_json(masked):  # a mask spanned JSON syntax: mask string by string
        masked = json.dumps(_mask_strings(json.loads(text), list(values)), ensure_ascii=False, indent=1)
    tmp = path.with_name(f".{path.name}.masking")
    tmp.write_text(masked, encoding="utf-8")
    os.replace(tmp, path)


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def _mask_strings(node, values: list[str]):
    if isinstance(node, str):
        return mask_text(node, values)
    if isinstance(node, list):
        return [_mask_strings(item, values) for item in node]
    if isinstance(node, dict):
        return {key: _mask_strings(item, values) for key, item in node.items()}
    return node


def mask_error(exc: BaseException, values: Iterable[str]) -> None:
    """Mask the values in an error's message and fields, in place (it is recorded and printed later)."""
    values = list(values)
    exc.args = tuple(mask_text(a, values) if isinstance(a, str) else a for a in exc.args)
    for attr in ("evalue", "message"):
        if isinstance(getattr(exc, attr, None), str):
            setattr(exc, attr, mask_text(getattr(exc, attr), values))
