import numpy as np
import pytest

from dqcl.cli import main
from dqcl.dq.selectors import select

from conftest import small_domain_arrays, write_pair


def test_select_on_a_feature_file(tmp_path, capsys):
    x = np.random.default_rng(0).standard_normal((300, 12)).astype(np.float32)
    np.save(tmp_path / "f.npy", x)
    out = tmp_path / "idx.npy"
    assert main(["select", str(tmp_path / "f.npy"), "--ratio", "0.1", "--bins", "10", "--variant", "mmv", "--out", str(out)]) == 0
    idx = np.load(out)
    assert idx.dtype == np.int64 and np.all(np.diff(idx) > 0)
    assert idx.tolist() == select(x, 0.1, 10, "mmv").tolist()
    assert "selected 30 of the rows" in capsys.readouterr().out


@pytest.mark.parametrize(
    "array,args,message",
    [
        (np.zeros((3, 4, 5)), ["--ratio", "0.1"], "expected a 2-D array"),
        (np.array([[1.0, np.inf], [0.0, 0.0]]), ["--ratio", "0.5", "--bins", "1"], "hold NaN or inf"),
        (np.ones((10, 2)), ["--ratio", "0"], "ratio must be in (0, 1]"),
        (np.ones((10, 2)), ["--ratio", "0.5", "--bins", "11"], "bins must be between 1 and the number of samples (10)"),
    ],
)
def test_bad_feature_files_exit_2(tmp_path, capsys, array, args, message):
    np.save(tmp_path / "f.npy", array)
    assert main(["select", str(tmp_path / "f.npy"), *args, "--out", str(tmp_path / "o.npy")]) == 2
    err = capsys.readouterr().err
    assert message in err and "f.npy" in err and "Traceback" not in err
    assert not (tmp_path / "o.npy").exists()


def test_not_an_npy_file(tmp_path, capsys):
    (tmp_path / "f.npy").write_text("nope")
    assert main(["select", str(tmp_path / "f.npy"), "--ratio", "0.5", "--out", str(tmp_path / "o.npy")]) == 2
    assert "not a NumPy .npy array" in capsys.readouterr().err


def test_select_on_an_image_folder_writes_names_and_copies_pairs(tmp_path, capsys):
    imgs, masks = small_domain_arrays(10, size=64)
    folder = tmp_path / "imgs"
    for i, (im, m) in enumerate(zip(imgs, masks)):
        write_pair(folder, f"cell{i:02d}", im, m, img_sfx="", mask_sfx="_masks")  # Cellpose's own naming
    names = tmp_path / "chosen.txt"
    dest = tmp_path / "subset"
    assert main(["select", str(folder), "--ratio", "0.3", "--bins", "3", "--out", str(names), "--copy-to", str(dest)]) == 0
    chosen = names.read_text().split()
    assert len(chosen) == 3 and all(n.startswith("cell") and n.endswith(".png") for n in chosen)
    copied = sorted(p.name for p in dest.iterdir() if p.name != ".dqcl_selection")  # the mark of a folder dqcl filled
    assert len(copied) == 6 and sum(p.endswith("_masks.png") for p in copied) == 3


def test_empty_folder(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["select", str(tmp_path / "empty"), "--ratio", "0.5", "--out", str(tmp_path / "n.txt")]) == 2
    assert "no images found" in capsys.readouterr().err
