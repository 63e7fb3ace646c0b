"""A batch of CSV rows spooled to a private temporary file, read back as upload chunks.

Rows go to disk as they arrive, encoded in the data source's text encoding, so memory
stays flat however large a batch is. Only the offsets where a chunk must end are kept:
a chunk ends at a row end and holds at most ``chunk_size_bytes`` (a single larger row
becomes a chunk of its own), which is what Anaplan's chunked upload needs. Reading back,
a chunk comes in pieces of at most ``PIECE_BYTES``, so memory stays flat there too.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import tempfile
import weakref
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import BinaryIO, Literal

from target_anaplan.anaplan.encodings import python_codec
from target_anaplan.errors import UnencodableValueError

_BUFFER_BYTES = 1 << 20
PIECE_BYTES = 1 << 20


def _discard(file: BinaryIO, path: str) -> None:
    """Close and delete the spool file (also run by the finalizer at interpreter exit)."""
    file.close()
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def _read_chunks(path: str, bounds: list[int]) -> Iterator[Iterator[bytes]]:
    with open(path, "rb") as file:
        for start, end in itertools.pairwise(bounds):
            if end > start:
                yield _read_pieces(file, start, end)


def _read_pieces(file: BinaryIO, start: int, end: int) -> Iterator[bytes]:
    """Bytes ``start`` to ``end`` of ``file`` in pieces of at most ``PIECE_BYTES``."""
    for offset in range(start, end, PIECE_BYTES):
        file.seek(offset)
        yield file.read(min(PIECE_BYTES, end - offset))


class Spool:
    """Rows on disk for one batch; ``chunks()`` reads them back cut at row ends.

    ``rows`` counts the rows and ``raw_bytes`` the bytes in the file (preamble included);
    ``replaced_characters`` the characters written as '?' under ``encoding_errors: replace``.
    ``locate(line, index)``, if given, names the field at a position of a line (see
    ``RowFormatter.locate``) in the message for an unencodable character.
    """

    def __init__(
        self,
        directory: Path,
        *,
        encoding: str,
        encoding_errors: Literal["fail", "replace"],
        chunk_size_bytes: int,
        preamble: str = "",
        locate: Callable[[str, int], str] | None = None,
    ) -> None:
        if chunk_size_bytes < 1:
            raise ValueError("chunk_size_bytes must be at least 1.")
        self.encoding = encoding
        self.rows = 0
        self.replaced_characters = 0
        self._codec = python_codec(encoding)
        # Rows can be encoded together unless the codec writes a byte order mark per call.
        self._joinable = not "".encode(self._codec)
        self._replace = encoding_errors == "replace"
        self._chunk_size = chunk_size_bytes
        self._locate = locate
        self._preamble = self._encode(preamble, record_number=0, describe=None)
        fd, self.path = tempfile.mkstemp(prefix="target-anaplan-", suffix=".csv", dir=directory)
        self._file = os.fdopen(fd, "w+b", buffering=_BUFFER_BYTES)
        self._finalizer = weakref.finalize(self, _discard, self._file, self.path)
        self._file.write(self._preamble)
        self.raw_bytes = len(self._preamble)
        self._cuts: list[int] = []  # where chunks after the first start
        self._chunk_start = 0

    def write(
        self, line: str, *, record_number: int, describe: Callable[[], str] | None = None
    ) -> None:
        """Append one row (a complete line); ``describe`` names its origin in error messages."""
        data = self._encode(line, record_number=record_number, describe=describe)
        end = self.raw_bytes + len(data)
        if end - self._chunk_start > self._chunk_size and self.raw_bytes > self._chunk_start:
            self._cuts.append(self.raw_bytes)
            self._chunk_start = self.raw_bytes
        self._file.write(data)
        self.raw_bytes = end
        self.rows += 1

    def write_lines(
        self,
        lines: Sequence[str],
        *,
        record_numbers: Sequence[int],
        describe: Callable[[], str] | None = None,
    ) -> None:
        """Append rows in one go: the same as ``write`` for each line in order, faster.

        ``record_numbers`` gives each line's record number in the stream (for messages). One
        encode and one file write, when the rows fit in the current chunk and encode
        cleanly; otherwise row by row, which cuts chunks and reports errors exactly.
        """
        data = None
        if self._joinable:
            with contextlib.suppress(UnicodeEncodeError):
                data = "".join(lines).encode(self._codec)
        if data is None or self.raw_bytes + len(data) - self._chunk_start > self._chunk_size:
            for number, line in zip(record_numbers, lines, strict=True):
                self.write(line, record_number=number, describe=describe)
            return
        self._file.write(data)
        self.raw_bytes += len(data)
        self.rows += len(lines)

    def chunks(self) -> Iterator[bytes]:
        """The file's bytes in chunks cut at row ends; each call reads from the start again.

        The chunks are those of the rows written before the call; do not write
        while iterating.
        """
        return (b"".join(pieces) for pieces in self.chunk_pieces())

    def chunk_pieces(self) -> Iterator[Iterator[bytes]]:
        """Like ``chunks``, each chunk as its pieces: read each one before the next chunk."""
        self._file.flush()
        return _read_chunks(self.path, self._bounds())

    @property
    def chunk_count(self) -> int:
        """How many chunks the rows written so far make."""
        return len(self._cuts) + 1

    @property
    def finished_chunks(self) -> int:
        """How many chunks are whole already: every chunk but the one being written."""
        return len(self._cuts)

    def flush(self) -> None:
        """Write what is buffered to the file, so that another reader sees every row."""
        self._file.flush()

    def chunk_at(self, index: int) -> Iterator[bytes]:
        """Chunk ``index`` in pieces, read through its own handle (so another thread may
        read a finished chunk while rows are appended; ``flush`` first)."""
        bounds = self._bounds()
        start, end = bounds[index], bounds[index + 1]
        with open(self.path, "rb") as file:
            yield from _read_pieces(file, start, end)

    def close(self) -> None:
        """Delete the file; safe to call more than once."""
        self._finalizer()

    @property
    def closed(self) -> bool:
        """Whether ``close()`` ran."""
        return not self._finalizer.alive

    def _bounds(self) -> list[int]:
        """Where each chunk starts, and the end of the last one."""
        return [0, *self._cuts, self.raw_bytes]

    def _encode(
        self, text: str, *, record_number: int, describe: Callable[[], str] | None
    ) -> bytes:
        try:
            return text.encode(self._codec)
        except UnicodeEncodeError as error:
            return self._unencodable(text, error, record_number, describe)

    def _unencodable(
        self,
        line: str,
        error: UnicodeEncodeError,
        record_number: int,
        describe: Callable[[], str] | None,
    ) -> bytes:
        """Replace what the encoding cannot hold (counted), or explain the failure."""
        if self._replace:
            self.replaced_characters += sum(1 for char in line if not self._encodable(char))
            return line.encode(self._codec, errors="replace")
        character = line[error.start]
        where = [f"Record {record_number}" if record_number else "The header line"]
        if describe is not None:
            where.append(describe())
        if self._locate is not None and record_number:
            where.append(self._locate(line, error.start))
        raise UnencodableValueError(
            f"{', '.join(where)}: the character {character!r} (U+{ord(character):04X}) cannot be "
            f"written in the data source's text encoding {self.encoding}. Set "
            "`encoding_errors: replace` to write '?' instead, or change the data source's text "
            "encoding to UTF-8 in Anaplan.",
            record_number=record_number,
            character=character,
            encoding=self.encoding,
        )

    def _encodable(self, char: str) -> bool:
        try:
            char.encode(self._codec)
        except UnicodeEncodeError:
            return False
        return True
