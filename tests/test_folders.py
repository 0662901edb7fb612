import os

import numpy as np
import pytest

from dqcl.errors import DataError
from dqcl.data.folders import load_folder
from dqcl.data.imageio import read_image, read_mask

from conftest import small_domain_arrays, write_pair


def _make(root, layout="cellpose", n=2):
    imgs, masks = small_domain_arrays(n)
    sfx = {"cellpose": ("_img", "_masks", ".png"), "paper": ("_IM", "_GT", ".tif"), "suffix": ("_raw", "_lab", ".tif")}[layout]
    for split in ("train", "test"):
        for i, (im, m) in enumerate(zip(imgs, masks)):
            # the test split holds other images (turned upside down): a test image may never be a training image
            write_pair(root / split, f"s{i}", *((im, m) if split == "train" else (np.flipud(im), np.flipud(m))), *sfx)
    return imgs, masks


@pytest.mark.parametrize("layout", ["cellpose", "paper"])
def test_auto_detects_cellpose_and_paper_layouts(tmp_path, layout):
    _, masks = _make(tmp_path, layout)
    dom = load_folder(tmp_path, name="mine")
    assert dom.name == "mine" and len(dom.train) == 2 and len(dom.test) == 2
    assert dom.train.names == ("s0", "s1")
    assert np.array_equal(dom.train.masks[0], masks[0])
    img = dom.train.images[0]
    assert img.dtype == np.float32
    assert abs(np.percentile(img, 1)) < 1e-5 and abs(np.percentile(img, 99) - 1) < 1e-5  # percentile-normalised


def test_user_suffixes(tmp_path):
    _make(tmp_path, "suffix")
    dom = load_folder(tmp_path, layout="suffix", image_suffix="_raw", mask_suffix="_lab")
    assert len(dom.train) == 2


def test_rgb_and_8bit_images_become_gray(tmp_path):
    rgb = np.zeros((40, 50, 3), np.uint8)
    rgb[10:20, 10:20] = (200, 100, 0)  # mean of channels = 100
    write_pair(tmp_path, "x", rgb, np.zeros((40, 50), np.uint8))
    img = read_image(tmp_path / "x_img.png")
    assert img.shape == (40, 50)
    assert img[15, 15] > img[0, 0]


@pytest.mark.parametrize(
    "breakage,message",
    [
        ("drop-mask", "image has no mask"),
        ("drop-image", "mask has no image"),
        ("shape", "differs from image shape"),
        ("float", "non-integer"),
        ("negative", "negative labels"),
        ("empty", "found neither Cellpose"),
        ("zero-byte", "empty file"),
        ("not-image", "cannot read as an image"),
        ("no-test", "no such folder"),
    ],
)
def test_bad_folders_name_the_file_and_problem(tmp_path, breakage, message):
    import tifffile

    _make(tmp_path)
    tr = tmp_path / "train"
    bad = {
        "drop-mask": lambda: (tr / "s0_masks.png").unlink(),
        "drop-image": lambda: (tr / "s1_img.png").unlink(),
        "shape": lambda: write_pair(tr, "s0", np.zeros((30, 30), np.uint16), np.zeros((31, 30), np.uint16)),
        "float": lambda: ((tr / "s0_masks.png").unlink(), tifffile.imwrite(tr / "s0_masks.tif", np.full((64, 64), 0.5, np.float32))),
        "negative": lambda: ((tr / "s0_masks.png").unlink(), tifffile.imwrite(tr / "s0_masks.tif", -np.ones((64, 64), np.int16))),
        "empty": lambda: [p.unlink() for p in tr.iterdir()],
        "zero-byte": lambda: (tr / "s0_img.png").write_bytes(b""),
        "not-image": lambda: (tr / "s0_img.png").write_text("hello"),
        "no-test": lambda: [p.unlink() for p in (tmp_path / "test").iterdir()] and (tmp_path / "test").rmdir(),
    }[breakage]
    bad()
    with pytest.raises(DataError, match=message) as err:
        load_folder(tmp_path)
    assert str(tmp_path) in str(err.value)


def test_missing_folder(tmp_path):
    with pytest.raises(DataError, match="no such folder"):
        load_folder(tmp_path / "nope")


def test_label_gaps_and_integral_float_masks_are_accepted(tmp_path):
    import tifffile

    m = np.zeros((20, 20), np.float32)
    m[2:6, 2:6] = 3.0
    m[10:15, 10:15] = 7.0
    tifffile.imwrite(tmp_path / "m.tif", m)
    out = read_mask(tmp_path / "m.tif")
    assert out.dtype == np.int32 and set(np.unique(out)) == {0, 3, 7}


