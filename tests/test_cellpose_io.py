"""Networks that leave the benchmark: a study starts from a user's Cellpose model, and the networks
it trains load into Cellpose and segment; runs can be watched (training curve, TensorBoard, CSV)."""

import importlib.util
import json
import sqlite3

import numpy as np
import pytest
import torch

from dqcl.cli import main

# Cellpose 3 ships the CPnet that writes and reads these files; Cellpose 4's CellposeModel reads only
# CPSAM files (the Cellpose 3 job of .ci/run checks this file's Cellpose 3 paths)
CELLPOSE3 = importlib.util.find_spec("cellpose.resnet_torch") is not None


def _spec(tmp_path, widths="[32, 64, 128, 256]", extra="", orderings='[["cyto", "histo"]]', train="epochs = 1\nbatch_size = 4"):
    text = f"""
[study]
name = "io"
seeds = [0]
orderings = {orderings}
device = "cpu"
[data]
patch_size = 48
stride = 48
cache_dir = "{(tmp_path / 'cache').as_posix()}"
[domains.cyto]
n_train = 2
n_test = 1
size = 96
[domains.histo]
n_train = 2
n_test = 1
size = 96
[model]
widths = {widths}
{extra}
[train]
{train}
[eval]
niter = 50
[strategies.naive]
"""
    path = tmp_path / "io.toml"
    path.write_text(text)
    return path


def _cellpose_file(path, widths=(32, 64, 128, 256), seed=0, diam_mean=30.0):
    """A Cellpose 3 model file, never downloaded: written by Cellpose 3's own code (CPnet.save_model)
    where it is installed, else by dqcl's rebuild of that network (the same state dict, as torch.save)."""
    torch.manual_seed(seed)
    if CELLPOSE3:
        from cellpose.resnet_torch import CPnet

        net = CPnet([2, *widths], nout=3, sz=3, diam_mean=diam_mean)
        net.save_model(str(path))
    else:
        from dqcl.cpnet.resnet import CPnet

        net = CPnet([2, *widths], nout=3, sz=3, diam_mean=diam_mean)
        torch.save(net.state_dict(), path)
    return net.state_dict()


def _result(store):
    (res,) = [json.loads(r) for (r,) in sqlite3.connect(store).execute("SELECT result FROM runs")]
    return res


def test_a_study_starts_from_the_users_cellpose_model(tmp_path):
    from dqcl.config.expand import expand
    from dqcl.config.parse import load_spec
    from dqcl.train.run import run_one
    from avalanche.core import SupervisedPlugin

    state = _cellpose_file(tmp_path / "mine.pth")
    spec = _spec(tmp_path, extra='init = "mine.pth"')
    (cfg,) = expand(load_spec(spec))

    class Start(SupervisedPlugin):
        seen = None

        def before_training_exp(self, strategy, **kwargs):
            if Start.seen is None:
                Start.seen = {k: v.detach().clone() for k, v in strategy.model.net.state_dict().items()}

    run_one(cfg, probes=(Start(),))
    assert Start.seen.keys() == state.keys()
    assert all(torch.equal(Start.seen[k], state[k]) for k in state), "training did not start from the user's model"
    # the file's content is part of the run's key: another model is another run
    _cellpose_file(tmp_path / "mine.pth", seed=1)
    (other,) = expand(load_spec(spec))
    assert other.key != cfg.key


