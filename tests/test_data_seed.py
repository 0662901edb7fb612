"""``[study] data_seed = "per_seed"`` (each run draws its data with its own seed), a folder
domain's ``resplit`` (train/ and test/ pooled and divided anew by the data seed), and the data
record of what a run trained and was scored on (`dqcl.data.record.data_record`)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from dqcl.config.expand import expand, run_key
from dqcl.config.parse import parse_spec
from dqcl.data.folders import load_folder
from dqcl.data.prepared import PreparedDomains
from dqcl.data.record import data_record
from dqcl.errors import SpecError


def _raw(data_seed=None, seeds=(0, 1), domains=None) -> dict:
    study = {"name": "ds", "seeds": list(seeds), "orderings": "given", "device": "cpu"}
    if data_seed is not None:
        study["data_seed"] = data_seed
    return {
        "study": study,
        "data": {"patch_size": 48, "stride": 48},
        "domains": domains or {"cyto": {"n_train": 2, "n_test": 1, "size": 96}},
        "model": {"widths": [8, 16, 32, 64]},
        "strategies": {"naive": {}},
    }


def _record(cfg, cache_dir: Path) -> dict:
    """The data record of a run, its domains prepared afresh (as `dqcl.train.run.prepare_domain` does)."""
    fresh = PreparedDomains()
    prepared = [
        fresh.patches(ds.name, ds.kind, ds.params, cfg.data_seed, dict(cfg.data_manifests).get(ds.name, ""),
                      cfg.data.patch_size, cfg.data.stride, cfg.data.pad, cache_dir, cfg.data.diameter)
        for ds in cfg.domains
    ]
    return data_record(prepared)


# --- data_seed = "per_seed" -------------------------------------------------------------------

def test_per_seed_gives_each_run_its_own_seed_as_data_seed_and_its_own_data(tmp_path):
    runs = expand(parse_spec(_raw("per_seed", seeds=(0, 1, 5)), "ds.toml", tmp_path))
    assert [r.data_seed for r in runs] == [r.seed for r in runs] == [0, 1, 5]
    r0, r1 = (_record(r, tmp_path / "cache") for r in runs[:2])
    assert r0["cyto"]["train_hash"] != r1["cyto"]["train_hash"]
    assert r0["cyto"]["test_hash"] != r1["cyto"]["test_hash"]
    again = expand(parse_spec(_raw("per_seed", seeds=(0, 1, 5)), "ds.toml", tmp_path))[0]
    assert _record(again, tmp_path / "cache") == r0  # the same seed draws the same data
    assert again.key == runs[0].key


def test_an_integer_data_seed_gives_every_seed_the_same_data(tmp_path):
    runs = expand(parse_spec(_raw(7), "ds.toml", tmp_path))
    assert [r.data_seed for r in runs] == [7, 7]
    r0, r1 = (_record(r, tmp_path / "cache") for r in runs)
    assert r0 == r1
    assert set(r0["cyto"]) == {"train_hash", "test_hash", "train_patches", "test_patches", "test_objects", "test_in_train"}
    assert r0["cyto"]["test_in_train"] == 0  # no test patch is a training patch
    assert r0["cyto"]["test_objects"] > 0


def test_per_seed_and_an_integer_of_the_same_value_are_the_same_run(tmp_path):
    """Seed 3 under "per_seed" draws data seed 3: the run is the one ``data_seed = 3`` describes."""
    (a,) = expand(parse_spec(_raw("per_seed", seeds=(3,)), "ds.toml", tmp_path))
    (b,) = expand(parse_spec(_raw(3, seeds=(3,)), "ds.toml", tmp_path))
    assert a.key == b.key


def test_keys_of_integer_data_seed_specs_are_unchanged(tmp_path):
    """Pinned from dqcl before "per_seed" existed (the version left out, so a release does not move them)."""
    raw = {"study": {"name": "ds", "seeds": [0, 1], "orderings": [["cyto", "histo"]], "device": "cpu", "data_seed": 7},
           "data": {"patch_size": 48, "stride": 48},
           "domains": {"cyto": {"n_train": 2, "n_test": 1, "size": 96}, "histo": {"n_train": 2, "n_test": 1, "size": 96}},
           "strategies": {"naive": {}}}
    keys = [run_key({**r.to_dict(), "version": "pinned"}) for r in expand(parse_spec(raw, "ds.toml", tmp_path))]
    assert keys == ["07cde6a815f53e47e0ffa228", "14a7c1e9416a9753e0384474"]


@pytest.mark.parametrize("value, says", [
    ("per-seed", "did you mean 'per_seed'"), (1.5, "got 1.5"), (True, "got True"), ([1], "got [1]"), ("", "got ''"),
])
def test_a_bad_data_seed_is_one_line_naming_the_key(value, says, tmp_path):
    with pytest.raises(SpecError) as err:
        parse_spec(_raw(value), "ds.toml", tmp_path)
    msg = str(err.value)
    assert "study.data_seed" in msg and "per_seed" in msg and says in msg and "\n" not in msg


@pytest.mark.parametrize("line", ['data_seed = "per-seed"', "data_seed = 1.5", "data_seed = true", "data_seed = [1]"])
def test_the_cli_refuses_a_bad_data_seed_with_one_line_and_exit_2(line, tmp_path, capsys):
    from dqcl.cli import main

    text = "\n".join([
        "[study]", 'name = "bad"', "seeds = [0]", 'device = "cpu"', line,
        "[data]", "patch_size = 48", "stride = 48", f'cache_dir = "{(tmp_path / "cache").as_posix()}"',
        "[domains.cyto]", "n_train = 2", "n_test = 1", "size = 96", "[strategies.naive]", "",
    ])
    spec = tmp_path / "bad.toml"
    spec.write_text(text)
    capsys.readouterr()
    code = main(["run", "benchmark", str(spec), "--store", str(tmp_path / "store.sqlite"), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert len(err.splitlines()) == 1 and err.startswith("dqcl: error:") and "study.data_seed" in err, err
    assert "Traceback" not in err
    assert not (tmp_path / "store.sqlite").exists()


# --- folder domains: resplit ------------------------------------------------------------------

def _folder(root: Path, n_train: int = 6, n_test: int = 3) -> Path:
    """A cellpose-layout folder of small images, each with a different number of squares."""
    from skimage import io

    for split, n, first in (("train", n_train, 0), ("test", n_test, n_train)):
        (root / split).mkdir(parents=True)
        for i in range(first, first + n):
            img = np.zeros((64, 64), np.uint16)
            mask = np.zeros((64, 64), np.uint16)
            for j in range(i % 4 + 1):
                y, x = 4 + 15 * j, 4 + 9 * (i % 5)
                mask[y:y + 10, x:x + 10] = j + 1
                img[y:y + 10, x:x + 10] = 1000 * (j + 1) + 37 * i
            io.imsave(root / split / f"p{i}_img.png", img, check_contrast=False)
            io.imsave(root / split / f"p{i}_masks.png", mask, check_contrast=False)
    return root


def test_resplit_draws_the_test_files_by_the_seed_keeping_the_count_and_no_file_in_both(tmp_path):
    root = _folder(tmp_path / "data")
    plain = load_folder(root, seed=0)
    pool = {f"train/{n}" for n in plain.train.names} | {f"test/{n}" for n in plain.test.names}
    tests = {}
    for seed in (0, 1, 2, 0):
        d = load_folder(root, seed=seed, resplit=True)
        train, test = set(d.train.names), set(d.test.names)
        assert len(d.test) == len(plain.test) and len(d.train) == len(plain.train)
        assert not train & test and train | test == pool
        # each name still holds its own image and mask
        for split in (d.train, d.test):
            for name, img, mask in zip(split.names, split.images, split.masks):
                folder, stem = name.split("/")
                src = plain.train if folder == "train" else plain.test
                k = src.names.index(stem)
                assert np.array_equal(img, src.images[k]) and np.array_equal(mask, src.masks[k])
        tests.setdefault(seed, test)
        assert tests[seed] == test  # the same seed, the same split
    assert len({frozenset(t) for t in tests.values()}) == 3  # seeds 0, 1 and 2 draw different test files
    # without resplit the seed changes nothing
    assert load_folder(root, seed=5).test.names == plain.test.names


def test_resplit_keeps_stated_diameters_and_names_a_stem_found_in_both_folders_apart(tmp_path):
    root = _folder(tmp_path / "data", n_train=2, n_test=1)
    (root / "test" / "p2_img.png").rename(root / "test" / "p0_img.png")
    (root / "test" / "p2_masks.png").rename(root / "test" / "p0_masks.png")
    d = load_folder(root, seed=3, resplit=True, diameter=12.0)
    assert sorted(d.train.names + d.test.names) == ["test/p0", "train/p0", "train/p1"]
    assert d.train.diameters == (12.0, 12.0) and d.test.diameters == (12.0,)


def test_resplit_in_a_spec_is_in_the_key_only_when_true_and_draws_per_seed_data(tmp_path):
    root = _folder(tmp_path / "data")

    def runs(**params):
        domains = {"mine": {"kind": "folder", "path": str(root), **params}}
        return expand(parse_spec(_raw("per_seed", domains=domains), "ds.toml", tmp_path))

    plain, off, on = runs(), runs(resplit=False), runs(resplit=True)
    assert [r.key for r in plain] == [r.key for r in off]
    assert "resplit" not in off[0].domains[0].params
    assert not {r.key for r in on} & {r.key for r in plain}
    cache = tmp_path / "cache"
    # resplit: another seed, another test set; without it, every seed is scored on test/
    assert _record(on[0], cache)["mine"]["test_hash"] != _record(on[1], cache)["mine"]["test_hash"]
    assert _record(plain[0], cache) == _record(plain[1], cache)
    with pytest.raises(SpecError, match=r"domains\.mine\.resplit: expected bool"):
        runs(resplit="yes")


def test_preflight_reads_a_folder_once_for_every_data_seed(tmp_path, monkeypatch):
    from dqcl.study.preflight import preflight

    root = _folder(tmp_path / "data")
    domains = {"mine": {"kind": "folder", "path": str(root)}, "cyto": {"n_train": 2, "n_test": 1, "size": 96}}
    spec = parse_spec(_raw("per_seed", seeds=(0, 1, 2), domains=domains), "ds.toml", tmp_path)
    from dqcl.data import folders

    reads = []
    read_split = folders.read_split
    monkeypatch.setattr(folders, "read_split", lambda folder, *a: reads.append(Path(folder).name) or read_split(folder, *a))
    cache = PreparedDomains()
    study = preflight(spec, cache=cache)
    assert [r.data_seed for r in study.runs] == [0, 1, 2]
    assert reads == ["train", "test"]
    # the runs of the other data seeds find that read (without resplit the seed does not split a folder)
    mine = study.runs[2].domains[0]
    manifest = dict(study.runs[2].data_manifests)["mine"]
    assert cache.domain(mine.kind, mine.params, 2, manifest) is cache.domain(mine.kind, mine.params, 0, manifest)
    assert reads == ["train", "test"]


# --- the data record -------------------------------------------------------------------------

def test_data_record_counts_patches_and_test_objects_per_patch(tmp_path):
    from dqcl.data.streams import PatchData

    labels = np.zeros((2, 1, 8, 8), np.float32)
    labels[0, 0, :2, :2], labels[0, 0, 4:, 4:] = 1, 2  # two objects in the first patch
    labels[1, 0, :3, :3] = 1  # one in the second (perhaps the same object, cut by the border: it counts again)
    targets = np.concatenate([labels, (labels > 0).astype(np.float32), np.zeros((2, 2, 8, 8), np.float32)], axis=1)
    test = PatchData("d", "test", np.ones((2, 1, 8, 8), np.float32), targets, ("a@0,0", "a@0,8"))
    train = PatchData("d", "train", np.zeros((3, 1, 8, 8), np.float32), np.zeros((3, 4, 8, 8), np.float32), ("b",) * 3)
    rec = data_record([(train, test)])
    assert rec["d"]["train_patches"] == 3 and rec["d"]["test_patches"] == 2 and rec["d"]["test_objects"] == 3
    assert len(rec["d"]["train_hash"]) == 16 and rec["d"]["train_hash"] != rec["d"]["test_hash"]
    json.dumps(rec)  # stored with the result as JSON
    changed = PatchData("d", "test", test.images, targets * np.float32(1.0001), test.names)
    assert data_record([(train, changed)])["d"]["test_hash"] != rec["d"]["test_hash"]
