"""Rewrites the NaN and infinities that stores written before dqcl stored them as null still hold (the published
store's 84 redundancy runs' random-init baselines; diverged tuning runs' losses) as null, so that SQLite's own
JSON functions (json_extract, json_valid) and any strict JSON reader take every row. Only rows holding such a
number change, in one transaction per store; each row's content is otherwise the same (checked before writing),
and dqcl reads a run the same either way.

    python benchmarks/strict_json.py STORE [STORE ...]
"""

from __future__ import annotations

import json
import sqlite3
import sys
from pathlib import Path


def rewrite(path: Path) -> int:
    """The number of rows of ``path`` rewritten."""
    from dqcl.errors import DqclError
    from dqcl.results.store import Store, _finite, strict_json

    with Store(path, readonly=True):  # refuses, without writing, a file that is not a dqcl store
        pass
    conn = sqlite3.connect(path, timeout=60)
    try:
        changed = []
        for key, config, result in conn.execute("SELECT key, config, result FROM runs"):
            texts = []
            for text in (config, result):
                try:
                    old = json.loads(text)
                except ValueError as err:
                    raise DqclError(f"{path}: run {json.dumps(key)} is not JSON ({err}); nothing rewritten") from None
                new = strict_json(old)
                if json.loads(new) != _finite(old):
                    raise DqclError(f"{path}: run {json.dumps(key)} would change beyond its NaN; nothing rewritten")
                texts.append(new if new != json.dumps(old, sort_keys=True) else text)
            if texts != [config, result]:
                changed.append((*texts, key))
        with conn:  # one transaction: every row or none
            conn.executemany("UPDATE runs SET config = ?, result = ? WHERE key = ?", changed)
        return len(changed)
    except sqlite3.Error as err:
        raise DqclError(f"{path}: cannot rewrite ({err}); nothing rewritten") from None
    finally:
        conn.close()


def _main(argv: list[str] | None) -> None:
    from dqcl.core.scripts import ArgumentParser

    ap = ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("stores", nargs="+", type=Path)
    args = ap.parse_args(argv)
    for path in args.stores:
        print(f"{path}: {rewrite(path)} run(s) rewritten")


def main(argv: list[str] | None = None) -> int:
    from dqcl.core.scripts import run_script

    return run_script(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
