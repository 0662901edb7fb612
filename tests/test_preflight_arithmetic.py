"""Preflight does the real arithmetic (issue 25, point 3): patch counts and memory of the images as the
run rescales them, a diameter (and every float) bounded to what a run can do, a rescaling that leaves
no signal refused naming the domain, and every spec of a multi-spec command checked before any trains.
Tiny images and dry runs: nothing here trains."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from conftest import small_domain_arrays, tiny_spec_text, write_pair
from dqcl.cli import main
from dqcl.errors import DqclError


def _one_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("dqcl: error: ") and "Traceback" not in err, err
    return err


def _pixel_folder(root: Path, n_train: int = 4, n_test: int = 2, side: int = 128, objects: int = 200) -> Path:
    """A folder domain whose masks hold single-pixel objects (a measured diameter of 1.13 px)."""
    rng = np.random.default_rng(0)
    for split, n in (("train", n_train), ("test", n_test)):
        for i in range(n):
            mask = np.zeros((side, side), np.uint16)
            at = rng.choice(side * side, objects, replace=False)
            mask.flat[at] = np.arange(1, objects + 1)
            write_pair(root / split, f"p{i}", (rng.random((side, side)) * 60000).astype(np.uint16), mask)
    return root


def _folder_spec(tmp_path: Path, patch: int = 32, diameter: float = 16, extra: str = "", folder: str = "pix") -> Path:
    spec = tmp_path / "s.toml"
    spec.write_text(f"""
[study]
name = "arith"
device = "cpu"
[data]
patch_size = {patch}
stride = {patch}
diameter = {diameter}
cache_dir = "{(tmp_path / 'cache').as_posix()}"
[domains.{folder}]
kind = "folder"
path = "{folder}"
{extra}
[model]
widths = [8, 16, 32, 64]
[train]
steps = 2
batch_size = 4
[strategies.naive]
""")
    return spec


def _tiny(tmp_path: Path) -> Path:
    spec = tmp_path / "tiny.toml"
    spec.write_text(tiny_spec_text(tmp_path, "[strategies.naive]\n"))
    return spec


def _dry(spec: Path, tmp_path: Path, *sets: str) -> int:
    args = ["run", "benchmark", str(spec), "--store", str(tmp_path / "r.sqlite"), "--quiet", "--dry-run"]
    for s in sets:
        args += ["--set", s]
    return main(args)


# ---- patch counts of the rescaled images ----------------------------------------------------------


def test_patch_counts_are_the_patches_a_run_cuts_after_rescaling(tmp_path):
    """`patch_counts` equals what the run's own preparation cuts, for a folder and a built-in domain."""
    from dqcl.config.expand import expand
    from dqcl.config.parse import load_spec
    from dqcl.data.prepared import PreparedDomains
    from dqcl.study.preflight import patch_counts
    from dqcl.train.run import prepare_domain

    imgs, masks = small_domain_arrays(3, 96)
    for i, (img, mask) in enumerate(zip(imgs, masks)):
        write_pair(tmp_path / "nuc" / ("train" if i < 2 else "test"), f"n{i}", img, mask)
    spec_path = _folder_spec(tmp_path, patch=32, diameter=16, folder="nuc")
    spec_path.write_text(spec_path.read_text() + "[domains.histo]\nn_train = 2\nn_test = 1\nsize = 96\n")
    spec = load_spec(spec_path)
    counts = patch_counts(spec, cache=PreparedDomains())
    cfg = expand(spec)[0]
    cut = {ds.name: tuple(len(p) for p in prepare_domain(ds, cfg)) for ds in cfg.domains}
    assert counts == cut and set(counts) == {"nuc", "histo"}
    assert all(n > 0 for pair in counts.values() for n in pair)


def test_single_pixel_objects_are_counted_after_rescaling_and_refused_by_memory(tmp_path, capsys, monkeypatch):
    """Six 128 px images of single-pixel objects cut into 6 x 16 = 96 patches as they are, but a run grows
    them x14.2 to 16 px objects: 6 x 56^2 = 18,816 patches. Preflight counts those, says so, and refuses
    them where they do not fit."""
    from dqcl.config.parse import load_spec
    from dqcl.data.prepared import PreparedDomains
    from dqcl.study.preflight import patch_counts

    _pixel_folder(tmp_path / "pix")
    spec = _folder_spec(tmp_path)
    assert patch_counts(load_spec(spec), cache=PreparedDomains()) == {"pix": (4 * 56 * 56, 2 * 56 * 56)}
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DQCL_MAX_RUN_MEMORY", str(200 * 2**20))  # far more than 96 patches need, far less than 18,816
    assert _dry(spec, tmp_path) == 2
    err = _one_line(capsys)
    assert "18,816 patches" in err and "GiB" in err and "x14.2" in err and "data.diameter" in err and "domains.pix.diameter" in err
    assert not (tmp_path / "r.sqlite").exists()
    monkeypatch.delenv("DQCL_MAX_RUN_MEMORY")
    assert _dry(spec, tmp_path) == 0  # where they fit: a note on the growth, not silence
    assert "Cellpose clips" in capsys.readouterr().err


