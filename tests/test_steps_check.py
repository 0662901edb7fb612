"""benchmarks/steps_check.py: the under-training check pairs each 500-step run with the published
250-step run of the same strategy, ordering and seed, on the same data, and reports the paired change;
a pair trained on other data is refused in one line, and the committed check store pairs whole."""

import importlib.util
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("steps_check", ROOT / "benchmarks" / "steps_check.py")
steps_check = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(steps_check)


def _frame(scores: dict[tuple[str, int], tuple[float, float, float]], data: str = "d") -> pd.DataFrame:
    rows = []
    for (strategy, seed), (plasticity, acc, forgetting) in scores.items():
        for metric in ("ap50", "iou"):
            rows.append({"strategy": strategy, "ordering": "cyto>histo", "seed": seed, "metric": metric,
                         "plasticity": plasticity, "acc": acc, "forgetting": forgetting, "data_manifests": f"{data}{seed}"})
    return pd.DataFrame(rows)


def test_each_seed_is_paired_with_its_own_published_run():
    published = _frame({("naive", 0): (0.60, 0.40, 0.30), ("naive", 1): (0.50, 0.45, 0.20), ("naive", 2): (0.55, 0.50, 0.25),
                        ("joint", 0): (0.6, 0.6, 0.0)})
    # 500 steps: plasticity +0.05 on every seed, ACC +0.01/+0.03/+0.05, forgetting unchanged; joint was not rerun
    check = _frame({("naive", 0): (0.65, 0.41, 0.30), ("naive", 1): (0.55, 0.48, 0.20), ("naive", 2): (0.60, 0.55, 0.25)})
    rows = {r["measure"]: r for r in steps_check.paired(published, check)}
    assert set(rows) == {"plasticity", "acc", "forgetting"} and all(r["seeds"] == 3 and r["strategy"] == "naive" for r in rows.values())
    assert rows["plasticity"]["change"] == pytest.approx(0.05) and rows["plasticity"]["lo"] == pytest.approx(0.05)
    assert rows["acc"]["change"] == pytest.approx(0.03) and rows["acc"]["lo"] < 0.03 < rows["acc"]["hi"]
    assert rows["acc"]["250 steps"] == pytest.approx(0.45) and rows["acc"]["500 steps"] == pytest.approx(0.48)
    assert rows["forgetting"]["change"] == pytest.approx(0.0)


def test_a_pair_on_other_data_is_refused_in_one_line(monkeypatch, capsys):
    published = _frame({("naive", 0): (0.6, 0.4, 0.3), ("naive", 1): (0.5, 0.45, 0.2)})
    check = _frame({("naive", 0): (0.65, 0.41, 0.3), ("naive", 1): (0.55, 0.48, 0.2)}, data="other")
    monkeypatch.setattr(steps_check.dqcl, "load_results", lambda source, study: published if study == "budget_baselines" else check)
    assert steps_check.main([]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "naive/cyto>histo/0" in err and "other data" in err


def test_the_committed_check_pairs_every_run_on_the_published_data(capsys):
    store = ROOT / "leaderboard" / "steps_check.sqlite"
    assert steps_check.main(["--published", str(ROOT / "leaderboard" / "runs.sqlite"), "--check", str(store)]) == 0
    table = capsys.readouterr().out.splitlines()
    # two orderings x (naive: plasticity, ACC, forgetting; joint, one experience: ACC), each over three seeds
    assert len(table) == 2 + 2 * (3 + 1) and all("| 3 |" in line and "nan" not in line for line in table[2:])
