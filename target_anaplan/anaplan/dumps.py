"""Failure dumps: the rows an import rejected or warned about, with Anaplan's reason.

Dumps are per user and vanish after 48 hours or on the next clean run, so a missing
dump is a warning, not an error. They may hold business data: files are written
readable by the owner only.
"""

from __future__ import annotations

import csv
import logging
import os
from collections import Counter
from pathlib import Path
from typing import IO

from target_anaplan.anaplan.client import AnaplanClient
from target_anaplan.anaplan.errors import NotFoundError
from target_anaplan.anaplan.models import ModelRef, TaskOutcome

logger = logging.getLogger(__name__)

ERROR_COLUMN = "_Error_1_"
LINE_COLUMN = "_Line_"


def download_dump(
    client: AnaplanClient, model: ModelRef, outcome: TaskOutcome, dest_dir: Path
) -> list[Path]:
    """Save the task's failure dump(s) as CSV files in ``dest_dir``; returns the files written.

    An import has one dump; a process has one per nested import (``.../dumps/{objectId}``).
    """
    action = outcome.action
    tasks = f"{model.path}/{action.kind}/{action.id}"
    task_path = f"{tasks}/tasks/{outcome.task_id}"
    if action.kind == "imports":
        sources = [(f"{task_path}/dump", f"{action.id}-{outcome.task_id}.csv")]
    else:
        steps = [n for n in outcome.nested if n.failure_dump_available] or list(outcome.nested)
        sources = [
            (f"{task_path}/dumps/{n.action.id}", f"{action.id}-{outcome.task_id}-{n.action.id}.csv")
            for n in steps
        ]
    dest_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    written = []
    for path, name in sources:
        target = dest_dir / name
        if _download_chunks(client, path, target):
            written.append(target)
    return written


def _download_chunks(client: AnaplanClient, dump_path: str, target: Path) -> bool:
    """Fetch every chunk of one dump, in order, into ``target``; False if there is no dump."""
    try:
        chunks = client.list_all(f"{dump_path}/chunks", "chunks")
        with _private_file(target) as out:
            for chunk in chunks:
                client.download(f"{dump_path}/chunks/{chunk['id']}", out)
    except NotFoundError:
        target.unlink(missing_ok=True)
        logger.warning("No failure dump at %s: Anaplan no longer keeps it", dump_path)
        return False
    logger.info("Saved failure dump to %s", target)
    return True


def _private_file(path: Path) -> IO[bytes]:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    return os.fdopen(fd, "wb")


def failed_lines(path: Path) -> set[int] | None:
    """The line numbers (of the uploaded file) a dump lists, or None if it has no ``_Line_``."""
    with path.open(encoding="utf-8-sig", errors="replace", newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader, [])
        if LINE_COLUMN not in header:
            return None
        column = header.index(LINE_COLUMN)
        return {int(row[column]) for row in reader if len(row) > column and row[column].isdigit()}


def summarize_dump(path: Path, top: int = 5) -> list[tuple[str, int]]:
    """The ``top`` most common error messages (``_Error_1_``) in a dump, with counts."""
    with path.open(encoding="utf-8-sig", errors="replace", newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader, [])
        if ERROR_COLUMN not in header:
            return []
        column = header.index(ERROR_COLUMN)
        errors = Counter(row[column] for row in reader if len(row) > column and row[column])
    return errors.most_common(top)