def test_a_model_of_another_architecture_is_refused_in_one_line(tmp_path, capsys):
    _cellpose_file(tmp_path / "small.pth", widths=(16, 32, 64, 128))
    spec = _spec(tmp_path, extra='init = "small.pth"')
    store = tmp_path / "r.sqlite"
    assert main(["run", "benchmark", str(spec), "--store", str(store), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "small.pth" in err and "architecture does not match" in err
    assert "first width 16" in err and not store.exists()
    torch.save({"W2": torch.zeros(1)}, tmp_path / "cp4.pth")  # a Cellpose 4 (CPSAM) file
    spec = _spec(tmp_path, extra='init = "cp4.pth"')
    assert main(["run", "benchmark", str(spec), "--store", str(store), "--quiet"]) == 2
    assert "Cellpose 4" in capsys.readouterr().err


def test_a_model_trained_at_another_diameter_is_refused_with_the_diameter_to_set(tmp_path, capsys):
    _cellpose_file(tmp_path / "nuclei17.pth", diam_mean=17.0)  # as Cellpose's own nuclei model holds
    spec = _spec(tmp_path, extra='init = "nuclei17.pth"')
    store = tmp_path / "r.sqlite"
    assert main(["run", "benchmark", str(spec), "--store", str(store), "--dry-run"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "nuclei17.pth" in err and "set data.diameter = 17" in err
    # at 17 px objects some of these 96 px images shrink below the 48 px patch: preflight says so (a run stopped there), so pad
    assert main(["run", "benchmark", str(spec), "--store", str(store), "--dry-run", "--set", "data.diameter=17"]) == 2
    assert "smaller than the 48 px patch" in capsys.readouterr().err
    assert main(["run", "benchmark", str(spec), "--store", str(store), "--dry-run", "--set", "data.diameter=17",
                 "--set", "data.pad=true"]) == 0


@pytest.mark.skipif(not CELLPOSE3, reason="Cellpose 4's CellposeModel loads CPSAM files only; checked with Cellpose 3")
def test_a_network_trained_by_dqcl_segments_through_cellpose(tmp_path):
    """Cellpose's own API loads the saved network and segments real nuclei given their true diameter
    (as a Cellpose user passes it), and dqcl's own arithmetic (`segment_image`) gives the same masks,
    also on the image enlarged twice and halved, with the diameter scaled alike."""
    from cellpose import models
    from skimage.transform import resize

    from dqcl.cpnet.model import CellposeNet, load_init
    from dqcl.data.scale import median_diameter
    from dqcl.data.sources.packaged import dsb_nuclei
    from dqcl.evaluation.metrics import score_masks
    from dqcl.evaluation.segment import segment_image

    _cellpose_file(tmp_path / "start.pth")
    spec = _spec(tmp_path, extra='init = "start.pth"', orderings='[["nuclei"]]',
                 train="steps = 150\nwarmup_steps = 6\nbatch_size = 8\nlr = 0.05").read_text()
    spec = spec.replace("patch_size = 48\nstride = 48", "patch_size = 64\nstride = 64").replace(
        "[domains.cyto]\nn_train = 2\nn_test = 1\nsize = 96", "[domains.nuclei]\nn_train = 4\nn_test = 1\nsize = 160")
    (tmp_path / "io.toml").write_text(spec)
    store = tmp_path / "r.sqlite"
    # two torch threads on every machine (the suite keeps torch's count): CPU float sums depend on the thread count,
    # and this short training reached AP@0.5 0.12 with one thread where it reaches more with two
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        assert main(["run", "benchmark", str(tmp_path / "io.toml"), "--store", str(store), "--quiet", "--save-weights", "final"]) == 0
    finally:
        torch.set_num_threads(threads)
    res = _result(store)
    assert res["files"] == ["final.pth"] and res["scale"]["diameter"] == 30.0
    (final,) = (tmp_path / "runs").glob("*/final.pth")
    assert float(torch.load(final, weights_only=True)["diam_mean"]) == 30.0  # the training diameter travels with it
    model = models.CellposeModel(gpu=False, pretrained_model=str(final))
    ours = CellposeNet()
    load_init(ours, final)
    image, truth = dsb_nuclei()
    image, truth = image[:256, 256:], truth[:256, 256:]  # a quarter of the real image: 45-50 nuclei
    true_size = median_diameter(truth)  # 23-24 px: Cellpose's net was trained at 30
    for zoom in (1, 2, 0.5):  # the image as it is, at twice and at half the scale, the diameter scaled alike
        n = int(256 * zoom)
        img = resize(image, (n, n), order=1, preserve_range=True).astype(np.float32) if zoom != 1 else image
        lab = resize(truth, (n, n), order=0, preserve_range=True).astype(np.int32) if zoom != 1 else truth
        theirs = model.eval(img, diameter=true_size * zoom, channels=[0, 0])[0].astype(np.int32)
        dqcl_mask = segment_image(ours, img, true_size * zoom)
        ap_cellpose, ap_dqcl = score_masks(lab, theirs)["ap50"], score_masks(lab, dqcl_mask)["ap50"]
        assert ap_cellpose > 0.2, f"zoom {zoom}: the trained network found too little in Cellpose ({ap_cellpose:.3f})"
        # the same masks: at most 0.1 % of the pixels differ (float order), and the same score
        assert ((theirs > 0) != (dqcl_mask > 0)).mean() < 1e-3, f"zoom {zoom}: Cellpose's and dqcl's masks differ"
        assert abs(ap_cellpose - ap_dqcl) <= 0.01, f"zoom {zoom}: Cellpose {ap_cellpose:.3f} vs dqcl {ap_dqcl:.3f}"


def test_a_run_can_be_watched_curve_tensorboard_csv_and_panel(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    import dqcl

    spec = _spec(tmp_path, widths="[8, 16, 32, 64]", train="epochs = 2\nbatch_size = 4")
    store = tmp_path / "r.sqlite"
    assert main(["run", "benchmark", str(spec), "--store", str(store), "--quiet", "--tensorboard", "--csv-log",
                 "--panels", "--save-weights", "all"]) == 0
    res = _result(store)
    curve = res["curve"]
    assert [(r["experience"], r["epoch"]) for r in curve] == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert all(r["loss"] > 0 and r["lr"] > 0 for r in curve) and curve[-1]["steps"] == 8
    (folder,) = (tmp_path / "runs").iterdir()
    assert sorted(res["files"]) == ["after_0_cyto.pth", "final.pth", "panel.png"]
    assert (folder / "panel.png").read_bytes()[:4] == b"\x89PNG"
    events = EventAccumulator(str(folder / "tensorboard"))
    events.Reload()
    tags = events.Tags()["scalars"]
    assert any(t.startswith("Loss_Epoch/train_phase") for t in tags)  # the training loss
    assert "seg/ap50/exp000" in tags and "seg/ap50/exp001" in tags  # the score rows
    rows = (folder / "metrics.csv").read_text().splitlines()
    assert rows[0] == "name,step,value" and any(r.startswith("seg/ap50/exp001,") for r in rows)
    curves = dqcl.load_curves(store)
    assert len(curves) == 4 and {"strategy", "ordering", "seed", "experience", "epoch", "loss", "lr", "steps"} <= set(curves.columns)
    assert curves["ordering"].iloc[0] == "cyto>histo"


def test_a_run_can_be_watched_in_weights_and_biases_offline(tmp_path, monkeypatch):
    """`--wandb` writes an offline W&B run (nothing leaves the machine) holding the loss and the score rows."""
    monkeypatch.setenv("WANDB_SILENT", "true")
    spec = _spec(tmp_path, widths="[8, 16, 32, 64]", train="epochs = 1\nbatch_size = 4")
    store = tmp_path / "r.sqlite"
    assert main(["run", "benchmark", str(spec), "--store", str(store), "--quiet", "--wandb"]) == 0
    (folder,) = (tmp_path / "runs").iterdir()
    (log,) = folder.glob("wandb/offline-run-*/run-*.wandb")  # what `wandb sync` uploads later
    data = log.read_bytes()
    assert b"seg/ap50/exp001" in data and b"Loss_Epoch/train_phase" in data
