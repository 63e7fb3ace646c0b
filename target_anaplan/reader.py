"""Singer messages from standard input, and where in the input a message came from.

msgspec parses each line (floats as Decimal, several times faster than json). Unlike
the SDK's own msgspec reader, a line that is not JSON is reported once, as the error the
target prints, instead of first being logged with a traceback; and lines are counted in
``InputPosition``, so that messages about bad input can say where it is. Standard input
is read as bytes: msgspec decodes UTF-8 itself, twice as fast as text lines.
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, Any, cast

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


def _text(line: str | bytes) -> str:
    return line.decode("utf-8", errors="replace") if isinstance(line, bytes) else line


class MessageReader(GenericSingerReader[str]):
    """Reads Singer messages line by line, counting lines into ``position``."""

    def __init__(self) -> None:
        super().__init__()
        self.position = InputPosition()

    @property
    def default_input(self) -> IO[str]:
        """Standard input's bytes when it has them (msgspec takes bytes lines as well)."""
        return cast("IO[str]", getattr(sys.stdin, "buffer", sys.stdin))

    def process_lines(
        self,
        file_input: IO[str] | None,
        callbacks: dict[str, Callable[[dict[str, Any]], None]],
    ) -> Counter[str]:
        """Read every message, counting lines; the SDK's loop, with no per-line extras."""
        stats: Counter[str] = Counter()
        position = self.position
        deserialize = self.deserialize_json
        for number, line in enumerate(file_input or self.default_input, 1):
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
