"""Rewrites the NaN and infinities that stores written before dqcl stored them as null still hold (the published
store's 84 redundancy runs' random-init baselines; diverged tuning runs' losses) as null, so that SQLite's own
JSON functions (json_extract, json_valid) and any strict JSON reader take every row. Only rows holding such a
number change, in one transaction per store; each row's content is otherwise the same (checked before writing),
and dqcl reads a run the same either way.

    python benchmarks/strict_json.py STORE [STORE ...]
"""

from __future__ import annotations

import json
import math
import sqlite3
import sys
from pathlib import Path


def _pairs(pairs: list[tuple[str, object]]) -> dict:
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):  # Python keeps the last of two equal keys, SQLite the first: refused, not guessed
        raise ValueError(f"the key {json.dumps(sorted(k for k in keys if keys.count(k) > 1)[0])} twice in one object")
    return dict(pairs)


def _only_nan_changed(old: object, new: object) -> bool:
    """Whether ``new`` is ``old`` with each NaN or infinity as None and nothing else changed: the same types (1 is
    not 1.0 nor True), the same keys in the same order, the same values."""
    if isinstance(old, float) and not math.isfinite(old):
        return new is None
    if type(old) is not type(new):
        return False
    if isinstance(old, dict):
        return list(old) == list(new) and all(_only_nan_changed(old[k], new[k]) for k in old)
    if isinstance(old, list):
        return len(old) == len(new) and all(_only_nan_changed(a, b) for a, b in zip(old, new))
    return old == new


def rewrite(path: Path) -> int:
    """The number of rows of ``path`` rewritten."""
    from dqcl.errors import DqclError
    from dqcl.results.store import Store, strict_json

    if not path.is_file():
        raise DqclError(f"{path}: not a file; give the path of a dqcl results store")
    with Store(path, readonly=True):  # refuses, without writing, a file that is not a dqcl store
        pass
    conn = sqlite3.connect(path, timeout=60, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")  # no other writer between the read and the rewrite: every row or none
        changed = []
        for key, config, result in conn.execute("SELECT key, config, result FROM runs"):
            texts = []
            for text in (config, result):
                try:
                    old = json.loads(text, object_pairs_hook=_pairs)
                    new = strict_json(old)
                    same = _only_nan_changed(old, json.loads(new, object_pairs_hook=_pairs))
                except RecursionError:
                    raise DqclError(f"{path}: run {json.dumps(key)} is nested too deeply; nothing rewritten") from None
                except (TypeError, ValueError) as err:
                    raise DqclError(f"{path}: run {json.dumps(key)} is not JSON dqcl wrote ({err}); nothing rewritten") from None
                if not same:
                    raise DqclError(f"{path}: run {json.dumps(key)} would change beyond its NaN; nothing rewritten")
                texts.append(new if new != json.dumps(old, sort_keys=True) else text)
            if texts != [config, result]:
                changed.append((*texts, key))
        done = sum(conn.execute("UPDATE runs SET config = ?, result = ? WHERE key = ?", row).rowcount for row in changed)
        if done != len(changed):
            raise DqclError(f"{path}: {len(changed) - done} run(s) to rewrite have no key to find them by; nothing rewritten")
        conn.execute("COMMIT")
        return done
    except BaseException as err:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        if isinstance(err, sqlite3.Error):
            raise DqclError(f"{path}: cannot rewrite ({err}); nothing rewritten") from None
        raise
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
