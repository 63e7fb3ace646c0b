"""Catalog lookups and layouts, against a canned in-memory client."""

from __future__ import annotations

import re

import pytest

from target_anaplan.anaplan.catalog import Catalog
from target_anaplan.anaplan.errors import AnaplanError, NotFoundError
from target_anaplan.anaplan.models import DataSourceLayout, ModelRef

MODEL = ModelRef("ws", "WS", "M", "Model")
BASE = "/workspaces/ws/models/M"


class CannedClient:
    """Answers list_all/request from a dict keyed by path; a missing path is a 404."""

    def __init__(self, lists: dict[str, list[dict]], bodies: dict[str, object]) -> None:
        self.lists = lists
        self.bodies = bodies
        self.calls: list[str] = []

    def list_all(self, path: str, key: str, *, params=None) -> list[dict]:
        self.calls.append(path)
        return self.lists.get(path, [])

    def request(self, method: str, path: str, **kwargs) -> object:
        self.calls.append(path)
        if path not in self.bodies:
            raise NotFoundError(f"{method} {path}: not found")
        return self.bodies[path]


def file(fid: str, name: str, **settings) -> dict:
    return {"id": fid, "name": name, **settings}


def import_(iid: str, name: str, source: str) -> dict:
    return {"id": iid, "name": name, "importDataSourceId": source}


def metadata(*names: str, **source) -> dict:
    return {"importMetadata": {"type": "FILE", "source": {"headerNames": list(names), **source}}}


def catalog(files=(), imports=(), bodies=None) -> tuple[Catalog, CannedClient]:
    client = CannedClient(
        {f"{BASE}/files": list(files), f"{BASE}/imports": list(imports)}, bodies or {}
    )
    return Catalog(client, MODEL), client


def test_exact_file_name_beats_the_name_without_extension():
    files = [file("113000000001", "orders"), file("113000000002", "orders.csv")]
    chunks = {f"{BASE}/files/{f['id']}/chunks/0": b"A,B\n" for f in files}
    cat, _ = catalog(files, bodies=chunks)

    def file_id(stream: str, configured: str | None) -> str:
        return cat.data_source(stream, file=configured, imports=[], processes=[]).file_id

    assert file_id("x", "orders") == "113000000001"
    assert file_id("x", "orders.csv") == "113000000002"
    assert file_id("x", "ORDERS.CSV") == "113000000002"
    assert file_id("x", "113000000002") == "113000000002"
    assert file_id("orders", None) == "113000000001"


def test_a_name_matching_two_files_is_ambiguous_and_lists_them():
    cat, _ = catalog([file("113000000001", "orders.csv"), file("113000000002", "orders.txt")])
    with pytest.raises(NotFoundError, match="ambiguous") as caught:
        cat.data_source("orders", file=None, imports=[], processes=[])
    assert "'orders.csv' (113000000001), 'orders.txt' (113000000002)" in str(caught.value)


def test_layout_falls_back_to_the_file_settings():
    cat, _ = catalog(
        [file("113000000001", "o.txt", separator="\t", delimiter="", encoding="ISO-8859-1")],
        [import_("112000000001", "Load", "113000000001")],
        {f"{BASE}/imports/112000000001": metadata("A", "B", headerRow=1, firstDataRow=3)},
    )
    target = cat.data_source("o", file=None, imports=["Load"], processes=[])
    assert target.layout == DataSourceLayout(("A", "B"), "\t", "", "ISO-8859-1", 1, 3)


def test_imports_of_one_stream_must_agree_on_columns():
    cat, _ = catalog(
        [file("113000000001", "o.csv")],
        [
            import_("112000000001", "One", "113000000001"),
            import_("112000000002", "Two", "113000000001"),
        ],
        {
            f"{BASE}/imports/112000000001": metadata("A", "B"),
            f"{BASE}/imports/112000000002": metadata("A", "C"),
        },
    )
    with pytest.raises(AnaplanError, match=re.escape("'One' and 'Two' both read file 'o.csv'")):
        cat.data_source("o", file=None, imports=["One", "Two"], processes=[])


def test_header_is_read_from_the_file_content_in_its_encoding():
    content = '\ufeffTitle line\n"Code"\t"Name, full"\tPrice\n1\tx\t2\n'.encode("utf-16")
    cat, _ = catalog(
        [
            file(
                "113000000001",
                "o.txt",
                separator="\t",
                encoding="UTF-16",
                headerRow=2,
                firstDataRow=3,
            )
        ],
        bodies={f"{BASE}/files/113000000001/chunks/0": content},
    )
    layout = cat.data_source("o", file=None, imports=[], processes=[]).layout
    assert layout.header_names == ("Code", "Name, full", "Price")
    assert (layout.header_row, layout.first_data_row, layout.encoding) == (2, 3, "UTF-16")


def test_header_falls_back_to_the_whole_file_when_it_has_no_chunks():
    cat, _ = catalog(
        [file("113000000001", "o.csv")], bodies={f"{BASE}/files/113000000001": b"X,Y\n"}
    )
    layout = cat.data_source("o", file=None, imports=[], processes=[]).layout
    assert layout.header_names == ("X", "Y")


def test_no_import_and_no_content_asks_for_an_import():
    cat, _ = catalog([file("113000000001", "o.csv")])
    with pytest.raises(AnaplanError, match="Add an import that reads this file to `imports`"):
        cat.data_source("o", file=None, imports=[], processes=[])


def test_lists_are_fetched_once():
    cat, client = catalog(
        [file("113000000001", "o.csv")],
        [import_("112000000001", "L", "113000000001")],
        {f"{BASE}/imports/112000000001": metadata("A")},
    )
    for _ in range(3):
        cat.data_source("o", file=None, imports=["L"], processes=[])
    assert client.calls.count(f"{BASE}/files") == 1
    assert client.calls.count(f"{BASE}/imports") == 1
    assert client.calls.count(f"{BASE}/imports/112000000001") == 1
