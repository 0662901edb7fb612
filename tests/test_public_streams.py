"""dqcl's domains as Avalanche streams for Avalanche users: `dqcl.benchmark` gives the patches a
dqcl run prepares, `dqcl.network` / `dqcl.loss` / `dqcl.scores` / `dqcl.evaluator` train and score
Avalanche's own strategies on them (examples/avalanche_naive.py, run here), bad input is one line,
and Cellpose's own log lines stay out of dqcl's output."""

import hashlib
import importlib.util
import logging
import math
import threading
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

import dqcl
from dqcl.errors import SpecError

ROOT = Path(__file__).resolve().parents[1]


def _raw(tmp_path: Path, data_seed=0) -> dict:
    """The conftest's tiny spec as a dict (no [strategies]: a dict for the streams may leave it out)."""
    return {
        "study": {"name": "tiny", "seeds": [0, 5], "orderings": [["cyto", "histo"]], "device": "cpu", "data_seed": data_seed},
        "data": {"patch_size": 48, "stride": 48, "cache_dir": str(tmp_path / "cache")},
        "domains": {"cyto": {"n_train": 2, "n_test": 1, "size": 96}, "histo": {"n_train": 2, "n_test": 1, "size": 96}},
        "model": {"widths": [8, 16, 32, 64]},
        "eval": {"niter": 50},
    }


def _digest(x: torch.Tensor | np.ndarray) -> str:
    a = np.ascontiguousarray(x.numpy() if torch.is_tensor(x) else x)
    return hashlib.sha256(f"{a.shape}{a.dtype}".encode() + a.tobytes()).hexdigest()[:16]


def _stream_digests(bm) -> list[tuple[str, str, str]]:
    from dqcl.data.streams import dataset_tensors

    out = []
    for name, stream in (("train", bm.train_stream), ("test", bm.test_stream)):
        for exp in stream:
            x, y = dataset_tensors(exp.dataset)
            out.append((name, _digest(x), _digest(y)))
    return out


def _run_digests(raw: dict, seed: int) -> list[tuple[str, str, str]]:
    """What a dqcl run of seed ``seed`` (the spec's first ordering) trains and is scored on."""
    from dqcl.config.expand import expand
    from dqcl.config.parse import parse_spec
    from dqcl.train.run import prepare_domain

    (cfg,) = [c for c in expand(parse_spec({**raw, "strategies": {"naive": {}}}, "<dict>")) if c.seed == seed]
    prepared = [prepare_domain(ds, cfg) for ds in cfg.domains]
    return [(split, _digest(p.images.astype(np.float32)), _digest(p.targets)) for split, i in (("train", 0), ("test", 1))
            for p in (pair[i] for pair in prepared)]


def test_benchmark_gives_the_patches_a_dqcl_run_prepares_for_the_same_spec_and_seed(tmp_path):
    from dqcl.data.prepared import DOMAIN_CACHE

    raw = _raw(tmp_path, data_seed="per_seed")
    bm = dqcl.benchmark(raw, seed=5)
    assert len(bm.train_stream) == 2 and len(bm.test_stream) == 2
    got = _stream_digests(bm)
    DOMAIN_CACHE.clear()  # the run's side rebuilds the domains from their generators
    assert got == _run_digests(raw, 5)
    assert _stream_digests(dqcl.benchmark(raw, seed=0)) != got  # per_seed: each seed draws its own data
    fixed = _raw(tmp_path, data_seed=0)
    assert _stream_digests(dqcl.benchmark(fixed, seed=5)) == _stream_digests(dqcl.benchmark(fixed, seed=0))
    # another ordering: experience 0 is histo, the test stream follows the ordering too
    flipped = _stream_digests(dqcl.benchmark(raw, ordering="histo>cyto", seed=5))
    assert flipped == [got[1], got[0], got[3], got[2]]


def test_network_loss_and_scores_fit_the_streams(tmp_path):
    raw = _raw(tmp_path)
    bm = dqcl.benchmark(raw)
    x, y, t = bm.train_stream[0].dataset[0]
    net = dqcl.network(raw)
    assert net.widths == (8, 16, 32, 64) and isinstance(net, torch.nn.Module)
    out = net(x[None])
    assert out.shape == (1, 3, *x.shape[1:]) and y.shape == (4, *x.shape[1:]) and t == 0
    assert math.isfinite(float(dqcl.loss(out, y[None])))
    s = dqcl.scores(raw)
    assert s.settings.niter == 50 and s.R() == []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        plugin = dqcl.evaluator(s)
    assert plugin.metrics == [s] and not [w for w in caught if "No loggers" in str(w.message)]
    with pytest.raises(ValueError, match="unknown metric"):
        s.R("accuracy_top1")


