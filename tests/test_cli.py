import json
import sqlite3

import numpy as np
import pytest

from dqcl.cli import main
from dqcl.evaluation.metrics import METRICS

from conftest import small_domain_arrays, write_pair


def _db_dump(path):
    with sqlite3.connect(path) as c:
        return c.execute("SELECT key, result FROM runs ORDER BY key").fetchall()


def test_run_then_rerun_then_leaderboard(tmp_path, tiny_spec, capsys):
    store = tmp_path / "r.sqlite"
    assert main(["run", "benchmark", str(tiny_spec), "--store", str(store), "--quiet"]) == 0
    assert "2 run(s) done" in capsys.readouterr().out
    first = _db_dump(store)
    assert len(first) == 2
    assert main(["run", "benchmark", str(tiny_spec), "--store", str(store), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "0 run(s) done in" in out and "2 already stored" in out
    assert _db_dump(store) == first

    out = tmp_path / "lb"
    assert main(["leaderboard", "build", "--store", str(store), "--out", str(out)]) == 0
    entries = json.loads((out / "leaderboard.json").read_text())
    assert len(entries) == 2 * len(METRICS)
    e = next(e for e in entries if e["strategy"] == "naive" and e["metric"] == "ap50")
    assert e["ordering"] == ["cyto", "histo"] and e["seed"] == 0
    assert np.array(e["R"]).shape == (2, 2) and len(e["baseline"]) == 2
    for k in ("acc", "bwt", "forgetting", "fwt", "plasticity"):
        assert isinstance(e[k], float)
    md = (out / "leaderboard.md").read_text()
    assert "## tiny — ap50" in md and "| naive" in md and "BWT" in md
    assert (out / "leaderboard.csv").read_text().startswith("study,strategy,")


def test_bad_spec_exits_2_with_one_line_and_keeps_the_store(tmp_path, tiny_spec, capsys):
    store = tmp_path / "r.sqlite"
    assert main(["run", "benchmark", str(tiny_spec), "--store", str(store), "--quiet"]) == 0
    before = _db_dump(store)
    capsys.readouterr()
    bad = tmp_path / "bad.toml"
    bad.write_text(tiny_spec.read_text().replace("[train]", "[train]\nlearning_rate = 0.1"))
    assert main(["run", "benchmark", str(bad), "--store", str(store)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "learning_rate" in err and "Traceback" not in err
    assert _db_dump(store) == before


@pytest.mark.parametrize(
    "argv,message",
    [
        (["strategies", "list", "--bogus"], "No such option"),
        (["domains", "gallery", "cytoo", "--out", "x.png"], "unknown domain 'cytoo' (did you mean 'cyto'?)"),
        (["leaderboard", "build", "--store", "missing.sqlite"], "no results store here"),
        (["run", "benchmark", "missing.toml"], "missing.toml: no such spec file"),
    ],
)
def test_bad_commands_exit_2(tmp_path, monkeypatch, capsys, argv, message):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_corrupted_store_is_a_clear_error(tmp_path, capsys):
    store = tmp_path / "r.sqlite"
    store.write_bytes(b"this is not sqlite at all" * 100)
    assert main(["leaderboard", "build", "--store", str(store), "--out", str(tmp_path / "o")]) == 2
    assert "not a usable dqcl results store" in capsys.readouterr().err


def test_lists(capsys):
    assert main(["domains", "list"]) == 0
    out = capsys.readouterr().out
    assert all(k in out for k in ("cyto", "histo", "nuclei", "brightfield", "folder"))
    assert main(["strategies", "list"]) == 0
    assert "replay" in capsys.readouterr().out


def test_gallery_command(tmp_path, capsys):
    out = tmp_path / "g.png"
    assert main(["domains", "gallery", "nuclei", "--out", str(out), "-n", "2"]) == 0
    assert out.read_bytes()[:4] == b"\x89PNG"


def _score_dirs(tmp_path):
    _, masks = small_domain_arrays(3)
    t, p = tmp_path / "true", tmp_path / "pred"
    t.mkdir()
    p.mkdir()
    from skimage import io

    preds = []
    for i, m in enumerate(masks):
        io.imsave(t / f"im{i}_masks.png", m, check_contrast=False)
        pred = np.roll(m, i, axis=1)
        preds.append(pred)
        io.imsave(p / f"im{i}_cp_masks.png", pred, check_contrast=False)
    return t, p, masks, preds


def test_score_json_agrees_with_cellpose(tmp_path, capsys):
    import fastremap
    from cellpose.metrics import average_precision

    t, p, masks, preds = _score_dirs(tmp_path)
    assert main(["score", str(t), str(p), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [im["name"] for im in out["images"]] == ["im0", "im1", "im2"]
    assert set(out["mean"]) == set(METRICS)
    for im, m, pr in zip(out["images"], masks, preds):
        ap, *_ = average_precision(fastremap.renumber(m.astype(np.int32))[0], fastremap.renumber(pr.astype(np.int32))[0])
        assert [im["ap50"], im["ap75"], im["ap90"]] == pytest.approx(list(ap), abs=1e-6)
    assert out["images"][0]["ap50"] == 1.0
    assert out["mean"]["iou"] == pytest.approx(np.mean([im["iou"] for im in out["images"]]))


def test_score_missing_prediction_exits_2(tmp_path, capsys):
    t, p, *_ = _score_dirs(tmp_path)
    (p / "im1_cp_masks.png").unlink()
    assert main(["score", str(t), str(p)]) == 2
    err = capsys.readouterr().err
    assert "im1_masks.png: no prediction 'im1_cp_masks.*'" in err


def test_folder_domain_runs_end_to_end(tmp_path, capsys):
    imgs, masks = small_domain_arrays(2, size=96)
    for split in ("train", "test"):
        for i, (im, m) in enumerate(zip(imgs, masks)):
            flip = (lambda a: a) if split == "train" else np.flipud  # test images are not training images
            write_pair(tmp_path / "mine" / split, f"a{i}", flip(im), flip(m))
    spec = tmp_path / "s.toml"
    spec.write_text(
        f"""
[study]
name = "mine"
orderings = [["mine"]]
device = "cpu"
[data]
patch_size = 48
stride = 48
cache_dir = "{(tmp_path / 'c').as_posix()}"
[domains.mine]
kind = "folder"
path = "mine"
[model]
widths = [8, 16, 32, 64]
[train]
epochs = 1
batch_size = 4
[strategies.naive]
"""
    )
    store = tmp_path / "r.sqlite"
    assert main(["run", "benchmark", str(spec), "--store", str(store), "--quiet"]) == 0
    assert len(_db_dump(store)) == 1
    # a broken mask in the folder: exit 2, the store keeps what it had
    (tmp_path / "mine" / "train" / "a1_masks.png").write_bytes(b"")
    spec.write_text(spec.read_text().replace("epochs = 1", "epochs = 2"))
    assert main(["run", "benchmark", str(spec), "--store", str(store), "--quiet"]) == 2
    assert "a1_masks.png: empty file" in capsys.readouterr().err
    assert len(_db_dump(store)) == 1
