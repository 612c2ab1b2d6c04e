"""Parameter schema: read from a notebook's ``parameters`` cell, values checked before a kernel starts.

The cell is parsed with :mod:`ast` and never executed. Supported annotations: ``str``, ``int``,
``float``, ``bool``, ``datetime.date``, ``datetime.datetime``, ``list[T]``, ``Literal[...]`` and
``Optional[T]`` / ``T | None``, and ``Secret`` (``from toolkit import Secret``): a string read from
the environment at run time, never given with ``-p`` or a values file. A name annotated without a value (``week: datetime.date``) is
required. Values from the command line are parsed per type; nothing is ever evaluated as code.
"""

from __future__ import annotations

import ast
import datetime as dt
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import NotebookError, ParameterError

if TYPE_CHECKING:
    import nbformat

__all__ = ["ParamType", "Parameter", "Schema", "read_schema", "find_parameters_cell", "load_notebook", "parse_notebook",
           "read_notebook_json", "TAG_HOW_TO"]

# nbformat is imported only where a NotebookNode is needed (a run): it pulls in jsonschema, whose
# import takes 1-4 s here, and `nbpress params` or a refused `-p` must answer at once.

TAG_HOW_TO = ("add the tag 'parameters' to the cell that declares them (JupyterLab: select the cell, open the "
              "right sidebar's Property Inspector (gear icon), Cell Tags > Add Tag)")

_SCALARS = {"str", "int", "float", "bool", "date", "datetime"}
_INT_RE = re.compile(r"[+-]?\d+")
_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}
_MISSING = object()


@dataclass(frozen=True)
class ParamType:
    """A parameter's type: a scalar kind, ``list`` of an item type, or ``literal`` choices."""

    kind: str
    item: ParamType | None = None
    choices: tuple[Any, ...] = ()
    optional: bool = False
    secret: bool = False  # annotated ``Secret``: its value comes from the environment only

    def describe(self) -> str:
        if self.secret:
            return "Secret"
        if self.kind == "list":
            text = f"list[{self.item.describe()}]"
        elif self.kind == "literal":
            text = "one of " + ", ".join(repr(c) for c in self.choices)
        else:
            text = self.kind
        return f"{text} or None" if self.optional else text

    def parse_text(self, name: str, text: str) -> Any:
        """Parse a command-line string (``-p name=value``) into a value of this type."""
        if self.optional and text.strip().lower() in {"none", "null"}:
            return None
        if self.kind == "list":
            stripped = text.strip()
            if stripped.startswith("["):
                try:
                    items = json.loads(stripped)
                except json.JSONDecodeError:
                    raise ParameterError(name, text, self.describe()) from None
                if not isinstance(items, list):
                    raise ParameterError(name, text, self.describe())
                return [self.item.coerce(name, v) for v in items]
            parts = [p.strip() for p in stripped.split(",")] if stripped else []
            return [self.item.parse_text(name, p) for p in parts]
        if self.kind == "literal":
            for choice in self.choices:
                if text == str(choice):
                    return choice
            raise ParameterError(name, text, self.describe())
        return self._parse_scalar(name, text)

    def _parse_scalar(self, name: str, text: str) -> Any:
        kind = self.kind
        try:
            if kind == "str":
                return text
            if kind == "int" and _INT_RE.fullmatch(text.strip()):
                return int(text)
            if kind == "float":
                value = float(text)
                if math.isfinite(value):
                    return value
            if kind == "bool" and text.strip().lower() in _TRUE | _FALSE:
                return text.strip().lower() in _TRUE
            if kind == "date":
                return dt.date.fromisoformat(text.strip())
            if kind == "datetime":
                return dt.datetime.fromisoformat(text.strip())
        except ValueError:
            pass
        raise ParameterError(name, text, self.describe())

    def coerce(self, name: str, value: Any) -> Any:
        """Check an already-typed value (YAML file, spec default, notebook default)."""
        if value is None:
            if self.optional:
                return None
            raise ParameterError(name, value, self.describe())
        kind = self.kind
        if isinstance(value, str) and kind not in {"str", "literal"}:
            return self.parse_text(name, value)
        if kind == "list" and isinstance(value, (list, tuple)):
            return [self.item.coerce(name, v) for v in value]
        if kind == "literal" and value in self.choices and type(value) in {type(c) for c in self.choices}:
            return value
        if kind == "str" and isinstance(value, str):
            return value
        if kind == "int" and isinstance(value, int) and not isinstance(value, bool):
            return value
        if kind == "float" and isinstance(value, (int, float)) and not isinstance(value, bool):
            if math.isfinite(value):
                return float(value)
        if kind == "bool" and isinstance(value, bool):
            return value
        if kind == "date" and isinstance(value, dt.date) and not isinstance(value, dt.datetime):
            return value
        if kind == "datetime" and isinstance(value, dt.datetime):
            return value
        raise ParameterError(name, value, self.describe())


