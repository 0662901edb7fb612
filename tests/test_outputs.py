"""No output over an input, anywhere (issue 25, point 4): every command and script that writes a file
or folder the user named refuses, in one line naming the path, to write it inside a folder it reads,
over one of its inputs, or over an existing file dqcl did not write, and leaves that file byte for
byte as it was; its own earlier output it rewrites. The scripts in benchmarks/ check every input
before they write anything."""

import importlib.util
import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from conftest import small_domain_arrays, tiny_spec_text, write_pair
from dqcl.cli import main

ROOT = Path(__file__).resolve().parents[1]
USERS = b"\x89PNG\r\n\x1a\n the user's own picture, not drawn by dqcl"


def _script(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _refused(capsys, *says: str) -> str:
    """The one error line, which must name every one of ``says``."""
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("dqcl: error: "), err
    assert "Traceback" not in err[0] and all(s in err[0] for s in says), err[0]
    return err[0]


@pytest.fixture
def fold(tmp_path) -> Path:
    """A folder domain: three training pairs, one test pair, as TIFFs."""
    imgs, masks = small_domain_arrays(4, 96)
    for i in range(3):
        write_pair(tmp_path / "fold" / "train", f"a{i}", imgs[i], masks[i], ext=".tif")
    write_pair(tmp_path / "fold" / "test", "t0", imgs[3], masks[3], ext=".tif")
    return tmp_path / "fold"


def _snapshot(*roots: Path) -> dict[Path, bytes]:
    files = [p for r in roots for p in ([r] if r.is_file() else sorted(r.rglob("*"))) if p.is_file()]
    return {p: p.read_bytes() for p in files}


# ---- dqcl domains gallery / diversity --out -----------------------------------------------------


@pytest.mark.parametrize("command", ["gallery", "diversity"])
def test_a_picture_is_never_written_into_the_domain_folder_nor_over_a_users_file(command, fold, tmp_path, capsys):
    mine = tmp_path / "holiday.png"
    mine.write_bytes(USERS)
    link = tmp_path / "link.png"
    link.symlink_to(fold / "train" / "a1_img.tif")  # a link to an image of the folder is that image
    before = _snapshot(fold, mine)
    extra = ["--method", "pca"] if command == "diversity" else ["-n", "2"]
    for out, says in ((fold / "train" / "a0_img.tif", "inside the domain folder"),  # the case: a training image
                      (fold / "train" / "new.png", "inside the domain folder"),
                      (link, "inside the domain folder"),
                      (mine, "not a PNG figure dqcl drew")):
        assert main(["domains", command, "folder", "--path", str(fold), "--out", str(out), *extra]) == 2
        _refused(capsys, str(out), says)
    assert _snapshot(fold, mine) == before and link.is_symlink()
    assert not (fold / "train" / "new.png").exists()


def test_a_picture_rewrites_its_own_earlier_picture(fold, tmp_path, capsys):
    out = tmp_path / "pics" / "g.png"
    for _ in range(2):  # the second run replaces the first's PNG
        assert main(["domains", "gallery", "folder", "--path", str(fold), "--out", str(out), "-n", "2"]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    out = tmp_path / "d.png"
    for _ in range(2):
        assert main(["domains", "diversity", "folder", "--path", str(fold), "--out", str(out), "--method", "pca", "--bins", "2"]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_diversity_scores_the_folder_domain_it_was_asked_for(fold, capsys):
    assert main(["domains", "diversity", "folder", "histo", "--path", str(fold), "--n-train", "2"]) == 0
    scored = {line.split()[0] for line in capsys.readouterr().out.splitlines()}
    assert scored == {"folder", "histo"}  # was: histo alone, the folder silently dropped
    assert main(["domains", "diversity", "folder", "histo"]) == 2
    _refused(capsys, "folder", "--path")


@pytest.mark.parametrize("argv, says", [
    (["domains", "diversity", "cyto", "--diameter", "nan"], "--diameter"),
    (["domains", "diversity", "cyto", "--diameter", "inf"], "--diameter"),
    (["domains", "diversity", "cyto", "--rate", "nan", "--out", "x.png"], "--rate"),
    (["domains", "diversity", "cyto", "--rate", "0", "--out", "x.png"], "--rate"),
    (["select", "f.npy", "--rate", "nan", "--out", "o.npy"], "--rate"),
    (["run", "benchmark", "--num-gpus", "nan", "--dry-run"], "--num-gpus"),
])
def test_a_float_option_refuses_nan_and_infinity_in_one_line(argv, says, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    _refused(capsys, says)
    assert list(tmp_path.iterdir()) == []


# ---- dqcl select --out / --copy-to --------------------------------------------------------------


def test_select_of_a_feature_file_refuses_the_file_and_a_users_array_and_rewrites_its_own(tmp_path, capsys):
    feats = tmp_path / "f.npy"
    np.save(feats, np.random.default_rng(0).standard_normal((20, 4)))
    theirs = tmp_path / "embeddings.npy"
    np.save(theirs, np.ones((5, 3)))
    notes = tmp_path / "notes.npy"
    notes.write_bytes(b"not an array at all")
    before = _snapshot(feats, theirs, notes)
    args = ["select", str(feats), "--rate", "0.5", "--bins", "2", "--out"]
    assert main([*args, str(feats)]) == 2
    _refused(capsys, str(feats), "the file selected from")
    for out in (theirs, notes):
        assert main([*args, str(out)]) == 2
        _refused(capsys, str(out), "not row indices dqcl select wrote")
    assert _snapshot(feats, theirs, notes) == before
    out = tmp_path / "idx.npy"
    assert main([*args, str(out)]) == 0 and main([*args, str(out), "--seed", "1"]) == 0
    assert np.load(out).dtype == np.int64


def test_select_of_a_folder_refuses_outputs_in_it_and_over_a_users_file(fold, tmp_path, capsys):
    source = fold / "train"
    mine = tmp_path / "todo.txt"
    mine.write_text("buy milk\nread the paper / take notes\n")
    before = _snapshot(fold, mine)
    args = ["select", str(source), "--rate", "0.5", "--bins", "1"]
    for option, out, says in (("--out", source / "a1_masks.tif", "a file selected from"),
                              ("--out", source / "names.txt", "inside the folder selected from"),
                              ("--out", mine, "not a list of file names"),
                              ("--copy-to", source, "over the folder selected from"),
                              ("--copy-to", source / "subset", "inside the folder selected from")):
        assert main([*args, option, str(out)]) == 2
        _refused(capsys, str(out), says)
    assert _snapshot(fold, mine) == before and not (source / "subset").exists()
    names = tmp_path / "names.txt"
    assert main([*args, "--out", str(names)]) == 0 and main([*args, "--out", str(names), "--seed", "2"]) == 0
    assert all(line.endswith("_img.tif") for line in names.read_text().splitlines())


# ---- dqcl leaderboard build --out ----------------------------------------------------------------


def _store_with_runs(path: Path) -> Path:
    from dqcl.evaluation.metrics import METRICS
    from dqcl.results.store import Store

    with Store(path) as store:
        for seed in (0, 1):
            cfg = {"study": "s", "strategy": {"label": "naive", "name": "naive", "params": {}}, "ordering": ["cyto", "histo"], "seed": seed}
            res = {"R": {m: [[0.8, 0.1], [0.2 + 0.01 * seed, 0.7]] for m in METRICS}, "baseline": {m: [0.0, 0.0] for m in METRICS},
                   "timings": {"train_s": [1.0], "eval_s": [1.0], "total_s": 2.0}, "images_seen": 10, "device": "cpu"}
            store.put(f"naive-{seed}", cfg, res)
    return path


@pytest.mark.parametrize("name", ["index.html", "leaderboard.md", "leaderboard.json", "summary_ap50.png", "s_cyto-histo_R_ap50.png"])
def test_a_leaderboard_never_replaces_a_users_file_in_its_folder(name, tmp_path, capsys):
    store = _store_with_runs(tmp_path / "r.sqlite")
    out = tmp_path / "site"
    out.mkdir()
    (out / name).write_bytes(USERS)
    assert main(["leaderboard", "build", "--store", str(store), "--out", str(out)]) == 2
    _refused(capsys, str(out / name), "dqcl")
    assert [p.name for p in out.iterdir()] == [name] and (out / name).read_bytes() == USERS  # nothing else written either


def test_a_leaderboard_rebuilds_over_its_own_files_and_beside_its_store(tmp_path, capsys):
    out = tmp_path / "lb"
    store = _store_with_runs(out / "runs.sqlite")  # the published layout: the store inside the leaderboard folder
    for _ in range(2):
        assert main(["leaderboard", "build", "--store", str(store), "--out", str(out)]) == 0
    assert (out / "index.html").is_file() and (out / "summary_ap50.png").is_file()
    with sqlite3.connect(f"file:{store}?mode=ro", uri=True) as c:
        assert c.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 2


def test_a_leaderboard_is_not_written_over_its_store(tmp_path, capsys):
    store = _store_with_runs(tmp_path / "leaderboard.md")
    before = store.read_bytes()
    assert main(["leaderboard", "build", "--store", str(store), "--out", str(tmp_path)]) == 2
    _refused(capsys, "leaderboard.md", "over the results store")
    assert store.read_bytes() == before


# ---- dqcl run --store -----------------------------------------------------------------------------


def test_a_store_is_never_made_inside_a_folder_domain_nor_over_the_spec(fold, tmp_path, capsys):
    text = tiny_spec_text(tmp_path).replace('orderings = [["cyto", "histo"]]', 'orderings = [["mine", "histo"]]')
    text = text.replace("[domains.cyto]\nn_train = 2\nn_test = 1\nsize = 96", f'[domains.mine]\nkind = "folder"\npath = "{fold.as_posix()}"')
    spec = tmp_path / "s.toml"
    spec.write_text(text)
    before = _snapshot(fold, spec)
    for store, says in ((fold / "runs.sqlite", "inside the folder of a folder domain"), (spec, "over the spec")):
        assert main(["run", "benchmark", str(spec), "--store", str(store), "--dry-run"]) == 2
        _refused(capsys, str(store), says)
    assert _snapshot(fold, spec) == before and not (fold / "runs.sqlite").exists() and not (fold / "checkpoints").exists()
    assert main(["run", "benchmark", str(spec), "--store", str(tmp_path / "r.sqlite"), "--dry-run"]) == 0


# ---- benchmarks/realism.py ------------------------------------------------------------------------


@pytest.fixture
def realism(tmp_path, monkeypatch):
    module = _script("realism")
    monkeypatch.setattr(module, "DATA", tmp_path / "data" / "dsb2018_stardist")  # where it would write the real image
    return module


def test_realism_checks_its_store_figure_and_arguments_before_writing_anything(realism, tmp_path, capsys):
    bad = tmp_path / "bad.sqlite"
    bad.write_text("not a store")
    broken = tmp_path / "broken.sqlite"
    with sqlite3.connect(broken) as c:  # a dqcl store whose realism run is cut short
        c.executescript("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL); INSERT INTO meta VALUES ('schema', '1');"
                        "CREATE TABLE runs (key TEXT PRIMARY KEY, study TEXT NOT NULL, label TEXT NOT NULL, strategy TEXT NOT NULL,"
                        " ordering TEXT NOT NULL, seed INTEGER NOT NULL, config TEXT NOT NULL, result TEXT NOT NULL, created REAL NOT NULL);"
                        "INSERT INTO runs VALUES ('k', 'realism', 'naive', 'naive', '[]', 0, '{\"study\": \"realism\"', '{', 0);")
    c.close()
    mine = tmp_path / "photo.png"
    mine.write_bytes(USERS)
    good = tmp_path / "r.sqlite"
    before = _snapshot(bad, broken, mine)
    for argv, says in (
        (["--store", str(bad), "--figure", str(tmp_path / "f.png")], [str(bad), "not an SQLite database"]),
        (["--store", str(broken), "--figure", str(tmp_path / "f.png")], [str(broken)]),
        (["--store", str(good), "--figure", str(mine)], [str(mine), "not a PNG figure dqcl drew"]),
        (["--store", str(good), "--figure", str(good)], [str(good), "over the results store"]),
        (["--store", str(realism.SPEC), "--figure", str(tmp_path / "f.png")], [str(realism.SPEC), "over the realism spec"]),
        (["--store", str(realism.DATA / "train" / "r.sqlite")], ["r.sqlite", "inside the real-image folder"]),
        (["--store", str(good), "--workers", "0"], ["--workers", "got 0"]),
        (["--store", str(good), "--workers", "two"], ["--workers", "invalid int value"]),
        (["--stor", str(good)], ["unrecognized arguments"]),
    ):
        assert realism.main(argv) == 2
        _refused(capsys, *says)
    assert _snapshot(bad, broken, mine) == before
    assert not realism.DATA.parent.exists() and not good.exists() and not (tmp_path / "f.png").exists()


def test_realism_goes_on_past_its_checks_with_its_own_store_and_figure(realism, tmp_path, monkeypatch):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    import dqcl.data.sources.packaged as packaged
    from dqcl.core.atomic import save_figure
    from dqcl.results.store import Store

    with Store(tmp_path / "r.sqlite"):
        pass
    save_figure(plt.figure(), tmp_path / "f.png")  # the figure an earlier run drew

    class Reached(Exception):
        pass

    def stop(dest):
        raise Reached(dest)

    monkeypatch.setattr(packaged, "write_dsb_halves", stop)
    with pytest.raises(Reached):
        realism.main(["--store", str(tmp_path / "r.sqlite"), "--figure", str(tmp_path / "f.png")])


# ---- benchmarks/subset_content.py and steps_check.py ----------------------------------------------


def test_subset_content_refuses_a_bad_store_in_one_line(tmp_path, capsys):
    from dqcl.config.expand import expand
    from dqcl.config.parse import load_spec
    from dqcl.results.store import Store

    script = _script("subset_content")
    spec = ROOT / "benchmarks" / "redundancy.toml"
    text = tmp_path / "notes.sqlite"
    text.write_text("my notes")
    assert script.main(["--spec", str(spec), "--store", str(text)]) == 2
    _refused(capsys, str(text), "not an SQLite database")
    assert script.main(["--spec", str(spec), "--store", str(tmp_path / "none.sqlite")]) == 2
    _refused(capsys, "none.sqlite", "no results store here")
    assert script.main(["--spek", str(spec)]) == 2
    _refused(capsys, "unrecognized arguments")
    # a run of the spec whose kept indices are not a list of patch numbers: refused before any patch is built
    cfg = next(c for c in expand(load_spec(spec)) if c.subset is not None)
    with sqlite3.connect(f"file:{ROOT / 'leaderboard' / 'runs.sqlite'}?mode=ro", uri=True) as c:
        result = json.loads(c.execute("SELECT result FROM runs WHERE study = 'redundancy' LIMIT 1").fetchone()[0])
    result["subset"]["indices"] = ["a", "b"]
    with Store(tmp_path / "r.sqlite") as store:
        store.put(cfg.key, cfg.to_dict(), result)
    assert script.main(["--spec", str(spec), "--store", str(tmp_path / "r.sqlite")]) == 2
    _refused(capsys, str(tmp_path / "r.sqlite"), cfg.key, "kept patch indices")


def test_steps_check_refuses_bad_arguments_and_stores_in_one_line(tmp_path, capsys):
    script = _script("steps_check")
    assert script.main(["--publish", "x"]) == 2
    _refused(capsys, "unrecognized arguments")
    assert script.main(["--published", str(tmp_path / "none.sqlite")]) == 2
    _refused(capsys, "none.sqlite", "no results store here")


# ---- the guard itself -------------------------------------------------------------------------------


@pytest.mark.parametrize("make, says", [
    (lambda p: p.write_bytes(b""), "not a PNG figure dqcl drew"),  # an empty placeholder is still the user's
    (lambda p: __import__("os").mkfifo(p), "not a regular file"),  # never opened: it would wait for a writer
    (lambda p: p.symlink_to(p.parent / "gone"), "broken symbolic link"),
    (lambda p: p.mkdir(), "is a folder"),
])
def test_the_guard_refuses_what_is_not_an_earlier_output_of_its_kind(make, says, tmp_path):
    from dqcl.core.outputs import FIGURE, check_output
    from dqcl.errors import OutputError

    out = tmp_path / "f.png"
    make(out)
    with pytest.raises(OutputError) as got:
        check_output(out, FIGURE)
    assert str(out) in str(got.value) and says in str(got.value)


# ---- an output under a file ------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["run", "tune", "leaderboard", "gallery", "select"])
def test_an_output_under_a_file_is_refused_before_any_work(command, fold, tmp_path, capsys):
    """``--out notes.txt/x``: the nearest existing parent is a file, so the write would fail only after the
    work; every command says so first, in one line naming the path, and writes nothing."""
    notes = tmp_path / "notes.txt"
    notes.write_text("the user's notes\n")
    spec = tmp_path / "s.toml"
    spec.write_text(tiny_spec_text(tmp_path).replace("stride = 48", "stride = 48\nvalidation = 0.5"))
    feats = tmp_path / "f.npy"
    np.save(feats, np.random.default_rng(0).standard_normal((20, 4)))
    under = notes / "deeper" / "out.x"
    argv = {"run": ["run", "benchmark", str(spec), "--store", str(under)],
            "tune": ["tune", str(spec), "--trials", "1", "--out", str(under), "--store", str(tmp_path / "t.sqlite")],
            "leaderboard": ["leaderboard", "build", "--store", str(_store_with_runs(tmp_path / "r.sqlite")), "--out", str(under)],
            "gallery": ["domains", "gallery", "folder", "--path", str(fold), "-n", "2", "--out", str(under)],
            "select": ["select", str(feats), "--rate", "0.5", "--bins", "2", "--out", str(under)]}[command]
    assert main(argv) == 2
    _refused(capsys, str(under), f"{notes} is a file, not a folder")
    assert notes.read_text() == "the user's notes\n"
    assert not (tmp_path / "t.sqlite").exists() and not (tmp_path / ".dqcl_cache").exists()
