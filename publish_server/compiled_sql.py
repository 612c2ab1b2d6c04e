"""Core statements run on a plain DBAPI cursor, compiled once per dialect.

For the express downloads only (:mod:`express_downloads`): there, SQLAlchemy's execution of an
already cached statement (its cache key, an execution context, a result object) costs more CPU
than the database takes to answer. What matters stays SQLAlchemy's: the SQL is the statement
compiled by the engine's dialect, the parameters (bound literals included) come from the
compiled statement's ``construct_params``, and values go through the dialect's own bind and
result processors (SQLite keeps datetimes as text, JSON columns as serialised text).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from sqlalchemy.engine import Dialect

__all__ = ["CompiledStatement"]


@dataclass(frozen=True, slots=True)
class _Prepared:
    compiled: Any
    sql: str
    order: tuple[str, ...] | None  # positional drivers (SQLite's "?"): the parameters' order
    binds: dict[str, Callable]
    results: tuple[Callable | None, ...]


class CompiledStatement:
    """A Core ``select`` or ``insert`` (``column_keys``: the inserted columns), run with
    :meth:`first` or :meth:`execute` on a cursor of a connection of ``dialect``."""

    def __init__(self, statement, *, column_keys: list[str] | None = None):
        self._statement = statement
        self._column_keys = column_keys
        self._prepared: dict[str, _Prepared] = {}

    def _for(self, dialect: Dialect) -> _Prepared:
        prepared = self._prepared.get(dialect.name)
        if prepared is None:
            compiled = self._statement.compile(dialect=dialect, column_keys=self._column_keys)
            binds = {name: bind.type.dialect_impl(dialect).bind_processor(dialect) for name, bind in compiled.binds.items()}
            columns = getattr(self._statement, "selected_columns", ())
            results = tuple(column.type.dialect_impl(dialect).result_processor(dialect, None) for column in columns)
            order = tuple(compiled.positiontup) if compiled.positional else None
            prepared = _Prepared(compiled, compiled.string, order, {k: v for k, v in binds.items() if v}, results)
            self._prepared[dialect.name] = prepared
        return prepared

    def _parameters(self, prepared: _Prepared, values: dict[str, Any]):
        params = prepared.compiled.construct_params(values)
        for name, process in prepared.binds.items():
            params[name] = process(params[name])
        return params if prepared.order is None else [params[name] for name in prepared.order]

    def execute(self, cursor, dialect: Dialect, values: dict[str, Any]) -> None:
        prepared = self._for(dialect)
        cursor.execute(prepared.sql, self._parameters(prepared, values))

    def first(self, cursor, dialect: Dialect, values: dict[str, Any]) -> tuple | None:
        """The first row, its values converted as SQLAlchemy would; None when there is none."""
        prepared = self._for(dialect)
        cursor.execute(prepared.sql, self._parameters(prepared, values))
        row = cursor.fetchone()
        if row is None:
            return None
        return tuple(value if process is None else process(value) for process, value in zip(prepared.results, row))
