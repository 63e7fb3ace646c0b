"""`sort=+field,-other` on list endpoints, with the two behaviours Anaplan shows.

Top-level lists (`/workspaces`, `/models`) check the value: every column needs its `+`/`-`
prefix and must be one of a few sortable fields, else `400`. Model-level lists (files,
imports, processes, tasks, ...) take a bare field as ascending and ignore fields they do not
know (anaplan-api.md §3.1; OAS integration README, "sort on generic list endpoints").
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

from target_anaplan.simulator.wire import ApiError, Request

Item = dict[str, Any]
KeyFunc = Callable[[Item], Any]


def sort_checked(req: Request, items: list[Item], fields: tuple[str, ...]) -> list[Item]:
    """Sort a top-level list; a bare or unknown column is Anaplan's `400`."""
    terms = []
    for column in _columns(req):
        if column[0] not in "+-":
            raise ApiError(
                400,
                f"Bad sort order format: '{column}'. "
                "Please follow (-){column_name_1},(+){column_name_2}.. format",
            )
        if column[1:] not in fields:
            raise ApiError(400, "Failed to parse sort parameter")
        terms.append((_field_key(column[1:]), column[0] == "-"))
    return _sorted(items, terms)


def sort_lenient(
    req: Request, items: list[Item], aliases: Mapping[str, KeyFunc] | None = None
) -> list[Item]:
    """Sort a model-level list: no prefix is ascending, unknown fields are ignored.

    `aliases` names sort fields that are not item keys (tasks sort by `creationDate`).
    """
    terms = []
    for column in _columns(req):
        descending = column.startswith("-")
        name = column[1:] if column[0] in "+-" else column
        if aliases and name in aliases:
            terms.append((aliases[name], descending))
        elif any(name in item for item in items):
            terms.append((_field_key(name), descending))
    return _sorted(items, terms)


def _columns(req: Request) -> list[str]:
    raw = req.param("sort") or ""
    return [column.strip() for column in raw.split(",") if column.strip()]


def _field_key(name: str) -> KeyFunc:
    return lambda item: item.get(name)


def _sorted(items: list[Item], terms: list[tuple[KeyFunc, bool]]) -> list[Item]:
    """Sort by every term in turn; ties keep list order (reversed when the first term is `-`),
    so `-creationDate` is exactly the reverse of the oldest-first task list."""
    if not terms:
        return items

    def compare(a: tuple[int, Item], b: tuple[int, Item]) -> int:
        for key, descending in terms:
            x, y = _missing_last(key(a[1])), _missing_last(key(b[1]))
            if x != y:
                order = -1 if x < y else 1
                return -order if descending else order
        order = a[0] - b[0]
        return -order if terms[0][1] else order

    ranked = sorted(enumerate(items), key=functools.cmp_to_key(compare))
    return [item for _, item in ranked]


def _missing_last(value: Any) -> tuple[bool, Any]:
    return (value is None, value if value is not None else 0)