@dataclass(frozen=True)
class Parameter:
    name: str
    type: ParamType
    default: Any = _MISSING
    help: str = ""

    @property
    def required(self) -> bool:
        return self.default is _MISSING


@dataclass(frozen=True)
class Schema:
    """The parameters a notebook declares, in cell order."""

    source: str
    parameters: tuple[Parameter, ...] = field(default_factory=tuple)
    tagged: bool = True  # False: the notebook has no cell tagged `parameters` (it runs only as it is)

    def __getitem__(self, name: str) -> Parameter:
        for p in self.parameters:
            if p.name == name:
                return p
        raise KeyError(name)

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.parameters]

    @property
    def secrets(self) -> list[str]:
        """Parameters annotated ``Secret``: never given as values, read from the environment."""
        return [p.name for p in self.parameters if p.type.secret]

    def parse_assignments(self, items: list[str]) -> dict[str, Any]:
        """Parse ``name=value`` strings from the command line."""
        values: dict[str, Any] = {}
        for item in items:
            name, sep, text = item.partition("=")
            name = name.strip()
            if not sep or not name:
                raise ParameterError(name or item, item, "name=value", problem=f"expected name=value, got {item!r}")
            values[name] = self._known(name, item).type.parse_text(name, text)
        return values

    def resolve(self, *layers: dict[str, Any]) -> dict[str, Any]:
        """Merge value layers (later wins) over the notebook defaults and check every value.

        Returns a value for every parameter; raises :class:`ParameterError` for an unknown
        name, a missing required value or a value of the wrong type.
        """
        merged: dict[str, Any] = {}
        for layer in layers:
            for name, value in layer.items():
                merged[name] = self.check(name, value)
        resolved: dict[str, Any] = {}
        for p in self.parameters:
            if p.type.secret:
                continue  # from the environment, at run time (see Inputs.prepare)
            if p.name in merged:
                resolved[p.name] = merged[p.name]
            elif p.required:
                raise ParameterError(p.name, None, p.type.describe(), problem=f"missing required value ({p.type.describe()})")
            else:
                resolved[p.name] = p.default
        return resolved

    def check(self, name: str, value: Any) -> Any:
        """The value of parameter ``name`` checked against its type; unknown names are refused."""
        return self._known(name, value).type.coerce(name, value)

    def _known(self, name: str, given: Any) -> Parameter:
        if not self.tagged:  # papermill would inject the value at the top, where nothing reads it
            raise NotebookError(self.source, f"cannot set '{name}': no cell tagged 'parameters'; {TAG_HOW_TO}")
        try:
            param = self[name]
            if param.type.secret:
                raise SecretGivenError(name, secret_variable(name))
            return param
        except KeyError:
            known = ", ".join(self.names) or "none"
            raise ParameterError(name, given, "", problem=f"unknown parameter (known: {known})") from None


SECRET_ENV_PREFIX = "NBPRESS_" + "SECRET_"  # declared in toolkit.settings (SECRET_PREFIX)
SECRET_SHOWN = "***"  # how a secret appears in run.json, metadata and masked outputs


def secret_variable(name: str, spec_secrets: dict[str, Any] | None = None) -> str:
    """The environment variable a secret parameter is read from: the spec's, else NBPRESS_SECRET_<NAME>."""
    source = (spec_secrets or {}).get(name)
    env = getattr(source, "env", None)
    return env or SECRET_ENV_PREFIX + name.upper()