def test_a_study_reads_each_folder_pair_once_and_rereads_a_changed_folder(tmp_path, monkeypatch):
    """Preflight reads and checks every pair; the study's runs reuse what it read. A folder
    changed before the next study in the same process is read again, not served stale."""
    import dqcl.data.folders as folders_mod
    from dqcl.cli import main

    from conftest import tiny_spec_text

    _make(tmp_path / "mine", n=2)
    reads = []
    real = folders_mod.read_pair
    monkeypatch.setattr(folders_mod, "read_pair", lambda i, m: reads.append(i.name) or real(i, m))
    text = tiny_spec_text(tmp_path, "[strategies.naive]\n").replace(
        '[domains.histo]\nn_train = 2\nn_test = 1\nsize = 96', '[domains.histo]\nkind = "folder"\npath = "mine"')
    spec = tmp_path / "s.toml"
    spec.write_text(text.replace("seeds = [0]", "seeds = [0, 1]"))
    store = tmp_path / "r.sqlite"
    assert main(["run", "benchmark", str(spec), "--store", str(store), "--quiet"]) == 0
    assert sorted(reads) == ["s0_img.png", "s0_img.png", "s1_img.png", "s1_img.png"]  # 2 train + 2 test, once each for 2 runs

    imgs, masks = small_domain_arrays(3, seed=5)
    write_pair(tmp_path / "mine" / "train", "s2", imgs[2], masks[2])
    reads.clear()
    assert main(["run", "benchmark", str(spec), "--store", str(store), "--quiet"]) == 0
    assert sorted(reads) == ["s0_img.png", "s0_img.png", "s1_img.png", "s1_img.png", "s2_img.png"]


def test_a_folder_that_states_its_diameter_is_rescaled_from_it(tmp_path):
    """Images go to the spec's diameter from the diameter the folder states, not from their masks."""
    from conftest import small_domain_arrays, write_pair

    from dqcl.data.domains import DOMAINS
    from dqcl.data.streams import prepare

    imgs, masks = small_domain_arrays(2, 64)
    for split in ("train", "test"):
        for i in range(2):
            flip = (lambda a: a) if split == "train" else np.flipud  # test images are not training images
            write_pair(tmp_path / "d" / split, f"s{i}", flip(imgs[i]), flip(masks[i]))
    stated = DOMAINS.get("folder").factory(path=str(tmp_path / "d"), diameter=8.0)
    measured = DOMAINS.get("folder").factory(path=str(tmp_path / "d"))
    a = prepare(stated, "train", 32, 32, diameter=16.0)
    b = prepare(measured, "train", 32, 32, diameter=16.0)
    assert a.scales == (2.0, 2.0)  # 16 / 8 for every image
    assert b.scales != a.scales and all(s > 0 for s in b.scales)


def _flat(root, n=6, img_sfx="", ext=".tif"):
    """A flat folder as a Cellpose user keeps it: name.tif beside name_masks.tif (Cellpose's default naming)."""
    imgs, masks = small_domain_arrays(n)
    for i, (im, m) in enumerate(zip(imgs, masks)):
        write_pair(root, f"cell{i}", im, m, img_sfx, "_masks", ext)
    return imgs, masks


def test_a_flat_folder_in_cellposes_own_naming_is_split_by_holdout_and_the_data_seed(tmp_path):
    _flat(tmp_path)
    a, b = load_folder(tmp_path, holdout=0.34, seed=0), load_folder(tmp_path, holdout=0.34, seed=0)
    assert len(a.test) == 2 and len(a.train) == 4 and a.test.names == b.test.names  # round(0.34 x 6) held out, the same again
    assert set(a.train.names).isdisjoint(a.test.names) and set(a.train.names) | set(a.test.names) == {f"cell{i}" for i in range(6)}
    others = {load_folder(tmp_path, holdout=0.34, seed=s).test.names for s in range(1, 8)}
    assert len(others | {a.test.names}) > 1  # the data seed varies the split
    assert len(load_folder(tmp_path, holdout=0.01).test) == 1 and len(load_folder(tmp_path, holdout=0.95).train) == 1  # never none


def test_holdout_refuses_a_folder_with_a_train_split_and_a_single_pair(tmp_path):
    _make(tmp_path)
    with pytest.raises(DataError, match="holds train/ already"):
        load_folder(tmp_path, holdout=0.2)
    single = tmp_path / "single"
    _flat(single, n=1)
    with pytest.raises(DataError, match="1 image/mask pair; holdout needs at least 2"):
        load_folder(single, holdout=0.2)


def test_a_spec_folder_with_holdout_is_seed_dependent_and_keys_without_it_stay(tmp_path):
    from dqcl.config.expand import expand
    from dqcl.config.parse import parse_spec

    _flat(tmp_path / "mine")

    def keys(extra):
        raw = {"study": {"name": "f", "seeds": [0, 1], "orderings": [["mine"]], "data_seed": "per_seed", "device": "cpu"},
               "data": {"patch_size": 48, "stride": 48, "cache_dir": str(tmp_path / "c")},
               "domains": {"mine": {"kind": "folder", "path": str(tmp_path / "mine"), **extra}},
               "model": {"widths": [8, 16, 32, 64]}, "strategies": {"naive": {}}}
        return [c.key for c in expand(parse_spec(raw))]

    assert keys({"holdout": 0}) == keys({}) != keys({"holdout": 0.25})
