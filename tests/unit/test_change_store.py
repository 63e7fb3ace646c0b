"""The change store opened read-only, as a dry run opens it: it reads what a real run
would find and never creates or writes anything."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from target_anaplan.change_store import ChangeStore
from target_anaplan.changes import ChangeStoreError


def test_a_missing_store_reads_as_empty_and_is_not_created(tmp_path):
    path = tmp_path / "store" / "changes.sqlite"
    store = ChangeStore(f"sqlite:///{path}", read_only=True)
    assert store.lookup("m/f", ["a"]) == {}
    assert store.count("m/f") == 0
    assert list(store.keys("m/f")) == []
    assert store.sources() == []
    store.close()
    assert not path.parent.exists()


def test_an_existing_store_is_read_but_not_written(tmp_path):
    path = tmp_path / "changes.sqlite"
    url = f"sqlite:///{path}"
    writer = ChangeStore(url)
    writer.record("m/f", [[("a", 1, None), ("b", 2, -3)]])
    writer.close()
    before = path.read_bytes()

    store = ChangeStore(url, read_only=True)
    assert store.lookup("m/f", ["a", "b", "c"]) == {"a": (1, None), "b": (2, -3)}
    assert store.count("m/f") == 2
    assert list(store.keys("m/f")) == [["a", "b"]]
    with pytest.raises(RuntimeError, match="read-only"):
        store.record("m/f", [[("c", 4, None)]])
    with pytest.raises(RuntimeError, match="read-only"):
        store.forget("m/f")
    store.close()
    assert path.read_bytes() == before


def test_a_store_of_another_kind_of_database_is_refused_naming_the_setting(tmp_path, monkeypatch):
    real = sa.create_engine

    def other_kind(url, **kwargs):
        engine = real(f"sqlite:///{tmp_path / 'x.sqlite'}")
        engine.dialect.name = "mysql"
        return engine

    monkeypatch.setattr(sa, "create_engine", other_kind)
    with pytest.raises(ChangeStoreError, match=r"is a mysql database;.*`change_store`"):
        ChangeStore("mysql://user@host/db")


def test_large_fingerprints_and_missing_raw_ones_round_trip(tmp_path):
    store = ChangeStore(f"sqlite:///{tmp_path / 'changes.sqlite'}")
    rows = [('["a"]', 2**63 - 1, None), ('["é, \\"b\\""]', 0, 2**62 + 12345)]
    store.record("m/f", [rows])
    assert store.lookup("m/f", ['["a"]', '["é, \\"b\\""]', '["c"]']) == {
        key: (fp, raw) for key, fp, raw in rows
    }
    store.close()
