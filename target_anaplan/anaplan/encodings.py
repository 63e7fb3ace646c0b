"""Anaplan's text encoding names (Java charsets) as Python codecs, decided in one place."""

from __future__ import annotations

import codecs
import logging

from target_anaplan.errors import UnknownEncodingError

logger = logging.getLogger(__name__)

# Java reads "UTF-16"/"UTF-32" without a byte order mark as big-endian, and no BOM is
# ever written; Python's plain "utf-16" would write one in the machine's byte order.
_JAVA_DEFAULTS = {"utf-16": "utf-16-be", "utf-32": "utf-32-be"}
# UTF-32 first: its little-endian mark starts with UTF-16's.
_BYTE_ORDER_MARKS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


def python_codec(encoding: str) -> str:
    """The Python codec for an Anaplan text encoding name ("UTF-8", "x-MacRoman", ...)."""
    name = encoding.strip().lower().removeprefix("x-")
    name = _JAVA_DEFAULTS.get(name, name)
    try:
        return codecs.lookup(name).name
    except LookupError:
        raise UnknownEncodingError(
            f"The Anaplan data source's text encoding {encoding!r} is not supported. Change "
            "the file's text encoding to UTF-8 in the import data source settings in Anaplan."
        ) from None


def decode_text(content: bytes, encoding: str) -> str:
    """Text Anaplan holds in ``encoding``, read as Java reads it: a byte order mark, if
    present, decides the byte order; an unknown encoding is read as UTF-8 (warned)."""
    try:
        codec = python_codec(encoding)
    except UnknownEncodingError:
        logger.warning("Unknown file encoding %r; reading the file as UTF-8", encoding)
        codec = "utf-8"
    for bom, aware in _BYTE_ORDER_MARKS:
        if codec.startswith(aware) and content.startswith(bom):
            return content.decode(aware, errors="replace")
    return content.decode(codec, errors="replace")