class SecretGivenError(ParameterError):
    """A value given for a ``Secret`` parameter (``-p``, a values file, the spec): refused."""

    def __init__(self, name: str, variable: str):
        super().__init__(name, None, "Secret", problem=(
            f"is a secret: its value comes from the environment variable {variable} only, never from -p or a values file"))
        self.given = None  # never keep what was given


def to_jsonable(value: Any) -> Any:
    """Parameters as they appear in run.json and PDF metadata (dates as ISO strings)."""
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if isinstance(value, list):
        return [to_jsonable(v) for v in value]
    return value


def find_parameters_cell(nb: Any) -> tuple[int, Any] | None:
    """The first cell tagged ``parameters`` and its index, in a NotebookNode or a plain dict."""
    for index, cell in enumerate(nb["cells"]):
        if "parameters" in cell.get("metadata", {}).get("tags", []):
            return index, cell
    return None


def load_notebook(path: Path) -> nbformat.NotebookNode:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise NotebookError(path, "no such notebook") from None
    return parse_notebook(raw, path)


def parse_notebook(raw: bytes, path: Path) -> nbformat.NotebookNode:
    """The notebook in ``raw`` (read from ``path``, named in errors)."""
    import nbformat

    try:
        return nbformat.reads(raw.decode("utf-8"), as_version=4)
    except Exception as exc:  # nbformat raises JSON, validation and reader errors; bytes may not be UTF-8
        first = (str(exc).splitlines() or [""])[0]
        raise NotebookError(path, f"not a valid notebook ({type(exc).__name__}: {first})") from exc


def read_notebook_json(raw: bytes, path: Path) -> dict[str, Any]:
    """The notebook in ``raw`` as plain JSON, enough to find its parameters (no nbformat).

    Anything unusual (not nbformat 4, cells that are not objects) goes through nbformat, which
    converts old versions and words the error.
    """
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        data = None
    cells = data.get("cells") if isinstance(data, dict) and data.get("nbformat") == 4 else None
    if not isinstance(cells, list) or not all(isinstance(c, dict) for c in cells):
        return parse_notebook(raw, path)  # raises NotebookError, or converts an older notebook
    return data


def _source(cell: Any) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source  # on disk a list of lines, in nbformat a str


def read_schema(path: Path, nb: Any = None) -> Schema:
    """Read the parameter schema of the notebook at ``path`` without starting a kernel.

    ``nb``: the notebook already read (a NotebookNode or its JSON). Without a cell tagged
    ``parameters`` the schema is empty and untagged: the notebook runs as it is, and any value
    given for it is refused.
    """
    if nb is None:
        try:
            nb = read_notebook_json(path.read_bytes(), path)
        except FileNotFoundError:
            raise NotebookError(path, "no such notebook") from None
    found = find_parameters_cell(nb)
    if found is None:
        return Schema(source=str(path), tagged=False)
    _, cell = found
    source = _source(cell)
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        raise NotebookError(path, f"parameters cell line {exc.lineno}: {exc.msg}") from None
    lines = source.splitlines()
    params = []
    for stmt in tree.body:
        param = _parameter_from(stmt, lines, path)
        if param is not None:
            params.append(param)
    return Schema(source=str(path), parameters=tuple(params))


def _parameter_from(stmt: ast.stmt, lines: list[str], path: Path) -> Parameter | None:
    if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
        name = stmt.target.id
        ptype = _type_from(stmt.annotation, path, name)
        value_node = stmt.value
    elif isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
        name = stmt.targets[0].id
        value_node = stmt.value
        ptype = _type_of_default(_literal(value_node, path, name), path, name)
    else:
        return None  # imports, comments, helper code: not parameters
    default = _MISSING
    if value_node is not None:
        try:
            default = ptype.coerce(name, _literal(value_node, path, name))
        except ParameterError as exc:
            raise NotebookError(path, f"parameters cell: default of '{name}' does not match its type ({exc})") from None
    return Parameter(name=name, type=ptype, default=default, help=_trailing_comment(lines, stmt))


