"""The transactional list API: delete list items by code.

Anaplan list imports can add and update items but never remove them; the transactional
``POST .../lists/{id}/items?action=delete`` does, up to 100,000 items per call. Its answer
comes in two documented shapes (top-level ``deleted``/``failures``, or nested under
``result``), so both are read. An item that is already gone ("Not found") is what a delete
wants; any other failure is reported.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from target_anaplan.anaplan.errors import AnaplanError

if TYPE_CHECKING:
    from target_anaplan.anaplan.client import AnaplanClient
    from target_anaplan.anaplan.models import ModelRef

logger = logging.getLogger(__name__)

MAX_ITEMS_PER_CALL = 100_000
_ALREADY_GONE = "not found"


@dataclass(frozen=True)
class DeleteResult:
    """How many items one or more delete calls removed, and how many were already gone."""

    deleted: int = 0
    already_gone: int = 0


def delete_items(
    client: AnaplanClient,
    model: ModelRef,
    list_id: str,
    codes: Iterable[Sequence[str]],
    *,
    list_name: str,
) -> DeleteResult:
    """Delete the items with these codes (batches of at most ``MAX_ITEMS_PER_CALL``)."""
    deleted = gone = 0
    path = f"{model.path}/lists/{list_id}/items"
    for batch in codes:
        for start in range(0, len(batch), MAX_ITEMS_PER_CALL):
            part = batch[start : start + MAX_ITEMS_PER_CALL]
            body = client.request(
                "POST",
                path,
                params={"action": "delete"},
                json={"items": [{"code": code} for code in part]},
            )
            count, failures = _read(body)
            real = [f for f in failures if _ALREADY_GONE not in _failure_text(f).lower()]
            if real:
                shown = "; ".join(
                    f"{part[int(f.get('requestIndex', 0))]!r}: {_failure_text(f)}" for f in real[:5]
                )
                raise AnaplanError(
                    f"Anaplan did not delete {len(real)} item(s) from list {list_name!r}: "
                    f"{shown}. Check that the user may edit the list and that the codes are "
                    "the list's item codes."
                )
            deleted += count
            gone += len(failures)
    return DeleteResult(deleted=deleted, already_gone=gone)


def _read(body: dict[str, Any]) -> tuple[int, list[dict[str, Any]]]:
    nested: dict[str, Any] = body["result"] if isinstance(body.get("result"), dict) else {}
    count = body.get("deleted", nested.get("numberOfItemsDeleted", 0))
    failures = body.get("failures", nested.get("failures")) or []
    return int(count or 0), [f for f in failures if isinstance(f, dict)]


def _failure_text(failure: dict[str, Any]) -> str:
    return " ".join(
        str(failure.get(key) or "") for key in ("failureType", "failureMessageDetails")
    ).strip()
