"""`dqcl update`: a user's Cellpose model fine-tuned on new images while replaying a DQ-selected share of
the old ones; the file it writes loads as the input did (Cellpose 3 for CPnet files, dqcl's loader for a
tiny CPSAM), the report gives AP before and after, and bad input is one line that writes nothing."""

import importlib.util
import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest
import torch

from dqcl.cli import main
from dqcl.cpnet.model import CellposeNet, load_init, save_cellpose

CELLPOSE3 = importlib.util.find_spec("cellpose.resnet_torch") is not None
WIDTHS = (8, 16, 32, 64)


def _folders(root: Path) -> tuple[Path, Path]:
    """Built-in nuclei (as train/ and test/) and histo (one flat folder, as a Cellpose user keeps it)."""
    old, new = root / "nuclei", root / "histo"
    assert main(["domains", "export", "nuclei", "--out", str(old), "--n-train", "4", "--n-test", "2", "--size", "96"]) == 0
    assert main(["domains", "export", "histo", "--out", str(root / "histo_split"), "--n-train", "4", "--n-test", "2", "--size", "96"]) == 0
    new.mkdir()
    for f in (root / "histo_split").glob("*/*"):
        f.rename(new / f.name.replace("_img", ""))  # Cellpose's own naming: name.tif beside name_masks.tif
    return old, new


@pytest.fixture(scope="module")
def updated(tmp_path_factory):
    """One `dqcl update --compare` of a tiny CPnet (16 px objects) from nuclei to histo, kept in a store."""
    root = tmp_path_factory.mktemp("update")
    old, new = _folders(root)
    torch.manual_seed(0)
    start = CellposeNet(WIDTHS, diameter=16.0)
    save_cellpose(start, root / "mine.pth")
    args = ["update", str(root / "mine.pth"), "--old", str(old), "--new", str(new), "--out", str(root / "mine_v2.pth"),
            "--steps", "6", "--patch", "64", "--batch-size", "4", "--replay", "0.5", "--compare", "--report", str(root / "report"),
            "--store", str(root / "update.sqlite"), "--device", "cpu"]
    assert main(args) == 0
    return root, args


def _stored(store: Path) -> dict[str, dict]:
    con = sqlite3.connect(store)
    try:
        return {s: json.loads(r) for s, r in con.execute("SELECT strategy, result FROM runs")}
    finally:
        con.close()


def test_the_updated_model_keeps_the_inputs_architecture_and_diameter_and_has_learned(updated):
    root, _ = updated
    before, after = torch.load(root / "mine.pth", weights_only=True), torch.load(root / "mine_v2.pth", weights_only=True)
    assert float(after["diam_mean"]) == 16.0 and before.keys() == after.keys()
    back = CellposeNet(WIDTHS, diameter=16.0)
    load_init(back, root / "mine_v2.pth")  # dqcl's own loader: the same structure, every tensor
    changed = [k for k in before if before[k].dtype.is_floating_point and not torch.equal(before[k], after[k])]
    assert len(changed) > 10, "the update did not train the network"


def test_the_old_images_train_no_step_but_fill_the_dq_memory(updated):
    root, _ = updated
    runs = _stored(root / "update.sqlite")
    assert set(runs) == {"dq_replay", "naive", "joint"}
    dq, naive, joint = runs["dq_replay"], runs["naive"], runs["joint"]
    assert dq["steps"] == [0, 6] and naive["steps"] == [0, 6] and joint["steps"] == [12]  # joint: the steps of both
    for r in (dq, naive):
        assert r["R"]["ap50"][0] == r["baseline"]["ap50"]  # nothing changed on the old images: no step, no statistic
    held = dq["memory"]["held"]
    assert held[0] > 0 and naive["memory"] is None
    assert dq["data"]["old"]["train_patches"] >= held[0]
    # the same steps on the same new images from the same start: only the replayed old patches differ
    assert dq["model_sha256"] != naive["model_sha256"]