def _trailing_comment(lines: list[str], stmt: ast.stmt) -> str:
    line = lines[stmt.end_lineno - 1][stmt.end_col_offset :]
    _, hash_, comment = line.partition("#")
    return comment.strip() if hash_ else ""


def _dotted(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return f"{base}.{node.attr}" if base else None
    return None


_TYPE_NAMES = {
    "str": "str", "int": "int", "float": "float", "bool": "bool",
    "datetime.date": "date", "date": "date", "datetime.datetime": "datetime", "datetime": "datetime",
}


_SECRET_NAMES = {"Secret", "tk.Secret", "toolkit.Secret"}


def _type_from(node: ast.expr, path: Path, name: str) -> ParamType:
    def fail() -> NotebookError:
        return NotebookError(path, f"parameters cell: unsupported annotation for '{name}': {ast.unparse(node)}")

    if isinstance(node, ast.Constant) and isinstance(node.value, str):  # "quoted" annotation
        try:
            return _type_from(ast.parse(node.value, mode="eval").body, path, name)
        except SyntaxError:
            raise fail() from None
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        sides = [node.left, node.right]
        nones = [s for s in sides if isinstance(s, ast.Constant) and s.value is None]
        if len(nones) == 1:
            other = sides[0] if sides[1] is nones[0] else sides[1]
            return _with_optional(_type_from(other, path, name))
        raise fail()
    dotted = _dotted(node)
    if dotted in _SECRET_NAMES:
        return ParamType("str", secret=True)
    if dotted in _TYPE_NAMES:
        return ParamType(_TYPE_NAMES[dotted])
    if isinstance(node, ast.Subscript):
        head = (_dotted(node.value) or "").rsplit(".", 1)[-1]
        args = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
        if head in {"list", "List"} and len(args) == 1:
            item = _type_from(args[0], path, name)
            if item.kind == "list":
                raise fail()
            return ParamType("list", item=item)
        if head == "Optional" and len(args) == 1:
            return _with_optional(_type_from(args[0], path, name))
        if head == "Literal":
            try:
                choices = tuple(ast.literal_eval(a) for a in args)
            except ValueError:
                raise fail() from None
            if not choices or not all(isinstance(c, (str, int, bool)) for c in choices):
                raise fail()
            return ParamType("literal", choices=choices)
    raise fail()


def _with_optional(ptype: ParamType) -> ParamType:
    return ParamType(ptype.kind, item=ptype.item, choices=ptype.choices, optional=True)


def _type_of_default(value: Any, path: Path, name: str) -> ParamType:
    """Infer the type of an unannotated parameter from its default."""
    for kind, cls in (("bool", bool), ("int", int), ("float", float), ("str", str), ("datetime", dt.datetime), ("date", dt.date)):
        if isinstance(value, cls):
            return ParamType(kind)
    if isinstance(value, list) and value:
        item = _type_of_default(value[0], path, name)
        if all(isinstance(v, type(value[0])) for v in value):
            return ParamType("list", item=item)
    raise NotebookError(path, f"parameters cell: cannot infer the type of '{name}'; add an annotation")


def _literal(node: ast.expr, path: Path, name: str) -> Any:
    """Evaluate a default safely: Python literals and ``datetime.date(...)``-style constructors."""
    if isinstance(node, ast.Call):
        func = _dotted(node.func) or ""
        kind = _TYPE_NAMES.get(func.removesuffix(".fromisoformat"))
        if kind in {"date", "datetime"} and not node.keywords:
            cls = dt.date if kind == "date" else dt.datetime
            try:
                args = [ast.literal_eval(a) for a in node.args]
                if func.endswith(".fromisoformat"):
                    return cls.fromisoformat(*args)
                if all(isinstance(a, int) for a in args):
                    return cls(*args)
            except (ValueError, TypeError):
                pass
    try:
        return ast.literal_eval(node)
    except ValueError:
        raise NotebookError(
            path, f"parameters cell: the default of '{name}' must be a literal, got {ast.unparse(node)}"
        ) from None