def _example():
    spec = importlib.util.spec_from_file_location("avalanche_naive_example", ROOT / "examples" / "avalanche_naive.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _cellpose_lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name.startswith("cellpose")]


def test_the_example_trains_avalanches_own_naive_and_prints_the_R_matrix(tmp_path, monkeypatch, capfd, caplog):
    import avalanche.training

    caplog.set_level(logging.INFO, logger="cellpose")  # the suite's conftest turns Cellpose's loggers down

    monkeypatch.chdir(tmp_path)  # its flow cache (.dqcl_cache/) goes here
    example = _example()
    assert example.Naive is avalanche.training.Naive  # Avalanche's own strategy, unmodified
    R = example.main()
    assert len(R) == 2 and all(len(row) == 2 for row in R)
    assert all(0.0 <= v <= 1.0 for row in R for v in row)
    out, err = capfd.readouterr()
    assert "R (AP@0.5)" in out and len(out.strip().splitlines()) == 4  # title, header, one row per experience
    assert "empty masks" not in out + err and _cellpose_lines(caplog) == []


def test_bad_input_is_one_line(tmp_path):
    with pytest.raises(SpecError) as err:
        dqcl.benchmark(tmp_path / "missing.toml")
    assert str(err.value) == f"{tmp_path / 'missing.toml'}: no such spec file"
    with pytest.raises(SpecError) as err:
        dqcl.benchmark(_raw(tmp_path), ordering=["cyto", "hsito"])
    assert str(err.value) == ("<dict>: ordering names unknown domain 'hsito' (did you mean 'histo'?); "
                              "the spec's domains: cyto, histo")
    with pytest.raises(SpecError, match="repeats a domain"):
        dqcl.benchmark(_raw(tmp_path), ordering="cyto>cyto")
    with pytest.raises(SpecError, match="seed must be an integer"):
        dqcl.benchmark(_raw(tmp_path), seed=-1)
    assert not (tmp_path / "cache").exists()  # refused before any data is made


# ---- Cellpose's own lines stay out -------------------------------------------------------------


# Cellpose 3 logs "empty masks!" for an empty patch's flows; Cellpose 4 has no such line. compute_masks
# on a patch without cells logs a line in both ("no seeds found", or Cellpose 4's "No cell pixels found."
# at INFO, below what Python prints by default).
CELLPOSE3 = importlib.util.find_spec("cellpose.resnet_torch") is not None


def _empty_masks_warning():
    """Make Cellpose log one line from compute_masks on a patch without cells."""
    from cellpose.dynamics import compute_masks

    output = np.zeros((3, 16, 16), np.float32)
    output[2] = -5.0
    compute_masks(output[:2], output[2], device=torch.device("cpu"))


def _no_seeds(lines: list[str]) -> list[str]:
    return [m for m in lines if m.startswith(("no seeds found", "No cell pixels found"))]


def test_cellposes_empty_masks_and_no_seeds_lines_stay_out_of_dqcls_output(caplog, capfd):
    from cellpose.dynamics import compute_masks

    from dqcl.cpnet.flows import flow_targets
    from dqcl.cpnet.masks import flows_to_masks

    caplog.set_level(logging.INFO, logger="cellpose")  # the suite's conftest turns Cellpose's loggers down
    output = np.zeros((3, 32, 32), np.float32)
    output[2] = -5.0
    output[2, 10:13, 10:13] = 5.0  # 9 cell pixels: too few for a seed
    # without dqcl's scope Cellpose logs its lines (so this test can see them)
    if CELLPOSE3:
        from cellpose.dynamics import masks_to_flows

        masks_to_flows(np.zeros((8, 8), np.int64))
        assert "empty masks!" in _cellpose_lines(caplog)
    compute_masks(output[:2], output[2], device=torch.device("cpu"))
    assert any("no seeds found" in m for m in _cellpose_lines(caplog))
    caplog.clear()
    masks = np.zeros((3, 32, 32), np.int32)
    masks[1, 4:12, 4:12] = 1  # patches 0 and 2 are empty
    flows = flow_targets(masks)
    assert flows.shape == (3, 4, 32, 32) and flows[1, 1].sum() == 64
    assert flows_to_masks(output).max() == 0
    assert _cellpose_lines(caplog) == []
    out, err = capfd.readouterr()
    assert "empty masks" not in out + err and "no seeds" not in out + err


def test_the_quiet_scope_is_narrow_this_thread_and_cellpose_only(caplog, capfd):
    from dqcl.cpnet.flows import cellpose_quiet

    caplog.set_level(logging.INFO)
    caplog.set_level(logging.INFO, logger="cellpose")
    with cellpose_quiet():
        _empty_masks_warning()  # this thread, inside: dropped
        print("dqcl's own line")
        logging.getLogger("dqcl_test_quiet_scope").warning("dqcl's own warning")
        other = threading.Thread(target=_empty_masks_warning)  # another thread: not dropped
        other.start()
        other.join()
    assert "dqcl's own line" in capfd.readouterr().out
    assert [r.getMessage() for r in caplog.records if r.name == "dqcl_test_quiet_scope"] == ["dqcl's own warning"]
    assert len(_no_seeds(_cellpose_lines(caplog))) == 1  # the other thread's only
    caplog.clear()
    _empty_masks_warning()  # after the scope: Cellpose's lines are back
    assert len(_no_seeds(_cellpose_lines(caplog))) == 1


@pytest.mark.skipif(not CELLPOSE3, reason="Cellpose 4 has no 'empty masks!' line")
def test_outside_pytest_cellposes_line_reaches_stderr_and_dqcls_flows_keep_it_out(tmp_path):
    """Without a logging setup (a script, a notebook) Python prints a library's warnings to stderr:
    Cellpose 3's "empty masks!" shows when Cellpose is called directly, not through dqcl."""
    import subprocess
    import sys

    child = ("import numpy as np; from dqcl.cpnet.flows import flow_targets; "
             "m = np.zeros((2, 16, 16), np.int32); m[1, 2:8, 2:8] = 1; flow_targets(m); print('through dqcl', flush=True); "
             "from cellpose.dynamics import masks_to_flows; masks_to_flows(np.zeros((8, 8), np.int64))")
    out = subprocess.run([sys.executable, "-W", "ignore", "-c", child], capture_output=True, text=True, cwd=tmp_path, check=True)
    assert out.stdout == "through dqcl\n" and out.stderr == "empty masks!\n"


def test_public_names_are_documented_and_exported():
    for name in ("benchmark", "network", "loss", "scores", "evaluator"):
        assert name in dqcl.__all__ and callable(getattr(dqcl, name)) and getattr(dqcl, name).__doc__
