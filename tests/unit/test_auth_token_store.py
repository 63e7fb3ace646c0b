"""Token store: durable atomic replacement, owner-only files, and a cross-process lock."""

from __future__ import annotations

import fcntl
import multiprocessing
import os
import stat
from pathlib import Path

import pytest

from target_anaplan.anaplan.errors import AuthenticationError
from target_anaplan.anaplan.token_store import StoredToken, TokenStore, seed_hash


def _token(value: str = "refresh-1") -> StoredToken:
    return StoredToken(
        value, issued_at=1_700_000_000.0, seed_sha256=seed_hash("seed"), rotating=True
    )


def test_round_trip_creates_owner_only_dir_and_file(tmp_path):
    store = TokenStore(tmp_path / "new" / "dir" / "client.json")
    assert store.read() is None

    store.write(_token(), client_id="client")

    assert store.read() == _token()
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(store.path.parent.stat().st_mode) == 0o700


def test_replace_leaves_no_temp_file_and_keeps_old_token_when_rename_fails(tmp_path, monkeypatch):
    store = TokenStore(tmp_path / "client.json")
    store.write(_token("old"), client_id="client")

    def fail(*_args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(AuthenticationError, match="Cannot write the OAuth token store"):
        store.write(_token("new"), client_id="client")

    assert store.read().refresh_token == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["client.json"]


def test_damaged_store_names_the_file_and_the_fix(tmp_path):
    store = TokenStore(tmp_path / "client.json")
    store.path.write_text("{not json", encoding="utf-8")
    with pytest.raises(AuthenticationError, match="damaged") as caught:
        store.read()
    assert str(store.path) in str(caught.value)
    assert "target-anaplan-admin login" in str(caught.value)


def test_default_location_is_per_sanitised_client_id(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    store = TokenStore.for_client("../my client/id")
    assert store.path == tmp_path / ".target-anaplan" / "tokens" / "_my_client_id.json"


def test_repr_shows_the_path_only(tmp_path):
    assert repr(_token("very-secret-refresh")).count("very-secret-refresh") == 0
    assert repr(TokenStore(tmp_path / "x.json")) == f"TokenStore({str(tmp_path / 'x.json')!r})"


def _hold_lock(path: str, locked: multiprocessing.synchronize.Event, release: object) -> None:
    with TokenStore(path).locked():
        locked.set()
        release.wait()


def test_lock_excludes_another_process_until_released(tmp_path):
    store = TokenStore(tmp_path / "client.json")
    context = multiprocessing.get_context("spawn")
    locked, release = context.Event(), context.Event()
    child = context.Process(target=_hold_lock, args=(str(store.path), locked, release))
    child.start()
    try:
        assert locked.wait(30)
        fd = os.open(Path(str(store.path) + ".lock"), os.O_RDWR)
        try:
            with pytest.raises(BlockingIOError):
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        finally:
            os.close(fd)
    finally:
        release.set()
        child.join(30)
    assert child.exitcode == 0
    with store.locked():  # free again once the holder is gone
        store.write(_token(), client_id="client")
