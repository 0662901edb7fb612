"""The store writes standard JSON (NaN and infinities as null), and benchmarks/strict_json.py rewrites the NaN an
older store holds: SQLite's json_extract and any strict reader take every row, and dqcl reads each run the same."""

import importlib.util
import json
import math
import sqlite3
from pathlib import Path

import pytest

from dqcl.results.entries import entries
from dqcl.results.store import Store

ROOT = Path(__file__).resolve().parents[1]
PUBLISHED = ROOT / "leaderboard" / "runs.sqlite"
_spec = importlib.util.spec_from_file_location("strict_json", ROOT / "benchmarks" / "strict_json.py")
strict_json = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(strict_json)


def _published_run(study: str) -> tuple[str, dict, dict]:
    with sqlite3.connect(f"file:{PUBLISHED}?mode=ro&immutable=1", uri=True) as c:
        key, config, result = c.execute("SELECT key, config, result FROM runs WHERE study = ? LIMIT 1", (study,)).fetchone()
    return key, json.loads(config), json.loads(result)


def _diverged(result: dict) -> dict:
    result["baseline"]["ap50"][0] = math.nan  # a score not taken
    result["curve"][1]["loss"] = math.inf  # training diverged in the first experience's second epoch
    return result


def _same(a: list[dict], b: list[dict]) -> bool:
    return json.dumps(a, sort_keys=True, default=str) == json.dumps(b, sort_keys=True, default=str)


@pytest.mark.skipif(not PUBLISHED.is_file(), reason="no published store in this checkout")
def test_a_nan_is_stored_as_null_and_read_as_before(tmp_path):
    key, config, result = _published_run("budget_tuned")
    with Store(tmp_path / "s.sqlite") as store:
        store.put(key, config, _diverged(result))
        rows = entries(store)
    with sqlite3.connect(tmp_path / "s.sqlite") as c:
        assert c.execute("SELECT json_valid(config) AND json_valid(result) FROM runs").fetchone() == (1,)
        assert c.execute("SELECT json_extract(result, '$.baseline.ap50[0]') IS NULL FROM runs").fetchone() == (1,)
    (ap50,) = [e for e in rows if e["metric"] == "ap50"]
    assert ap50["baseline"][0] is None and ap50["diverged"] == result["curve"][1]["experience"]


@pytest.mark.skipif(not PUBLISHED.is_file(), reason="no published store in this checkout")
def test_an_older_stores_nan_is_rewritten_as_null_and_nothing_else_changes(tmp_path, capsys):
    path = tmp_path / "old.sqlite"
    with Store(path) as store:
        for study in ("budget_tuned", "budget_baselines"):
            key, config, result = _published_run(study)
            store.put(key, config, result)
    nan_key, config, result = _published_run("budget_tuned")
    with sqlite3.connect(path) as c:  # as dqcl wrote it before: Python's NaN and Infinity tokens
        c.execute("UPDATE runs SET result = ? WHERE key = ?", (json.dumps(_diverged(result), sort_keys=True), nan_key))
        assert c.execute("SELECT COUNT(*) FROM runs WHERE result LIKE '%NaN%'").fetchone() == (1,)
        clean = dict(c.execute("SELECT key, result FROM runs WHERE key != ?", (nan_key,)).fetchall())
    with Store(path, readonly=True) as store:
        before = entries(store)
    assert strict_json.main([str(path)]) == 0
    assert capsys.readouterr().out.strip() == f"{path}: 1 run(s) rewritten"
    with sqlite3.connect(path) as c:
        assert c.execute("SELECT MIN(json_valid(config) AND json_valid(result)) FROM runs").fetchone() == (1,)
        assert dict(c.execute("SELECT key, result FROM runs WHERE key != ?", (nan_key,)).fetchall()) == clean  # untouched
    with Store(path, readonly=True) as store:
        assert _same(entries(store), before)
    assert strict_json.main([str(path)]) == 0 and capsys.readouterr().out.strip() == f"{path}: 0 run(s) rewritten"


def test_a_file_that_is_not_a_store_is_refused_in_one_line_and_left_as_it_was(tmp_path, capsys):
    other = tmp_path / "notes.sqlite"
    with sqlite3.connect(other) as c:
        c.execute("CREATE TABLE notes (x TEXT)")
    before = other.read_bytes()
    assert strict_json.main([str(other)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "notes.sqlite" in err and "not a dqcl results store" in err, err
    assert other.read_bytes() == before


def test_a_row_that_would_change_beyond_its_nan_is_refused_and_nothing_is_rewritten(tmp_path, capsys):
    path = tmp_path / "dup.sqlite"
    with Store(path) as store:
        store.put("a", {"study": "s", "strategy": {"label": "n", "name": "naive"}, "ordering": ["x"], "seed": 0}, {"x": 1})
        store.put("b", {"study": "s", "strategy": {"label": "n", "name": "naive"}, "ordering": ["x"], "seed": 1}, {"x": 2})
    with sqlite3.connect(path) as c:
        c.execute("UPDATE runs SET result = ? WHERE key = 'a'", ('{"x": NaN}',))
        c.execute("UPDATE runs SET result = ? WHERE key = 'b'", ('{"x": 1, "x": 2}',))  # SQLite reads 1, Python 2
    before = path.read_bytes()
    assert strict_json.main([str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and 'run "b"' in err and "twice in one object" in err and "nothing rewritten" in err, err
    with sqlite3.connect(path) as c:
        assert c.execute("SELECT result FROM runs WHERE key = 'a'").fetchone() == ('{"x": NaN}',)  # not half-done
    assert strict_json._only_nan_changed({"a": [1, float("nan")]}, {"a": [1, None]})
    assert not strict_json._only_nan_changed({"a": 1}, {"a": 1.0}) and not strict_json._only_nan_changed({"a": 1}, {"a": True})
    del before


@pytest.mark.parametrize("name", ["runs.sqlite", "tuning/runs.sqlite", "steps_converge.sqlite"])
def test_every_published_row_is_standard_json(name):
    path = ROOT / "leaderboard" / name
    if not path.is_file():
        pytest.skip(f"no {name} in this checkout")
    with sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True) as c:
        bad = [k for (k,) in c.execute("SELECT key FROM runs WHERE NOT (json_valid(config) AND json_valid(result))")]
    assert not bad, f"{len(bad)} run(s) of leaderboard/{name} are not standard JSON: python benchmarks/strict_json.py fixes them"