def test_the_report_gives_ap_before_and_after_forgetting_and_time_per_method(updated):
    root, _ = updated
    rep = json.loads((root / "report" / "report.json").read_text())
    assert list(rep["methods"]) == ["dq_replay", "naive", "joint"]
    befores = {json.dumps(m["before"]) for m in rep["methods"].values()}
    assert len(befores) == 1  # one model, scored once on the same held-out images
    for m in rep["methods"].values():
        assert m["forgetting"] == pytest.approx(m["before"]["old"] - m["after"]["old"])
        assert m["train_s"] > 0 and 0 <= m["after"]["new"] <= 1
    assert rep["held_out"]["old"]["patches"] > 0 and rep["held_out"]["new"]["patches"] > 0
    md = (root / "report" / "report.md").read_text()
    assert "| naive fine-tuning |" in md and "| retrain on all (joint) |" in md and "report.png" in md
    assert (root / "report" / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_second_update_with_the_store_retrains_only_the_model_it_writes(updated, capsys):
    root, args = updated
    capsys.readouterr()
    out = root / "again.pth"
    again = [a if a != str(root / "mine_v2.pth") else str(out) for a in args]
    again[again.index("--report") + 1] = str(root / "report2")
    assert main(again) == 0
    err = capsys.readouterr().err
    assert "naive: stored already" in err and "joint: stored already" in err and "dq_replay: training on new" in err
    assert len(_stored(root / "update.sqlite")) == 3
    # the same seed and data: the same network, bit for bit
    a, b = torch.load(root / "mine_v2.pth", weights_only=True), torch.load(out, weights_only=True)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_the_api_function_is_the_command(updated):
    from dqcl import api

    root, _ = updated
    old, new = root / "nuclei", root / "histo"
    rep = api.update(root / "mine.pth", old, new, root / "api.pth", replay=2, steps=2, patch=64, batch=4, device="cpu")
    assert list(rep["methods"]) == ["dq_replay"] and rep["replay"] == 2 and (root / "api.pth").is_file()


def _one_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


BAD = ["text", "not_cellpose", "no_masks", "replay_too_large", "strategy", "out_is_model", "out_exists", "diam_vector",
       "diam_text", "long_name", "out_under_a_file", "report_is_out", "store_is_out", "report_over_users_files", "train_only",
       "nan_image", "patch", "holdout", "empty_folder"]


@pytest.mark.parametrize("case", BAD)
def test_bad_input_is_one_line_and_writes_nothing(updated, tmp_path, capsys, case):
    """Each refused before a step trains: the model file, the folders, --out, --report and --store are as they were."""
    root, _ = updated
    model, old, new, out = root / "mine.pth", root / "nuclei", root / "histo", tmp_path / "out.pth"
    extra: list[str] = []
    mine = tmp_path / "mine_report"
    if case in ("diam_vector", "diam_text"):
        state = torch.load(model, weights_only=True)
        state["diam_mean"] = torch.tensor([16.0, 17.0]) if case == "diam_vector" else "abc"
        model = tmp_path / "odd.pth"
        torch.save(state, model)
    elif case == "long_name":
        model = tmp_path / ("m" * 300 + ".pth")
    elif case == "out_under_a_file":
        (tmp_path / "a_file").write_bytes(b"x")
        out = tmp_path / "a_file" / "out.pth"
    elif case == "report_is_out":
        extra = ["--report", str(out)]
    elif case == "store_is_out":
        extra = ["--store", str(out)]
    elif case == "report_over_users_files":
        mine.mkdir()
        (mine / "report.md").write_text("my own notes\n")
        extra = ["--report", str(mine)]
    elif case == "train_only":
        new = tmp_path / "train_only"
        (new / "train").mkdir(parents=True)
        for f in (root / "histo").glob("*.tif"):
            (new / "train" / f.name).write_bytes(f.read_bytes())
    elif case == "nan_image":
        import tifffile

        new = tmp_path / "nan"
        new.mkdir()
        for f in (root / "histo").glob("*.tif"):
            (new / f.name).write_bytes(f.read_bytes())
        victim = sorted(p for p in new.glob("*.tif") if not p.stem.endswith("_masks"))[0]
        tifffile.imwrite(victim, np.full((96, 96), np.nan, np.float32))
    elif case == "patch":
        extra = ["--patch", "17"]
    elif case == "holdout":
        extra = ["--holdout", "0.99"]
    elif case == "empty_folder":
        new = tmp_path / "empty"
        new.mkdir()
    if case == "text":
        model = tmp_path / "model.pth"
        model.write_text("not a model\n")
    elif case == "not_cellpose":
        model = tmp_path / "resnet.pth"
        torch.save({"fc.weight": torch.zeros(2, 2)}, model)
    elif case == "no_masks":
        new = tmp_path / "images_only"
        new.mkdir()
        for f in (root / "histo").glob("*.tif"):
            if not f.stem.endswith("_masks"):
                (new / f.name).write_bytes(f.read_bytes())
    elif case == "replay_too_large":
        extra = ["--replay", "100000"]
    elif case == "strategy":
        extra = ["--strategy", "nope"]
    elif case == "out_is_model":
        out = model
    elif case == "out_exists":
        out.write_bytes(b"someone's file")
    data = model.read_bytes() if case != "long_name" else b""
    args = ["update", str(model), "--old", str(old), "--new", str(new), "--out", str(out), "--steps", "2", "--device", "cpu"]
    rc = main([*args, *(["--patch", "64"] if "--patch" not in extra else []), *extra])
    err = _one_line(capsys)
    assert rc == 2
    named = {"text": model.name, "not_cellpose": model.name, "no_masks": "images_only", "replay_too_large": "--replay 100000",
             "strategy": "'nope'", "out_is_model": "mine.pth", "out_exists": "out.pth", "diam_vector": "diam_mean is not one number",
             "diam_text": "diam_mean is not one number", "long_name": "no such model file", "out_under_a_file": "a_file is a file",
             "report_is_out": "--report would be written over --out", "store_is_out": "--store would be written over --out",
             "report_over_users_files": "report.md: exists already", "train_only": "holds train/ but no test/",
             "nan_image": "pixels are NaN or infinite", "patch": "--patch", "holdout": "--holdout",
             "empty_folder": "empty: found neither Cellpose"}[case]
    assert named in err, err
    # the options the user gave, not dqcl's spec keys or options dqcl update does not have
    assert "data.patch_size" not in err and "domains.new" not in err and "layout" not in err
    if case != "long_name":
        assert model.read_bytes() == data
    if case == "out_exists":
        assert out.read_bytes() == b"someone's file"
    elif case == "report_over_users_files":
        assert (mine / "report.md").read_text() == "my own notes\n" and not out.exists()
    elif case != "out_is_model":
        assert not out.exists()


def test_a_strategy_name_is_text_in_the_report_and_its_figure(updated, tmp_path):
    """A plugin strategy's name with Markdown, HTML and mathtext in it: the report shows it as text (one table
    row of five cells, no tag, no link) and report.png is drawn."""
    from dqcl.config.strategies import STRATEGIES, register_strategy
    from dqcl.strategies.naive import naive

    root, _ = updated
    name = "x|y <b>z<b> *q* [l](javascript:alert) $a^{x$b"
    register_strategy(name, description="naive under a hostile name")(lambda base: naive(base))
    try:
        rep = tmp_path / "rep"
        assert main(["update", str(root / "mine.pth"), "--old", str(root / "nuclei"), "--new", str(root / "histo"),
                     "--out", str(tmp_path / "o.pth"), "--strategy", name, "--steps", "1", "--patch", "64", "--batch-size", "2",
                     "--device", "cpu", "--report", str(rep)]) == 0
    finally:
        STRATEGIES.unregister(name)
    md = (rep / "report.md").read_text()
    row = next(line for line in md.splitlines() if line.startswith("| ") and "x&#124;y" in line)
    assert row.count(" | ") == 4 and "<b>" not in md and "](javascript" not in md
    assert (rep / "report.png").stat().st_size > 1000


def test_overwrite_replaces_an_existing_file(updated, tmp_path):
    root, _ = updated
    out = tmp_path / "out.pth"
    out.write_bytes(b"old")
    assert main(["update", str(root / "mine.pth"), "--old", str(root / "nuclei"), "--new", str(root / "histo"), "--out", str(out),
                 "--steps", "1", "--patch", "64", "--batch-size", "2", "--device", "cpu", "--overwrite"]) == 0
    assert float(torch.load(out, weights_only=True)["diam_mean"]) == 16.0


@pytest.mark.skipif(not CELLPOSE3, reason="Cellpose 4's CellposeModel loads CPSAM files only; checked with Cellpose 3")
def test_a_cpnet_update_loads_in_cellpose_3_and_segments_at_the_users_diameter(tmp_path):
    """Cellpose's widths and BatchNorm, as a Cellpose 3 user's own model: the updated file loads in
    CellposeModel and segments a held-out image given its objects' true diameter."""
    from cellpose import models

    from dqcl.data.imageio import read_image, read_mask
    from dqcl.data.scale import median_diameter

    old, new = _folders(tmp_path)
    save_cellpose(CellposeNet(diameter=30.0), tmp_path / "cyto_like.pth")
    out = tmp_path / "updated.pth"
    assert main(["update", str(tmp_path / "cyto_like.pth"), "--old", str(old), "--new", str(new), "--out", str(out),
                 "--steps", "2", "--patch", "64", "--batch-size", "2", "--device", "cpu"]) == 0
    model = models.CellposeModel(gpu=False, pretrained_model=str(out))
    assert float(model.net.diam_mean) == 30.0
    image = read_image(next((old / "test").glob("*_img.tif")))
    truth = read_mask(next((old / "test").glob("*_masks.tif")))
    masks = model.eval(image, diameter=median_diameter(truth), channels=[0, 0])[0]
    assert masks.shape == image.shape


def test_a_tiny_cpsam_update_loads_through_dqcls_loader(tmp_path):
    from dqcl.cpnet.cpsam import CPSAMNet, cellpose4_available

    if not cellpose4_available():
        pytest.skip("CPSAM needs Cellpose 4")
    old, new = _folders(tmp_path)
    save_cellpose(CPSAMNet("tiny", bsize=64, diameter=16.0), tmp_path / "sam.pth")
    out = tmp_path / "sam_v2.pth"
    assert main(["update", str(tmp_path / "sam.pth"), "--old", str(old), "--new", str(new), "--out", str(out),
                 "--steps", "2", "--batch-size", "2", "--device", "cpu"]) == 0
    back = CPSAMNet("tiny", bsize=64, diameter=16.0)
    load_init(back, out)
    state = torch.load(out, weights_only=True)
    assert "W2" in state and float(state["diam_mean"]) == 16.0
    assert not torch.equal(state["out.weight"], torch.load(tmp_path / "sam.pth", weights_only=True)["out.weight"])


def test_an_exported_built_in_domain_is_the_domain_a_study_draws(tmp_path, capsys):
    from dqcl.data.domains import DOMAINS
    from dqcl.data.folders import load_folder

    out = tmp_path / "nuclei"
    assert main(["domains", "export", "nuclei", "--out", str(out), "--n-train", "3", "--n-test", "2", "--size", "96", "--seed", "4"]) == 0
    drawn = DOMAINS.get("nuclei").factory(seed=4, n_train=3, n_test=2, size=96)
    read = load_folder(out)
    for a, b in ((drawn.train, read.train), (drawn.test, read.test)):
        assert len(a) == len(b)
        for x, y, m, n in zip(a.images, b.images, a.masks, b.masks):
            np.testing.assert_allclose(x, y, atol=1e-6)
            assert np.array_equal(m, n)
    capsys.readouterr()
    assert main(["domains", "export", "nuclei", "--out", str(out)]) == 2  # not an empty folder: nothing replaced
    assert "not an empty folder" in _one_line(capsys) and len(list((out / "train").iterdir())) == 6
    assert main(["domains", "export", "folder", "--out", str(tmp_path / "x")]) == 2
    assert "not a built-in domain" in _one_line(capsys) and not (tmp_path / "x").exists()
