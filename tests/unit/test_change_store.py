"""The change store opened read-only, as a dry run opens it: it reads what a real run
would find and never creates or writes anything."""

from __future__ import annotations

import pytest

from target_anaplan.changes import ChangeStore


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
