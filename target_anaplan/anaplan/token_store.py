"""Durable, single-writer storage for an OAuth refresh token.

A rotatable refresh token is single-use: if the newest one is lost, or two runs spend
the same one, every later run fails until a person re-authorizes. So the token lives
in a file that is replaced atomically (temp file, fsync, rename, fsync of the
directory), readable by its owner only, and guarded by an inter-process lock that
callers hold for the whole read-spend-persist sequence.

Default location: ``~/.target-anaplan/tokens/<client id>.json`` (the client id with
anything other than letters, digits, ``-``, ``_`` and ``.`` replaced by ``_``).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from target_anaplan.anaplan.errors import AuthenticationError

DEFAULT_DIR = Path("~/.target-anaplan/tokens")
_FORMAT_VERSION = 1


def seed_hash(refresh_token: str | None) -> str | None:
    """A one-way fingerprint of the configured token, so a new one can be recognised."""
    if not refresh_token:
        return None
    return hashlib.sha256(refresh_token.encode()).hexdigest()


@dataclass(frozen=True)
class StoredToken:
    """The newest refresh token and what is known about it.

    ``issued_at`` is when Anaplan issued it (epoch seconds, ``None`` if unknown);
    ``seed_sha256`` fingerprints the configured token the chain started from (``None``
    when it started from ``target-anaplan-admin login``); ``rotating`` says whether the
    client rotated its token on the last refresh (``None`` when not yet known).
    """

    refresh_token: str = field(repr=False)
    issued_at: float | None
    seed_sha256: str | None
    rotating: bool | None = None


class TokenStore:
    """One JSON file holding one client's refresh token, and a lock file beside it."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path).expanduser()
        self._lock_path = self.path.with_name(self.path.name + ".lock")

    def __repr__(self) -> str:
        return f"TokenStore({str(self.path)!r})"

    @classmethod
    def for_client(
        cls, client_id: str, directory: str | os.PathLike[str] = DEFAULT_DIR
    ) -> TokenStore:
        """The default store of an OAuth client id."""
        safe = re.sub(r"[^A-Za-z0-9._-]", "_", client_id).lstrip(".") or "client"
        return cls(Path(directory).expanduser() / f"{safe}.json")

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the store exclusively (across processes) until the block ends."""
        self._ensure_dir()
        try:
            fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as error:
            raise _unusable("lock", self._lock_path, error) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing the descriptor releases the lock

    def read(self) -> StoredToken | None:
        """The stored token, or ``None`` when the store is empty."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except OSError as error:
            raise _unusable("read", self.path, error) from None
        try:
            data = json.loads(text)
            return StoredToken(
                refresh_token=str(data["refresh_token"]),
                issued_at=data.get("issued_at"),
                seed_sha256=data.get("seed_sha256"),
                rotating=data.get("rotating"),
            )
        except (ValueError, KeyError, TypeError):
            raise AuthenticationError(
                f"The OAuth token store {self.path} is damaged. Delete it and re-authorize "
                "with `target-anaplan-admin login`, or set oauth_refresh_token in the config."
            ) from None

    def write(self, token: StoredToken, *, client_id: str) -> None:
        """Replace the stored token durably: after this returns, a crash cannot lose it."""
        self._ensure_dir()
        payload = {
            "version": _FORMAT_VERSION,
            "client_id": client_id,
            "refresh_token": token.refresh_token,
            "issued_at": token.issued_at,
            "seed_sha256": token.seed_sha256,
            "rotating": token.rotating,
        }
        try:
            self._replace(json.dumps(payload, indent=2).encode())
        except OSError as error:
            raise _unusable("write", self.path, error) from None

    def _replace(self, content: bytes) -> None:
        # mkstemp creates the file with mode 0600, so the token is never world-readable.
        fd, tmp = tempfile.mkstemp(
            dir=self.path.parent, prefix=f".{self.path.name}.", suffix=".tmp"
        )
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(content)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        dir_fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    def _ensure_dir(self) -> None:
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as error:
            raise _unusable("create the directory of", self.path.parent, error) from None


def _unusable(action: str, path: Path, error: OSError) -> AuthenticationError:
    return AuthenticationError(
        f"Cannot {action} the OAuth token store {path} ({error.strerror or error}). The store "
        "must be writable and persistent: fix its permissions or set oauth_token_store to "
        "such a path."
    )
