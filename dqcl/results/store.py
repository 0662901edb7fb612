"""The results store: one SQLite file, one row per run, keyed by the run's config hash.

A run's result is written in a single transaction, so a store holds whole runs or nothing
of them; WAL mode lets several writers append to the same file.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from pathlib import Path
from typing import Any, Iterator

from ..errors import StoreError

__all__ = ["Store", "SCHEMA_VERSION", "DEFAULT_STORE"]

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


class Store:
    def __init__(self, path: str | Path, readonly: bool = False) -> None:
        self.path = Path(path)
        if readonly and not self.path.is_file():
            raise StoreError(f"{self.path}: no results store here (run 'dqcl run benchmark' first)")
        try:
            if not readonly:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            self.conn = sqlite3.connect(self.path, timeout=float(os.environ.get("DQCL_STORE_TIMEOUT", "30")))
            self.conn.execute("PRAGMA journal_mode=WAL")
            if not readonly:
                with self.conn:
                    self.conn.executescript(_SCHEMA)
                    self.conn.execute(
                        "INSERT OR IGNORE INTO meta VALUES ('schema', ?)", (str(SCHEMA_VERSION),)
                    )
            row = self.conn.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
        except sqlite3.OperationalError as err:
            if "locked" in str(err):
                raise StoreError(f"{self.path}: the store is locked by another process (still busy after the timeout); try again when it is done") from None
            if "readonly" in str(err) or "read-only" in str(err):
                raise StoreError(f"{self.path}: the store is read-only; give a --store you can write to") from None
            raise StoreError(f"{self.path}: not a usable dqcl results store ({err})") from None
        except (sqlite3.DatabaseError, OSError) as err:
            raise StoreError(f"{self.path}: not a usable dqcl results store ({err})") from None
        if row is None or int(row[0]) > SCHEMA_VERSION:
            found = row[0] if row else "none"
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
            json.dumps(config, sort_keys=True),
            json.dumps(result, sort_keys=True),
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
        q = "SELECT key, config, result FROM runs"
        args: tuple = ()
        if study:
            q += " WHERE study=?"
            args = (study,)
        try:
            rows = self.conn.execute(q + " ORDER BY created", args).fetchall()
        except sqlite3.DatabaseError as err:
            raise StoreError(f"{self.path}: cannot read results ({err})") from None
        for key, config, result in rows:
            yield {"key": key, "config": json.loads(config), "result": json.loads(result)}

    def __len__(self) -> int:
        return self.conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
