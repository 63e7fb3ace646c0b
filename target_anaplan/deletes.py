"""How items that left the source leave an Anaplan list.

Two ways, chosen per stream (``deletes: delete``):

- the transactional list API, by item code (the default; the list is ``delete_list`` or
  the list the stream's import loads);
- a model's "delete from list using selection" action (``delete_action``), after a flag
  import (``delete_flag_import``) has set its Boolean line item for the items to go: the
  usual flag-then-delete pattern of Anaplan integrations. The flag file carries the item
  code in its first column and ``true`` in the others.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from target_anaplan.anaplan.lists import delete_items
from target_anaplan.anaplan.models import ActionRef, DataSourceTarget
from target_anaplan.anaplan.upload import upload_file
from target_anaplan.csv_writer import RowFormatter, preamble
from target_anaplan.loading import CommitRules, run_and_judge
from target_anaplan.spool import Spool

logger = logging.getLogger(__name__)


class Deleter(Protocol):
    """Deletes list items by code; returns how many are gone from the list."""

    def delete(self, codes: Iterable[Sequence[str]]) -> int: ...


@dataclass(frozen=True)
class ListApiDeleter:
    """Deletes through ``POST .../lists/{id}/items?action=delete``."""

    rules: CommitRules
    list_id: str
    list_name: str

    def delete(self, codes: Iterable[Sequence[str]]) -> int:
        result = delete_items(
            self.rules.client, self.rules.model, self.list_id, codes, list_name=self.list_name
        )
        if result.already_gone:
            logger.info(
                "List %s: %d item(s) to delete were already gone",
                self.list_name,
                result.already_gone,
            )
        return result.deleted + result.already_gone


@dataclass(frozen=True)
class FlagThenDeleteAction:
    """Flags the items with an import, then runs a delete-by-selection action."""

    rules: CommitRules
    flag_source: DataSourceTarget
    flag_import: ActionRef
    action: ActionRef
    spool_dir: Path

    def delete(self, codes: Iterable[Sequence[str]]) -> int:
        layout = self.flag_source.layout
        header = layout.header_names
        formatter = RowFormatter(
            "deletes", header, {}, separator=layout.separator, text_delimiter=layout.text_delimiter
        )
        spool = Spool(
            self.spool_dir,
            encoding=layout.encoding,
            encoding_errors="fail",
            chunk_size_bytes=25_000_000,
            preamble=preamble(
                header,
                separator=layout.separator,
                text_delimiter=layout.text_delimiter,
                header_row=layout.header_row,
                first_data_row=layout.first_data_row,
            ),
        )
        try:
            for batch in codes:
                rows = [
                    formatter.format({header[0]: code, **dict.fromkeys(header[1:], True)})
                    for code in batch
                ]
                spool.write_lines(
                    rows, record_numbers=range(spool.rows + 1, spool.rows + len(rows) + 1)
                )
            flagged = spool.rows
            if not flagged:
                return 0
            upload_file(
                self.rules.client, self.rules.model, self.flag_source.file_id, spool.chunk_pieces
            )
        finally:
            spool.close()
        subject = f"the deletes through {self.action.label}"
        run_and_judge(self.rules, [self.flag_import], subject=subject, rows=flagged)
        run_and_judge(self.rules, [self.action], subject=subject)
        return flagged
