"""Singer messages from standard input, and where in the input a message came from.

msgspec parses each line (floats as Decimal, several times faster than json). A line
that ``typed`` (the record path) can decode as a RECORD of a typed stream is handed to it
as decoded; before every other line, ``typed.flush`` loads what it holds. Unlike
the SDK's own msgspec reader, a line that is not JSON is reported once, as the error the
target prints, instead of first being logged with a traceback; and lines are counted in
``InputPosition``, so that messages about bad input can say where it is. Standard input
is read as bytes: msgspec decodes UTF-8 itself, twice as fast as text lines.
"""

from __future__ import annotations

import io
import itertools
import select
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any, Protocol, cast

import msgspec
from singer_sdk.contrib.msgspec import decoder
from singer_sdk.singerlib.encoding.base import GenericSingerReader
from singer_sdk.singerlib.exceptions import InvalidInputLine


@dataclass
class InputPosition:
    """The line being read, and the stream and record number of the last record."""

    line: int = 0
    stream: str = ""
    records: Counter[str] = field(default_factory=Counter)

    def describe(self) -> str:
        """``Line 12 of the input, stream 'orders', record 7`` (for messages about records)."""
        stream = self.stream
        return f"Line {self.line} of the input, stream {stream!r}, record {self.records[stream]}"


class TypedRecords(Protocol):
    """The record path's side of the reader: RECORD lines it decodes itself."""

    decode: Callable[[bytes | str], Any] | None  # None while no stream is typed

    def take_typed(self, message: Any, line: bytes | str, number: int) -> bool:
        """Take a decoded message; False if it is not one of the typed streams' records."""

    def flush(self) -> None:
        """Load the typed records taken so far (before any other message is handled)."""


_READ_BYTES = 1 << 16
_BLOCK_LINES = 10_000


def input_blocks(stream: IO[Any]) -> Iterator[list[Any] | None]:
    """The lines of ``stream`` (each with its line end) in blocks, and None whenever reading
    the next block would wait for the tap (so that records held for a batch are loaded
    meanwhile: a tap that sends a record a minute must not see it held until a thousand
    arrived).

    A pipe or file is read a block at a time (``read1``), and asked whether more is
    ready before each block; any other stream is read in blocks of lines, since it
    cannot wait.
    """
    read = getattr(stream, "read1", None)
    try:
        descriptor = stream.fileno()
    except (AttributeError, OSError, ValueError):
        descriptor = None
    if read is None or descriptor is None:
        lines = iter(stream)
        while block := list(itertools.islice(lines, _BLOCK_LINES)):
            yield block
        return
    rest = b""
    while True:
        if not _ready(descriptor):
            yield None
        block = read(_READ_BYTES)
        if not block:
            break
        data = rest + block
        end = data.rfind(b"\n") + 1
        rest = data[end:]
        if end:
            yield io.BytesIO(data[:end]).readlines()
    if rest:
        yield [rest]


def _ready(descriptor: int) -> bool:
    """Whether reading ``descriptor`` would return at once (False when that cannot be told)."""
    try:
        readable, _, _ = select.select([descriptor], [], [], 0)
    except (OSError, ValueError):
        return False
    return bool(readable)


def _text(line: str | bytes) -> str:
    return line.decode("utf-8", errors="replace") if isinstance(line, bytes) else line


class MessageReader(GenericSingerReader[str]):
    """Reads Singer messages line by line, counting lines into ``position``."""

    def __init__(self) -> None:
        super().__init__()
        self.position = InputPosition()
        self.typed: TypedRecords | None = None

    @property
    def default_input(self) -> IO[str]:
        """Standard input's bytes when it has them (msgspec takes bytes lines as well)."""
        return cast("IO[str]", getattr(sys.stdin, "buffer", sys.stdin))

    def process_lines(
        self,
        file_input: IO[str] | None,
        callbacks: dict[str, Callable[[dict[str, Any]], None]],
    ) -> Counter[str]:
        """Read every message, counting lines; the SDK's loop, with typed records first."""
        stats: Counter[str] = Counter()
        position = self.position
        deserialize = self.deserialize_json
        typed = self.typed
        typed_lines = number = 0
        for block in input_blocks(file_input or self.default_input):
            if block is None:  # nothing more to read yet: load what is held meanwhile
                if typed is not None:
                    typed.flush()
                continue
            for line in block:
                number += 1
                if typed is not None:
                    decode = typed.decode
                    if decode is not None:
                        try:
                            decoded = decode(line)
                        except msgspec.DecodeError:
                            decoded = None
                        if decoded is not None and typed.take_typed(decoded, line, number):
                            typed_lines += 1
                            continue
                    typed.flush()
                position.line = number
                message = deserialize(line)
                if "type" not in message:
                    self.assert_line_requires(message, {"type"})
                kind = message["type"]
                callback = callbacks.get(kind)
                if callback is None:
                    self._process_unknown_message(message)
                else:
                    callback(message)
                stats[kind] += 1
        if typed is not None:
            typed.flush()
        stats["RECORD"] += typed_lines
        return stats

    def deserialize_json(self, line: str | bytes) -> dict[str, Any]:
        """Parse one line, or raise ``InvalidInputLine`` naming the problem."""
        try:
            message = decoder.decode(line)
        except msgspec.DecodeError as exc:
            msg = (
                f"Line {self.position.line} of the input is not valid JSON ({exc}): "
                f"{_text(line[:200])!r}"
            )
            raise InvalidInputLine(msg) from exc
        if not isinstance(message, dict):
            msg = (
                f"Line {self.position.line} of the input is not a JSON object: "
                f"{_text(line[:200])!r}"
            )
            raise InvalidInputLine(msg)
        return message

    def assert_line_requires(self, line_dict: dict[str, Any], requires: set[str]) -> None:  # type: ignore[override]  # the SDK's is a staticmethod; this one names the line
        """A message without a key it needs fails naming its line and the keys."""
        if requires <= line_dict.keys():  # every message, twice per record: keep it cheap
            return
        missing = ", ".join(sorted(requires - line_dict.keys()))
        msg = (
            f"Line {self.position.line} of the input is a Singer message without {missing}: "
            f"{str(line_dict)[:200]}"
        )
        raise InvalidInputLine(msg)

    def _process_unknown_message(self, message_dict: dict[str, Any]) -> None:
        """Fail on one line; the SDK's own error here comes with a traceback."""
        msg = (
            f"Line {self.position.line} of the input has an unknown Singer message type "
            f"{message_dict['type']!r}."
        )
        raise InvalidInputLine(msg)
