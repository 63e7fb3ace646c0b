"""One base class for every failure a user can fix, and how it is shown.

Anything raised as a ``TargetAnaplanError`` is an expected outcome (a wrong setting, bad
input, a refusal by Anaplan, rows Anaplan rejected, a value the file cannot hold, a lock
held by another run): the target prints its message as one line and exits 1, without a
traceback. Its ``str()`` is written for the user: what failed, and how to fix it.
Anything else reaching the top is a bug and keeps its traceback.

The Anaplan client's errors (``anaplan/errors.py``) derive from this base too; this
module imports nothing, so the client can use it without knowing anything of Singer.
"""

from __future__ import annotations

import re

MAX_MESSAGE_CHARS = 600


class TargetAnaplanError(Exception):
    """Base of every failure a user can fix; ``str()`` names the thing and the fix."""


class ConfigError(TargetAnaplanError, ValueError):
    """A setting is missing, malformed or contradicts another (or the model it names)."""


class InputError(TargetAnaplanError, ValueError):
    """A message or record from the tap that cannot be loaded as it is."""


class UnwritableValueError(TargetAnaplanError, ValueError):
    """A value that the data source's CSV dialect cannot represent."""


class UnknownEncodingError(TargetAnaplanError, ValueError):
    """The data source names a text encoding Python cannot write."""


class UnencodableValueError(TargetAnaplanError, ValueError):
    """A character the data source's encoding cannot hold, with ``encoding_errors: fail``."""

    def __init__(self, message: str, *, record_number: int, character: str, encoding: str) -> None:
        super().__init__(message)
        self.record_number = record_number
        self.character = character
        self.encoding = encoding


class RowsRejectedError(TargetAnaplanError):
    """Anaplan ran the imports but failed or ignored more rows than the settings allow."""


class DeleteGuardError(TargetAnaplanError):
    """One run would delete more of a stream's known keys than max_delete_fraction allows."""


class FileLockTimeoutError(TargetAnaplanError):
    """Another run on this machine held the file for longer than the import timeout."""


def one_line(exc: BaseException) -> str:
    """An exception's message on one line, bounded (input lines can be megabytes)."""
    text = re.sub(r"\s+", " ", str(exc) or type(exc).__name__).strip()
    if len(text) > MAX_MESSAGE_CHARS:
        text = text[: MAX_MESSAGE_CHARS - 3] + "..."
    return text
