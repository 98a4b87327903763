"""A mapping or a list sent as ONE bound parameter and read back as a table to join.

    wanted = pairs_table(conn, {"blog": "feed", "news": "template:ab12"})
    select(posts).join(wanted, posts.c.source == wanted.c.key)

`IN (...)` with a value per source, or an OR of a condition per source, grows the statement
with the config: SQLite refuses more than 32,766 variables, and an expression tree deeper
than 1,000 (an OR chain of 1,000 terms). A JSON text is one parameter whatever its size, and
both databases expand it into rows: SQLite's json_each, PostgreSQL's json_each_text and
json_array_elements_text. Both give the columns `key` and `value` (for a list, `value`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping

from sqlalchemy import JSON, ColumnElement, String, Text, cast, column, func, literal
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.selectable import TableValuedAlias


def _json(conn: AsyncConnection, data: object) -> ColumnElement[object]:
    text = literal(json.dumps(data), Text)
    return cast(text, JSON) if conn.dialect.name == "postgresql" else text


def pairs_table(conn: AsyncConnection, pairs: Mapping[str, str], name: str) -> TableValuedAlias:
    """The mapping as rows (key, value)."""
    function = "json_each_text" if conn.dialect.name == "postgresql" else "json_each"
    rows = getattr(func, function)(_json(conn, dict(pairs)))
    return rows.table_valued(column("key", String), column("value", String)).alias(name)


def values_table(conn: AsyncConnection, values: Iterable[str], name: str) -> TableValuedAlias:
    """The strings as rows (value)."""
    function = "json_array_elements_text" if conn.dialect.name == "postgresql" else "json_each"
    rows = getattr(func, function)(_json(conn, list(values)))
    return rows.table_valued(column("value", String)).alias(name)