def test_an_image_rescaled_past_the_pixel_limit_is_refused_naming_domain_diameter_factor_and_size(tmp_path, capsys, monkeypatch):
    _pixel_folder(tmp_path / "pix", 1, 1, objects=50)
    spec = _folder_spec(tmp_path, patch=224, diameter=159)  # x141: 128 px images become 18,036 px square
    monkeypatch.chdir(tmp_path)
    assert _dry(spec, tmp_path) == 2
    err = _one_line(capsys)
    assert "domain 'pix'" in err and "measured at 1.13 px" in err and "x141" in err and "18,036 x 18,036 px" in err
    assert "268,435,456 pixels" in err


def test_an_image_rescaled_below_a_patch_without_pad_is_refused_in_preflight_not_mid_run(tmp_path, capsys):
    assert _dry(_tiny(tmp_path), tmp_path, "data.diameter=17") == 2  # tiny's images: 45 px once rescaled, patches 48
    err = _one_line(capsys)
    assert "smaller than the 48 px patch" in err and "data.pad = true" in err


# ---- rescalings that leave no signal, and diameters out of a run's range ----------------------------


@pytest.mark.parametrize("min_size", [15, 0])
def test_a_diameter_that_leaves_no_signal_is_refused_naming_domain_diameter_factor_and_size(tmp_path, capsys, min_size):
    assert _dry(_tiny(tmp_path), tmp_path, "data.diameter=0.01", "data.pad=true", f"eval.min_size={min_size}") == 2
    err = _one_line(capsys)
    assert "domain 'cyto'" in err and "measured at" in err and "x0.000" in err and "1 x 1 px" in err and "no signal" in err


def test_a_diameter_whose_objects_mask_reconstruction_removes_is_refused_with_advice_that_is_accepted(tmp_path, capsys):
    spec = _tiny(tmp_path)
    assert _dry(spec, tmp_path, "data.diameter=3") == 2  # a 3 px object covers 7 px, under eval.min_size = 15
    assert "at least 4.38" in _one_line(capsys)
    assert _dry(spec, tmp_path, "data.diameter=35") == 2  # covers 962 px, over 0.4 of a 48 px patch (922)
    assert "at most 34.25" in _one_line(capsys)
    assert _dry(spec, tmp_path, "data.diameter=34.25") == 0


def test_a_real_run_at_diameter_1e6_is_one_line_and_leaves_no_store(tmp_path, capsys):
    store = tmp_path / "r.sqlite"
    assert main(["run", "benchmark", str(_tiny(tmp_path)), "--store", str(store), "--quiet", "--set", "data.diameter=1e6"]) == 2
    assert "data.diameter = 1e+06" in _one_line(capsys)
    assert not store.exists()


def test_a_folder_diameter_under_one_pixel_is_one_line(tmp_path, capsys, monkeypatch):
    imgs, masks = small_domain_arrays(2, 64)
    for split in ("train", "test"):
        write_pair(tmp_path / "nuc" / split, "a", imgs[0], masks[0])
    monkeypatch.chdir(tmp_path)
    assert _dry(_folder_spec(tmp_path, folder="nuc", extra="diameter = 0.0001"), tmp_path) == 2
    assert "domains.nuc.diameter" in _one_line(capsys)


@pytest.mark.parametrize("setting", ["train.lr=1e300", "train.weight_decay=1e39", "eval.cellprob_threshold=-1e300",
                                     "train.momentum=1", "train.warmup_epochs=1e308", "eval.max_size_fraction=0"])
def test_every_float_of_a_spec_is_bounded_to_what_a_run_can_do(tmp_path, capsys, setting):
    assert _dry(_tiny(tmp_path), tmp_path, setting) == 2
    assert setting.partition("=")[0] in _one_line(capsys)


