"""The spool: rows on disk in the data source's encoding, read back in chunks cut at row ends."""

from __future__ import annotations

import csv
import io
import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from target_anaplan.anaplan.encodings import python_codec
from target_anaplan.csv_writer import RowFormatter, preamble
from target_anaplan.errors import UnencodableValueError, UnknownEncodingError
from target_anaplan.spool import Spool

HEADER = ["Code", "Name", "Note"]


@pytest.fixture
def make_spool(tmp_path):
    spools: list[Spool] = []

    def make(**options) -> Spool:
        options = {
            "encoding": "UTF-8",
            "encoding_errors": "fail",
            "chunk_size_bytes": 1000,
            **options,
        }
        spool = Spool(tmp_path, **options)
        spools.append(spool)
        return spool

    yield make
    for spool in spools:
        spool.close()


def tricky_rows(count: int) -> list[list[str]]:
    return [
        [f"C{i}", f"Zoë 東京 {i} 🚀", f'note "{i}", with comma\nand a second line' * (i % 4)]
        for i in range(count)
    ]


def spool_rows(spool: Spool, rows: list[list[str]]) -> None:
    formatter = RowFormatter("s", HEADER, {}, separator=",", text_delimiter='"')
    for number, row in enumerate(rows, start=1):
        spool.write(formatter.format(dict(zip(HEADER, row, strict=True))), record_number=number)


@pytest.mark.parametrize(("encoding", "codec"), [("UTF-8", "utf-8"), ("UTF-16LE", "utf-16-le")])
def test_chunks_concatenate_to_the_rows_and_never_split_one(make_spool, encoding, codec):
    header = preamble(HEADER, separator=",", text_delimiter='"', header_row=1, first_data_row=2)
    spool = make_spool(chunk_size_bytes=300, preamble=header, encoding=encoding)
    rows = tricky_rows(200)
    spool_rows(spool, rows)

    chunks = list(spool.chunks())
    assert len(chunks) > 10
    assert all(len(chunk) <= 300 for chunk in chunks)
    for chunk in chunks:  # each chunk holds whole rows: it decodes and parses on its own
        text = chunk.decode(codec)  # multi-byte characters are never cut
        assert text.endswith("\n")
        list(csv.reader(io.StringIO(text, newline=""), strict=True))
    whole = b"".join(chunks)
    assert len(whole) == spool.raw_bytes
    parsed = list(csv.reader(io.StringIO(whole.decode(codec), newline="")))
    assert parsed == [HEADER, *rows]
    assert spool.rows == 200


def test_chunks_are_re_iterable(make_spool):
    spool = make_spool(chunk_size_bytes=50)
    spool_rows(spool, tricky_rows(20))
    assert list(spool.chunks()) == list(spool.chunks())


def test_chunk_pieces_are_small_and_make_up_the_chunks(make_spool, monkeypatch):
    monkeypatch.setattr("target_anaplan.spool.PIECE_BYTES", 16)
    spool = make_spool(chunk_size_bytes=50)
    spool_rows(spool, tricky_rows(20))
    pieces = [list(chunk) for chunk in spool.chunk_pieces()]
    assert all(0 < len(piece) <= 16 for chunk in pieces for piece in chunk)
    assert [b"".join(chunk) for chunk in pieces] == list(spool.chunks())
    assert len(pieces) > 1


def test_a_row_larger_than_a_chunk_is_a_chunk_of_its_own(make_spool):
    spool = make_spool(chunk_size_bytes=10, preamble="H\n")
    for number, line in enumerate(["a\n", "x" * 25 + "\n", "b\n", "c\n"], start=1):
        spool.write(line, record_number=number)
    assert list(spool.chunks()) == [b"H\na\n", b"x" * 25 + b"\n", b"b\nc\n"]


def test_empty_spool_has_no_chunks_but_keeps_the_preamble(make_spool):
    assert list(make_spool().chunks()) == []
    assert list(make_spool(preamble="A,B\n").chunks()) == [b"A,B\n"]


@pytest.mark.parametrize(
    ("header_row", "first_data_row", "expected"),
    [(1, 2, b"A,B\nx,y\n"), (0, 1, b"x,y\n"), (2, 4, b"\nA,B\n\nx,y\n")],
)
def test_preamble_places_header_and_first_data_row(
    make_spool, header_row, first_data_row, expected
):
    text = preamble(
        ["A", "B"],
        separator=",",
        text_delimiter='"',
        header_row=header_row,
        first_data_row=first_data_row,
    )
    spool = make_spool(preamble=text)
    spool.write("x,y\n", record_number=1)
    assert b"".join(spool.chunks()) == expected


