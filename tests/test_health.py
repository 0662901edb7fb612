"""The leaderboard's health flags: what a reviewer would ask about a table is found in the stored
runs and printed beside it (a run that diverged, learned nothing, equals naive, or seeds that
disagree; joint below naive)."""

import math

from dqcl.cli import main
from dqcl.evaluation.metrics import METRICS
from dqcl.results.store import Store


def _put(store, label, seed, R, *, digest=None, loss=0.5):
    cfg = {"study": "s", "strategy": {"label": label, "name": label, "params": {}}, "ordering": ["cyto", "histo"], "seed": seed}
    curve = [{"experience": e, "epoch": 0, "loss": loss if e == 1 else 0.5, "lr": 0.05, "images": 8, "steps": 1}
             for e in range(len(R))]
    res = {"R": {m: R for m in METRICS}, "baseline": {m: [0.0, 0.0] for m in METRICS}, "curve": curve,
           "model_sha256": digest or f"{label}{seed}", "timings": {"train_s": [1.0], "eval_s": [1.0], "total_s": 2.0}}
    store.put(f"{label}{seed}", cfg, res)


def _flags(tmp_path):
    assert main(["leaderboard", "build", "--store", str(tmp_path / "r.sqlite"), "--out", str(tmp_path / "lb")]) == 0
    md = (tmp_path / "lb" / "leaderboard.md").read_text()
    return [line for line in md.splitlines() if line.startswith("- cyto → histo, ")]


def test_each_problem_a_reviewer_would_ask_about_is_flagged(tmp_path):
    with Store(tmp_path / "r.sqlite") as store:
        for seed in range(3):
            _put(store, "naive", seed, [[0.7, 0.0], [0.0, 0.6]])
            _put(store, "joint", seed, [[0.2, 0.2]])  # below naive's ACC of 0.3
            _put(store, "copycat", seed, [[0.7, 0.0], [0.0, 0.6]], digest=f"naive{seed}")
            _put(store, "moody", seed, [[0.7, 0.0], [0.2 if seed else 0.0, 0.6 if seed else 0.2]])
            _put(store, "exploding", seed, [[0.7, 0.0], [0.0, 0.0 if seed == 2 else 0.6]],
                 loss=math.nan if seed == 2 else 0.5)
    flags = _flags(tmp_path)
    assert any(f.startswith("- cyto → histo, copycat: same as naive") and "[0, 1, 2]" in f for f in flags)
    assert any(f.startswith("- cyto → histo, joint: joint below naive") for f in flags)
    assert any(f.startswith("- cyto → histo, moody: seeds disagree") for f in flags)
    assert any(f.startswith("- cyto → histo, exploding: diverged") and "seed(s) 2 (experience 1)" in f for f in flags)
    assert any(f.startswith("- cyto → histo, exploding: learned nothing") and "[2]" in f for f in flags)
    assert not any(", naive:" in f for f in flags)  # a healthy strategy raises nothing


def test_a_healthy_table_says_so(tmp_path):
    with Store(tmp_path / "r.sqlite") as store:
        for seed in range(3):
            _put(store, "naive", seed, [[0.7, 0.0], [0.0, 0.6]])
            _put(store, "joint", seed, [[0.65, 0.6]])
    assert _flags(tmp_path) == []
    assert "Health: no flag" in (tmp_path / "lb" / "leaderboard.md").read_text()
