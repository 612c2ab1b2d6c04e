"""Which parameters a portal user may set when asking for a run.

The spec's ``run_parameters`` when given; else the parameters the PDF shows (``show_parameters``,
else every parameter whose name looks neither secret nor like a location and whose default is not
a URL or a path).
Never a ``Secret``. The others keep the spec's values (or the worker's ``-p``): a recipient never
points a run at another database.
"""

from __future__ import annotations

import re
from typing import Any

from .params import Parameter, Schema, to_jsonable
from .sensitive import looks_like_location, looks_secret

__all__ = ["settable_parameters"]

# Names that say "where": a required `database_url` has no default to look at.
_LOCATION_NAME = re.compile(r"(^|_)(url|uri|dsn|path|dir|folder|file|host|endpoint|bucket)s?($|_)", re.IGNORECASE)


def _shown_by_default(parameter: Parameter, defaults: dict[str, Any]) -> bool:
    if looks_secret(parameter.name) or _LOCATION_NAME.search(parameter.name):
        return False
    default = defaults.get(parameter.name, None if parameter.required else parameter.default)
    return not looks_like_location(to_jsonable(default))


def settable_parameters(spec: Any, schema: Schema) -> list[Parameter]:
    """The parameters a run request may set, in the notebook's order."""
    candidates = [p for p in schema.parameters if not p.type.secret]
    chosen = spec.run_parameters if spec.run_parameters is not None else (
        list(spec.show_parameters) if spec.show_parameters is not None else None)
    if chosen is not None:
        return [p for p in candidates if p.name in chosen]
    return [p for p in candidates if _shown_by_default(p, spec.parameters)]
