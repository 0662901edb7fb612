"""The results store: one SQLite file, one row per run, keyed by the run's config hash.

A run's result is written in a single transaction, so a store holds whole runs or nothing
of them; WAL mode lets several writers append to the same file. Configs and results are standard
JSON: a NaN or infinite number (a score not taken, a loss that diverged) is stored as null (stores
written before dqcl did so may hold NaN; dqcl reads both).
"""

from __future__ import annotations

import json
import math
import sqlite3
import time
from pathlib import Path
from typing import Any, Iterator

from ..core.validation import env_number
from ..errors import StoreError
from .shape import check_same_shapes, read_run

__all__ = ["Store", "SCHEMA_VERSION", "DEFAULT_STORE", "strict_json"]

DEFAULT_STORE = "results/dqcl.sqlite"  # where runs go unless --store says otherwise

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    key TEXT PRIMARY KEY,
    study TEXT NOT NULL,
    label TEXT NOT NULL,
    strategy TEXT NOT NULL,
    ordering TEXT NOT NULL,
    seed INTEGER NOT NULL,
    config TEXT NOT NULL,
    result TEXT NOT NULL,
    created REAL NOT NULL
);
"""


_HEADER = b"SQLite format 3\x00"


def _uri(path: Path, immutable: bool = False) -> str:
    from urllib.parse import quote

    return f"file:{quote(str(path.resolve()))}?mode=ro" + ("&immutable=1" if immutable else "")


def _finite(obj: Any) -> Any:
    """``obj`` with every NaN or infinite float as None."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def strict_json(obj: Any) -> str:
    """A config or result as the store keeps it: standard JSON, NaN and infinities as null (a score not taken,
    a loss that diverged), so SQLite's own JSON functions and any JSON reader take every row."""
    return json.dumps(_finite(obj), sort_keys=True, allow_nan=False)


class Store:
    """A dqcl results store. ``readonly`` opens it without writing a byte (a read-only mount works);
    a file that is not a dqcl store (another application's database, or not SQLite at all) is
    refused before anything is written to it."""

    def __init__(self, path: str | Path, readonly: bool = False) -> None:
        self.path = Path(path)
        timeout = env_number("DQCL_STORE_TIMEOUT", 30)
        if self.path.exists() and not self.path.is_file():  # first: a folder is not "no store here"
            raise StoreError(f"{self.path}: not a file; give --store a file path")
        if readonly and not self.path.is_file():
            raise StoreError(f"{self.path}: no results store here (run 'dqcl run benchmark' first)")
        fresh = not self.path.exists() or self.path.stat().st_size == 0
        try:
            if not fresh:
                self._check_ours(timeout)
            if readonly:
                self.conn = self._read_only(timeout)
            else:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self.conn = sqlite3.connect(self.path, timeout=timeout)
                self.conn.execute("PRAGMA journal_mode=WAL")  # several writers may append at once
                with self.conn:
                    self.conn.executescript(_SCHEMA)
                    self.conn.execute("INSERT OR IGNORE INTO meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),))
            row = self.conn.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
        except sqlite3.OperationalError as err:
            if "locked" in str(err):
                raise StoreError(f"{self.path}: the store is locked by another process (still busy after the timeout); try again when it is done") from None
            if "readonly" in str(err) or "read-only" in str(err):
                raise StoreError(f"{self.path}: the store is read-only; give a --store you can write to") from None
            raise StoreError(f"{self.path}: not a usable dqcl results store ({err})") from None
        except (sqlite3.DatabaseError, OSError) as err:
            raise StoreError(f"{self.path}: not a usable dqcl results store ({err})") from None
        self._check_schema(row)

    def _read_only(self, timeout: float) -> sqlite3.Connection:
        """Read without writing: plain read-only mode, or, where that needs a side file it cannot
        make (a WAL store on a read-only mount), the file as it is (immutable)."""
        try:
            conn = sqlite3.connect(_uri(self.path), uri=True, timeout=timeout)
            conn.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()
            return conn
        except sqlite3.OperationalError:
            return sqlite3.connect(_uri(self.path, immutable=True), uri=True, timeout=timeout)

    def _check_ours(self, timeout: float) -> None:
        """Refuse, without writing, a file that is not a dqcl store."""
        with open(self.path, "rb") as fh:
            if fh.read(16) != _HEADER:
                raise StoreError(f"{self.path}: not a usable dqcl results store (not an SQLite database); give --store a new file")
        conn = self._read_only(timeout)
        try:
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        finally:
            conn.close()
        if tables and not {"meta", "runs"} <= tables:
            raise StoreError(f"{self.path}: not a dqcl results store (an SQLite database with tables "
                             f"{', '.join(sorted(tables)[:5])}); dqcl writes nothing to it; give --store a new file")

    def _check_schema(self, row) -> None:
        found = row[0] if row else None
        try:
            version = int(found)
        except (TypeError, ValueError):
            raise StoreError(f"{self.path}: store schema field is {found!r}, not a number; not a usable dqcl results store") from None
        if version > SCHEMA_VERSION:
            raise StoreError(f"{self.path}: store schema {found} is newer than this dqcl understands ({SCHEMA_VERSION})")

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def has(self, key: str) -> bool:
        return self.conn.execute("SELECT 1 FROM runs WHERE key=?", (key,)).fetchone() is not None

    def put(self, key: str, config: dict[str, Any], result: dict[str, Any]) -> None:
        """Store one run whole (one transaction); a key already stored is left as it is."""
        row = (
            key,
            config["study"],
            config["strategy"]["label"],
            config["strategy"]["name"],
            json.dumps(list(config["ordering"])),
            int(config["seed"]),
            strict_json(config),
            strict_json(result),
            time.time(),
        )
        for attempt in range(4):
            try:
                with self.conn:
                    self.conn.execute("INSERT OR IGNORE INTO runs VALUES (?,?,?,?,?,?,?,?,?)", row)
                return
            except sqlite3.OperationalError as err:
                # another writer held the file past the 30 s busy timeout: wait and try again
                if "locked" not in str(err) or attempt == 3:
                    raise StoreError(f"{self.path}: cannot write result ({err})") from None
                time.sleep(2.0 * (attempt + 1))
            except sqlite3.DatabaseError as err:
                raise StoreError(f"{self.path}: cannot write result ({err})") from None

    def runs(self, study: str | None = None) -> Iterator[dict[str, Any]]:
        """Every stored run ``{"key", "config", "result", "created"}`` (``created``: when it was stored, seconds since the epoch), oldest first (of one study if given),
        each checked for shape (`dqcl.results.shape`): a row that is not JSON, nested too deeply or
        of the wrong shape refuses the whole read with a one-line `StoreError` naming the run."""
        q = "SELECT key, config, result, created FROM runs"
        args: tuple = ()
        if study:
            q += " WHERE study=?"
            args = (study,)
        try:
            rows = self.conn.execute(q + " ORDER BY created", args).fetchall()
        except sqlite3.DatabaseError as err:
            raise StoreError(f"{self.path}: cannot read results ({err})") from None
        runs = [{**read_run(key, config, result, self.path), "created": created if isinstance(created, (int, float)) else None}
                for key, config, result, created in rows]
        check_same_shapes(runs, self.path)
        yield from runs

    def __len__(self) -> int:
        return self.conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
