"""A small CloudWatch Logs Insights evaluator: enough to run the template's saved queries offline.

It understands the commands those queries use: ``fields``, ``filter`` (``=``
comparisons and ``ispresent(f)`` joined by ``and``), ``stats`` (``count(*)``,
``max``, ``min``, ``avg``, ``sum`` with ``as`` and ``by``), ``sort`` and
``limit``. Anything else is a ``ValueError``, so a query the evaluator cannot
read fails its test instead of passing by accident.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from typing import Any

Row = dict[str, Any]

_COMPARISON = re.compile(r'^(@?\w+)\s*=\s*(?:"([^"]*)"|(-?\d+(?:\.\d+)?))$')
_PRESENT = re.compile(r"^ispresent\((@?\w+)\)$")
_AGGREGATE = re.compile(r"^(count|max|min|avg|sum)\((\*|@?\w+)\)(?:\s+as\s+(\w+))?$")


def rows_of(lines: Iterable[str]) -> list[Row]:
    """The JSON log lines as rows, with ``@timestamp`` and ``@message`` as Insights adds them."""
    rows = []
    for line in lines:
        start = line.find("{")
        if start < 0:
            continue
        try:
            row = json.loads(line[start:])
        except json.JSONDecodeError:
            continue
        if isinstance(row, dict):
            row.setdefault("@timestamp", row.get("timestamp"))
            row["@message"] = line
            rows.append(row)
    return rows


def run_query(query: str, rows: list[Row]) -> list[Row]:
    """Evaluate ``query`` over ``rows``; the result rows in order."""
    for command in _split(query):
        verb, _, rest = command.partition(" ")
        rows = _COMMANDS.get(verb, _unknown(verb))(rest.strip(), rows)
    return rows


def _split(query: str) -> list[str]:
    parts, current, quoted = [], "", False
    for char in query:
        if char == '"':
            quoted = not quoted
        if char == "|" and not quoted:
            parts.append(current.strip())
            current = ""
        else:
            current += char
    parts.append(current.strip())
    return [" ".join(part.split()) for part in parts if part]


def _unknown(verb: str) -> Callable[[str, list[Row]], list[Row]]:
    def fail(_rest: str, _rows: list[Row]) -> list[Row]:
        raise ValueError(f"the evaluator does not know the command {verb!r}")

    return fail


def _fields(rest: str, rows: list[Row]) -> list[Row]:
    names = [name.strip() for name in rest.split(",")]
    return [{name: row.get(name) for name in names} | {"_row": row} for row in rows]


def _condition(text: str) -> Callable[[Row], bool]:
    present = _PRESENT.match(text)
    if present:
        field = present.group(1)
        return lambda row: _get(row, field) is not None
    comparison = _COMPARISON.match(text)
    if comparison is None:
        raise ValueError(f"the evaluator cannot read the condition {text!r}")
    field, string, number = comparison.groups()
    expected: Any = string if string is not None else float(number)
    return lambda row: _get(row, field) == expected


def _filter(rest: str, rows: list[Row]) -> list[Row]:
    conditions = [_condition(part.strip()) for part in re.split(r"\s+and\s+", rest)]
    return [row for row in rows if all(condition(row) for condition in conditions)]


def _stats(rest: str, rows: list[Row]) -> list[Row]:
    aggregates_text, _, by_text = rest.partition(" by ")
    keys = [key.strip() for key in by_text.split(",")] if by_text else []
    aggregates = []
    for part in aggregates_text.split(","):
        match = _AGGREGATE.match(part.strip())
        if match is None:
            raise ValueError(f"the evaluator cannot read the aggregate {part.strip()!r}")
        function, field, alias = match.groups()
        aggregates.append((function, field, alias or f"{function}({field})"))
    groups: dict[tuple[Any, ...], list[Row]] = {}
    for row in rows:
        groups.setdefault(tuple(_get(row, key) for key in keys), []).append(row)
    result = []
    for group_key, members in groups.items():
        out: Row = dict(zip(keys, group_key, strict=True))
        for function, field, alias in aggregates:
            out[alias] = _aggregate(function, field, members)
        result.append(out)
    return result


def _aggregate(function: str, field: str, rows: list[Row]) -> Any:
    if function == "count":
        return len(rows) if field == "*" else sum(_get(r, field) is not None for r in rows)
    values = [_get(row, field) for row in rows if _get(row, field) is not None]
    if not values:
        return None
    if function == "max":
        return max(values)
    if function == "min":
        return min(values)
    if function == "sum":
        return sum(values)
    return sum(values) / len(values)


def _sort(rest: str, rows: list[Row]) -> list[Row]:
    field, _, direction = rest.partition(" ")
    if direction not in ("", "asc", "desc"):
        raise ValueError(f"the evaluator cannot read the sort order {direction!r}")
    present = [row for row in rows if _get(row, field) is not None]
    absent = [row for row in rows if _get(row, field) is None]
    ordered = sorted(present, key=lambda row: _get(row, field), reverse=direction != "asc")
    return ordered + absent


def _limit(rest: str, rows: list[Row]) -> list[Row]:
    return rows[: int(rest)]


def _get(row: Row, field: str) -> Any:
    if field in row:
        return row[field]
    inner = row.get("_row")
    return inner.get(field) if isinstance(inner, dict) else None


_COMMANDS: dict[str, Callable[[str, list[Row]], list[Row]]] = {
    "fields": _fields,
    "filter": _filter,
    "stats": _stats,
    "sort": _sort,
    "limit": _limit,
}