def test_the_api_refuses_a_huge_diameter_in_one_line_before_allocating(tmp_path):
    import dqcl
    from dqcl.data.scale import split_to_diameter

    spec = {"domains": {"nuclei": {"n_train": 2, "n_test": 1, "size": 64}}, "data": {"patch_size": 48, "stride": 48,
            "diameter": 1e6, "cache_dir": str(tmp_path / "c")}}
    with pytest.raises(DqclError, match="data.diameter"):
        dqcl.benchmark(spec)
    spec["data"]["diameter"] = 1e308
    with pytest.raises(DqclError, match="data.diameter"):
        dqcl.network(spec)
    from dqcl.data.domains import DOMAINS

    split = DOMAINS.get("nuclei").factory(seed=0, n_train=1, n_test=1, size=64).train
    with pytest.raises(DqclError, match="nuclei-train-0000: .*over dqcl's limit"):
        split_to_diameter(split, 1e6)  # the root every path goes through, before a byte is allocated


# ---- [model] init diameters ------------------------------------------------------------------------


def _init_file(tmp_path: Path, diam_mean: float) -> str:
    import torch

    from dqcl.cpnet.model import CellposeNet

    state = CellposeNet((8, 16, 32, 64)).net.state_dict()
    state["diam_mean"] = torch.tensor([diam_mean])
    path = tmp_path / f"init_{diam_mean}.pth"
    torch.save(state, path)
    return f'model.init="{path.as_posix()}"'


def test_an_init_file_whose_diam_mean_is_nan_is_refused(tmp_path, capsys):
    assert _dry(_tiny(tmp_path), tmp_path, _init_file(tmp_path, float("nan"))) == 2
    assert "diam_mean is nan" in _one_line(capsys)


def test_init_diameter_advice_never_loops(tmp_path, capsys):
    """The advice names a data.diameter the spec can take, and taking it is accepted; never the value held."""
    spec = _tiny(tmp_path)
    assert _dry(spec, tmp_path, _init_file(tmp_path, 0.0), "data.diameter=0", "data.pad=true") == 2
    assert "set data.diameter = 0" not in _one_line(capsys)
    assert _dry(spec, tmp_path, _init_file(tmp_path, 1e30)) == 2
    err = _one_line(capsys)
    assert "set data.diameter =" not in err and "from 4.38 to 34.25" in err
    assert _dry(spec, tmp_path, _init_file(tmp_path, 23.7001), "data.pad=true") == 2
    advice = _one_line(capsys).rpartition("set data.diameter = ")[2].split()[0]
    assert _dry(spec, tmp_path, _init_file(tmp_path, 23.7001), "data.pad=true", f"data.diameter={advice}") == 0


# ---- plugins ---------------------------------------------------------------------------------------


def test_register_strategy_takes_one_protocol_name_as_a_string(monkeypatch):
    from dqcl.config.strategies import STRATEGIES, register_strategy
    from dqcl.errors import SpecError

    factory = register_strategy("arith_batch_only", description="x", effects="memory", protocols="batch")(lambda base: None)
    try:
        assert factory.protocols == ("batch",) and factory.effects == ("memory",)
    finally:
        STRATEGIES.unregister("arith_batch_only")
    with pytest.raises(SpecError, match="protocols must name one or more of mix, batch"):
        register_strategy("arith_typo", description="x", protocols=("batch", "mixx"))


# ---- multi-spec commands ---------------------------------------------------------------------------


def test_run_claims_checks_every_spec_before_any_run_trains(tmp_path, capsys, monkeypatch):
    """An override the first spec takes and the second refuses stops the command before anything trains
    or is stored (it used to run the whole first spec first)."""
    import dqcl.config.schema as schema
    import dqcl.study.run as run

    first, second = tmp_path / "first.toml", tmp_path / "second.toml"
    first.write_text(tiny_spec_text(tmp_path, "[strategies.naive]\n"))
    second.write_text(tiny_spec_text(tmp_path, "[strategies.replay]\n[memory]\nrate = 0.5\n").replace('"tiny"', '"second"'))
    monkeypatch.setattr(run, "CLAIMS_SPECS", ("first.toml", "second.toml"))
    monkeypatch.setattr(schema, "shipped_spec", lambda name: tmp_path / name)
    trained = []
    monkeypatch.setattr(run, "run_study", lambda study, *a, **k: trained.append(study.spec.name) or run.StudySummary(0, 0, 0, 0.0, "x"))
    store = tmp_path / "r.sqlite"
    assert main(["run", "claims", "--store", str(store), "--quiet", "--set", "memory.size=4"]) == 2
    assert "second.toml: memory" in _one_line(capsys)
    assert trained == [] and not store.exists()
    assert main(["run", "claims", "--store", str(store), "--quiet"]) == 0  # both fine: both run, in order
    assert trained == ["tiny", "second"]
