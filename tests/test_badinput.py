"""Every case of the bad-input corpus (tests/badinput/corpus.py): one line naming the file or key
and the problem, exit code 2, no traceback, and the results store exactly as it was."""

import shutil
import sqlite3

import pytest

from dqcl.cli import main

from badinput.corpus import CASES, good_folder, spec_for

assert len(CASES) >= 20


@pytest.fixture(scope="module")
def reference_store(tmp_path_factory):
    """A store holding one finished run, copied into every case."""
    root = tmp_path_factory.mktemp("ref")
    good_folder(root)
    store = root / "store.sqlite"
    assert main(["run", "benchmark", str(spec_for(root)), "--store", str(store), "--quiet"]) == 0
    with sqlite3.connect(store) as c:
        c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return store


def _rows(store):
    with sqlite3.connect(f"file:{store}?mode=ro", uri=True) as c:
        return c.execute("SELECT key, config, result FROM runs ORDER BY key").fetchall()


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_gets_one_line_and_exit_2_and_the_store_is_untouched(name, tmp_path, reference_store, capsys, monkeypatch):
    monkeypatch.setenv("DQCL_STORE_TIMEOUT", "1")
    case = CASES[name](tmp_path)
    store = tmp_path / "store.sqlite"
    kind = case.extra.get("store")
    if kind == "corrupted":
        store.write_bytes(b"SQLite format 3\x00" + bytes(range(256)) * 8)
    elif kind == "foreign":
        with sqlite3.connect(store) as c:  # another application's database, in its default journal mode
            c.execute("CREATE TABLE users (name TEXT)")
            c.execute("INSERT INTO users VALUES ('ada')")
        c.close()
    else:
        shutil.copy(reference_store, store)
        if kind in ("bad_json", "bad_schema", "sql"):
            with sqlite3.connect(store) as c:
                if kind == "sql":
                    c.execute(case.extra["sql"])
                elif kind == "bad_json":
                    c.execute("UPDATE runs SET result = substr(result, 1, 40)")
                else:
                    c.execute("UPDATE meta SET value = 'one' WHERE key = 'schema'")
            c.close()
    before = store.read_bytes()
    rows = None if kind in ("corrupted", "foreign") else _rows(store)
    if case.patch:
        case.patch(monkeypatch)
    holder = None
    if kind == "locked":
        holder = sqlite3.connect(store, isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")
    try:
        capsys.readouterr()
        code = main(case.argv)
    finally:
        if holder is not None:
            holder.execute("ROLLBACK")
            holder.close()
        monkeypatch.undo()  # the read-only case patches sqlite3 itself
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert len(err.splitlines()) == 1, err
    assert err.startswith("dqcl: error: ") and "Traceback" not in err
    for needle in case.says:
        assert needle in err, f"{needle!r} not in: {err}"
    if kind in ("corrupted", "foreign"):
        assert store.read_bytes() == before  # not a byte written, not even a journal-mode switch
        assert not store.with_name(store.name + "-wal").exists()
    else:
        assert _rows(store) == rows


SKIPPABLE = [n for n in CASES if n in ("truncated_png", "float_mask", "all_background_mask", "huge_image")]


@pytest.mark.parametrize("name", SKIPPABLE)
def test_skip_bad_leaves_the_bad_pair_out_and_reports_it(name, tmp_path, capsys):
    case = CASES[name](tmp_path)
    assert case.skippable
    capsys.readouterr()
    assert main(case.argv + ["--skip-bad"]) == 0
    err = capsys.readouterr().err
    assert "skipped:" in err and case.says[0] in err
    with sqlite3.connect(tmp_path / "store.sqlite") as c:
        assert c.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 1


@pytest.mark.parametrize("name", [n for n in CASES if getattr(CASES[n], "data_case", False)])
def test_register_refuses_or_skips_the_same_bad_files(name, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("DQCL_HOME", str(tmp_path / "home"))
    case = CASES[name](tmp_path)
    if case.patch:
        case.patch(monkeypatch)
    capsys.readouterr()
    assert main(["data", "register", "mine", str(tmp_path / "data")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and case.says[0] in err and case.says[1] in err
    assert not (tmp_path / "data" / "dqcl_manifest.json").exists()
    if case.skippable:
        assert main(["data", "register", "mine", str(tmp_path / "data"), "--skip-bad"]) == 0
        import json

        m = json.loads((tmp_path / "data" / "dqcl_manifest.json").read_text())
        assert len(m["skipped"]) == 1 and case.says[0] in m["skipped"][0]
        assert m["stats"]["train"]["pairs"] == 1
