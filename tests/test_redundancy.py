import json

from dqcl.cli import main
from dqcl.config.expand import expand
from dqcl.config.parse import load_spec

SPEC = """
[study]
name = "red"
seeds = [0, 1]
device = "cpu"
[redundancy]
rates = [0.25, 1.0]
selectors = ["mmv", "random"]
bins = 2
steps = 2
[data]
patch_size = 48
stride = 48
diameter = 0  # images as drawn, by generator 1 (96 px squares): the subset sizes below count their patches
cache_dir = "{cache}"
[domains.nuclei]
n_train = 4
n_test = 1
size = 96
generator = 1
[model]
widths = [8, 16, 32, 64]
[train]
batch_size = 4
[eval]
niter = 50
"""


def test_redundancy_study_runs_tables_and_plots(tmp_path, capsys):
    spec = tmp_path / "red.toml"
    spec.write_text(SPEC.format(cache=(tmp_path / "c").as_posix()))
    runs = expand(load_spec(spec))
    # 0.25 x {mmv, random} + 1.0 once ('all'), for 2 seeds
    assert sorted((r.strategy.label, r.subset.rate) for r in runs if r.seed == 0) == [("all", 1.0), ("mmv", 0.25), ("random", 0.25)]
    store = tmp_path / "r.sqlite"
    assert main(["run", "redundancy", str(spec), "--store", str(store), "--quiet"]) == 0
    assert "6 run(s) done" in capsys.readouterr().out
    out = tmp_path / "lb"
    assert main(["leaderboard", "build", "--store", str(store), "--out", str(out)]) == 0
    entries = json.loads((out / "leaderboard.json").read_text())
    mmv = [e for e in entries if e["selector"] == "mmv" and e["metric"] == "ap50"]
    assert len(mmv) == 2 and all(e["subset_size"] == 4 for e in mmv)  # 16 patches, 2 bins of 8, int(8 x 0.25) = 2 each
    assert all(e["baseline"] == [None] for e in mmv)
    md = (out / "leaderboard.md").read_text()
    assert "## red — ap50 (redundancy: nuclei from scratch on subsets, n = 2 seeds)" in md
    assert "| mmv" in md and "25 %" in md and "100 %" in md
    assert (out / "red_ap50_saturation.png").read_bytes()[:4] == b"\x89PNG"


def test_redundancy_spec_errors(tmp_path, capsys):
    spec = tmp_path / "red.toml"
    spec.write_text(SPEC.format(cache="c").replace('selectors = ["mmv", "random"]', 'selectors = ["mvm"]'))
    assert main(["run", "redundancy", str(spec), "--store", str(tmp_path / "s.sqlite")]) == 2
    assert "unknown selector 'mvm'" in capsys.readouterr().err
    spec.write_text(SPEC.format(cache="c").replace("rates = [0.25, 1.0]", "rates = [0.0, 1.0]"))
    assert main(["run", "redundancy", str(spec), "--store", str(tmp_path / "s.sqlite")]) == 2
    assert "every rate must be in (0, 1]" in capsys.readouterr().err
    # a continual spec is not a redundancy study, and the reverse
    spec.write_text(SPEC.format(cache="c"))
    assert main(["run", "benchmark", str(spec), "--store", str(tmp_path / "s.sqlite")]) == 2
    assert "run it with 'dqcl run redundancy'" in capsys.readouterr().err


def test_diversity_picture(tmp_path, capsys):
    out = tmp_path / "div.png"
    assert main(["domains", "diversity", "nuclei", "--out", str(out), "--n-train", "3", "--patch", "48", "--method", "pca", "--bins", "3"]) == 0
    assert out.read_bytes()[:4] == b"\x89PNG"