@pytest.mark.parametrize(
    ("encoding", "expected"),
    [
        ("UTF-8", "é€,\n".encode()),
        ("ISO-8859-1", None),
        ("windows-1252", "é€,\n".encode("cp1252")),
        ("UTF-16LE", "é€,\n".encode("utf-16-le")),
        ("UTF-16BE", "é€,\n".encode("utf-16-be")),
        ("UTF-16", "é€,\n".encode("utf-16-be")),
    ],
)
def test_rows_are_encoded_in_the_data_source_encoding_without_bom(make_spool, encoding, expected):
    spool = make_spool(encoding=encoding, encoding_errors="replace")
    spool.write("é€,\n", record_number=1)
    data = b"".join(spool.chunks())
    if expected is None:
        assert data == b"\xe9?,\n"
    else:
        assert data == expected


def test_unencodable_character_fails_naming_record_field_and_fix(make_spool):
    formatter = RowFormatter(
        "employees", HEADER, {"Note": "note"}, separator=",", text_delimiter='"'
    )
    spool = make_spool(encoding="ISO-8859-1", locate=formatter.locate)
    spool.write(formatter.format({"Code": "1", "Name": "Zoë", "note": "ok"}), record_number=1)
    with pytest.raises(UnencodableValueError) as caught:
        spool.write(
            formatter.format({"Code": "2", "Name": "Zoë", "note": "price in €"}),
            record_number=2,
            describe=lambda: "stream 'employees'",
        )
    error = caught.value
    message = str(error)
    assert message.startswith("Record 2, stream 'employees', field 'note' (column 'Note')")
    assert "'€' (U+20AC)" in message
    assert "ISO-8859-1" in message
    assert "`encoding_errors: replace`" in message
    assert (error.record_number, error.character, error.encoding) == (2, "€", "ISO-8859-1")
    assert spool.rows == 1  # the refused row was not written
    assert b"".join(spool.chunks()) == "1,Zoë,ok\n".encode("latin-1")


def test_replace_mode_writes_question_marks_and_counts_them(make_spool):
    spool = make_spool(encoding="ISO-8859-1", encoding_errors="replace")
    spool.write("€ and 東京, é\n", record_number=1)
    spool.write("plain\n", record_number=2)
    assert b"".join(spool.chunks()) == "? and ??, é\nplain\n".encode("latin-1")
    assert spool.replaced_characters == 3


def test_lone_surrogates_fail_even_in_utf8(make_spool):
    spool = make_spool(encoding="UTF-8")
    with pytest.raises(UnencodableValueError, match="U\\+D800"):
        spool.write("bad \ud800\n", record_number=5)


def test_unencodable_header_fails_before_any_row(tmp_path):
    with pytest.raises(UnencodableValueError, match="The header line"):
        Spool(
            tmp_path,
            encoding="ISO-8859-1",
            encoding_errors="fail",
            chunk_size_bytes=100,
            preamble="Région €\n",
        )
    assert list(tmp_path.iterdir()) == []


def test_encoding_names_map_to_python_codecs():
    assert python_codec("UTF-8") == "utf-8"
    assert python_codec("ISO-8859-1") == "iso8859-1"
    assert python_codec("x-MacRoman") == "mac-roman"
    with pytest.raises(UnknownEncodingError, match=r"'EBCDIC-XYZ'.*UTF-8"):
        python_codec("EBCDIC-XYZ")


def test_file_is_private_and_close_removes_it(make_spool, tmp_path):
    spool = make_spool()
    spool.write("a\n", record_number=1)
    path = Path(spool.path)
    assert path.parent == tmp_path
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    spool.close()
    spool.close()
    assert spool.closed
    assert not path.exists()


def test_file_is_removed_at_interpreter_exit(tmp_path):
    script = textwrap.dedent(
        f"""
        from pathlib import Path
        from target_anaplan.spool import Spool
        spool = Spool(Path({str(tmp_path)!r}), encoding="UTF-8", encoding_errors="fail",
                      chunk_size_bytes=10)
        spool.write("row\\n", record_number=1)
        print(spool.path)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip().startswith(str(tmp_path))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("encoding", ["UTF-8", "UTF-16"])
def test_writing_lines_together_equals_writing_them_one_by_one(make_spool, encoding):
    lines = [f"{number},Zoë {'x' * (number % 7)}\n" for number in range(1, 60)]
    one_by_one = make_spool(encoding=encoding, chunk_size_bytes=120, preamble="Code,Name\n")
    for number, line in enumerate(lines, 1):
        one_by_one.write(line, record_number=number)
    together = make_spool(encoding=encoding, chunk_size_bytes=120, preamble="Code,Name\n")
    for start in range(0, len(lines), 10):  # some batches fit the current chunk, some do not
        batch = lines[start : start + 10]
        together.write_lines(batch, record_numbers=range(start + 1, start + 1 + len(batch)))
    assert list(together.chunks()) == list(one_by_one.chunks())
    assert (together.rows, together.raw_bytes) == (one_by_one.rows, one_by_one.raw_bytes)


def test_writing_lines_together_names_the_record_that_cannot_be_encoded(make_spool):
    spool = make_spool(encoding="ISO-8859-1")
    with pytest.raises(UnencodableValueError, match="Record 12"):
        spool.write_lines(["a\n", "b\n", "€\n"], record_numbers=range(10, 13))
