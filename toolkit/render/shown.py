"""Which parameters the reader sees, and under which labels: one choice for the whole PDF.

The page body (``params``), the running header (``header_params``) both come from here:

- with the spec's ``show_parameters`` (name -> label): those parameters, in that order, with those
  labels (:func:`toolkit.inputs.prepare.read_inputs` has refused unknown names and ``Secret``
  parameters, and header parameters that are not shown);
- without it: every parameter but URLs, filesystem paths, secret-looking names and secrets
  (shown as ``***`` in a run's record), labelled with its name.

A shown value never carries a URL's password. The PDF's provenance (``nbpress inspect``) keeps
every parameter, masked by :func:`toolkit.inputs.sensitive.shareable`.
"""

from __future__ import annotations

from typing import Any

from ..inputs.params import SECRET_SHOWN
from ..inputs.sensitive import looks_like_location, looks_secret, mask_url_passwords

__all__ = ["shown_parameters", "shown_header"]


def _labels(spec: Any, parameters: dict[str, Any]) -> dict[str, str]:
    """name -> label of the parameters shown, in the order shown."""
    chosen = getattr(spec, "show_parameters", None)
    if chosen is not None:
        return {name: label for name, label in chosen.items() if name in parameters}
    return {
        name: name
        for name, value in parameters.items()
        if not (value == SECRET_SHOWN or name in getattr(spec, "secrets", {}) or looks_secret(name) or looks_like_location(value))
    }


def _value(value: Any) -> Any:
    if isinstance(value, str):
        return mask_url_passwords(value)
    if isinstance(value, list):
        return [mask_url_passwords(v) if isinstance(v, str) else v for v in value]
    return value


def shown_parameters(spec: Any, parameters: dict[str, Any]) -> dict[str, Any]:
    """label -> value of the parameters the PDF's body shows (``parameters``: JSON-able values)."""
    return {label: _value(parameters[name]) for name, label in _labels(spec, parameters).items()}


def shown_header(spec: Any, parameters: dict[str, Any]) -> dict[str, Any]:
    """label -> value for the running header: the spec's ``header_parameters`` that are shown, in
    that order (a header parameter the default hides, e.g. a URL, is left out)."""
    labels = _labels(spec, parameters)
    return {labels[name]: _value(parameters[name]) for name in spec.header_parameters if name in labels}
