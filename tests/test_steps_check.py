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


@pytest.mark.parametrize("column,theirs,says", [
    ("data_draw", ("each seed its own", "data seed 0"), "another data draw"),
    ("cellpose", ("4.2.1.1", "3.1.1.3"), "another Cellpose"),
    ("train_hashes", ({"cyto": "a"}, {"cyto": "b"}), "other images"),
])
def test_a_pair_of_another_protocol_is_refused_in_one_line(monkeypatch, capsys, column, theirs, says):
    """One-draw runs are never paired with per-seed runs, nor Cellpose 3 runs with Cellpose 4 runs."""
    published = _frame({("naive", 0): (0.6, 0.4, 0.3), ("naive", 1): (0.5, 0.45, 0.2)})
    check = _frame({("naive", 0): (0.65, 0.41, 0.3), ("naive", 1): (0.55, 0.48, 0.2)})
    published[column] = [theirs[0]] * len(published)
    check[column] = [theirs[1]] * len(check)
    monkeypatch.setattr(steps_check.dqcl, "load_results", lambda source, study: published if study == "budget_baselines" else check)
    assert steps_check.main([]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("dqcl: error: steps_check: naive/cyto>histo/0") and says in err, err


def test_two_runs_under_one_label_and_a_json_without_measures_are_refused_in_one_line(tmp_path, monkeypatch, capsys):
    published = _frame({("naive", 0): (0.6, 0.4, 0.3), ("naive", 1): (0.5, 0.45, 0.2)})
    doubled = pd.concat([published, published])  # two budgets (or protocols) that a store from elsewhere gave one label
    check = _frame({("naive", 0): (0.65, 0.41, 0.3), ("naive", 1): (0.55, 0.48, 0.2)})
    monkeypatch.setattr(steps_check.dqcl, "load_results", lambda source, study: doubled if study == "budget_baselines" else check)
    assert steps_check.main([]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "two runs of naive/cyto>histo/0" in err, err
    bare = published.drop(columns=["plasticity", "acc", "forgetting"])
    monkeypatch.setattr(steps_check.dqcl, "load_results", lambda source, study: bare)
    assert steps_check.main(["--published", "x.json"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "x.json: its rows have no plasticity, acc, forgetting" in err, err


def _converge_frames(acc: dict[int, dict[tuple[str, str], float]]) -> dict[str, pd.DataFrame]:
    """Studies steps_converge_N: per step count, the ACC of (strategy, ordering) on three seeds (+-0.002 by seed)."""
    frames = {}
    for steps, cells in acc.items():
        rows = []
        for (strategy, ordering), value in cells.items():
            for seed in range(3):
                for metric in ("ap50", "iou"):
                    rows.append({"strategy": strategy, "ordering": ordering, "seed": seed, "metric": metric, "plasticity": 0.6,
                                 "acc": value + 0.002 * (seed - 1), "forgetting": 0.2, "data_manifests": f"d{seed}"})
        frames[f"steps_converge_{steps}"] = pd.DataFrame(rows)
    return frames


CELLS = [("naive", "cyto>histo"), ("naive", "histo>cyto"), ("joint", "cyto>histo"), ("joint", "histo>cyto")]


def test_the_published_step_count_is_the_smallest_whose_doubling_moves_acc_less_than_001(monkeypatch, capsys):
    # 250 -> 500: joint on histo>cyto gains 0.02 (not converged); 500 -> 1000: every cell moves under 0.01
    acc = {250: {c: 0.50 for c in CELLS}, 500: {c: 0.505 for c in CELLS}, 1000: {c: 0.51 for c in CELLS}}
    acc[500][("joint", "histo>cyto")] = 0.52
    acc[1000][("joint", "histo>cyto")] = 0.525
    frames = _converge_frames(acc)
    monkeypatch.setattr(steps_check.dqcl, "load_results", lambda source, study: frames.get(study, pd.DataFrame()))
    assert steps_check.main(["--converge", "s.sqlite", "--steps-only"]) == 0
    assert capsys.readouterr().out.strip() == "500"
    assert steps_check.main(["--converge", "s.sqlite"]) == 0
    out = capsys.readouterr().out
    assert "250 steps: doubling moves mean ACC by at most +0.020 (joint, histo>cyto), not below 0.01" in out
    assert "Published step count: 500" in out and "### 500 against 1000 steps" in out


def test_no_step_count_passes_with_a_cell_missing_or_still_moving(monkeypatch, capsys):
    acc = {250: {c: 0.50 for c in CELLS}, 500: {c: 0.53 for c in CELLS}, 1000: {c: 0.535 for c in CELLS[:3]}}  # no joint histo>cyto at 1000
    frames = _converge_frames(acc)
    monkeypatch.setattr(steps_check.dqcl, "load_results", lambda source, study: frames.get(study, pd.DataFrame()))
    assert steps_check.main(["--converge", "s.sqlite", "--steps-only"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no step count is shown converged" in err and "3 of 4 strategy-ordering cells" in err


def test_the_extension_to_2000_steps_can_show_1000_converged(monkeypatch, capsys):
    # the committed extension: 250 -> 500 -> 1000 still moving by 0.03, 1000 -> 2000 by 0.005 on every cell
    acc = {250: {c: 0.50 for c in CELLS}, 500: {c: 0.53 for c in CELLS}, 1000: {c: 0.56 for c in CELLS}}
    frames = _converge_frames(acc)
    monkeypatch.setattr(steps_check.dqcl, "load_results", lambda source, study: frames.get(study, pd.DataFrame()))
    assert steps_check.main(["--converge", "s.sqlite", "--steps-only"]) == 2  # before its runs: nothing shown converged
    assert "no step count is shown converged" in capsys.readouterr().err
    part = _converge_frames({2000: {c: 0.565 for c in CELLS}})["steps_converge_2000"]
    frames["steps_converge_2000"] = part[part.seed < 2]  # two seeds of three stored: the rule asks for the same 12 runs
    assert steps_check.main(["--converge", "s.sqlite", "--steps-only"]) == 2
    assert "1000 steps: undecided, 8 of the 12 runs at 2000 steps are stored" in capsys.readouterr().err
    frames.update(_converge_frames({2000: {c: 0.565 for c in CELLS}}))
    assert steps_check.main(["--converge", "s.sqlite", "--steps-only"]) == 0
    assert capsys.readouterr().out.strip() == "1000"
    frames.update(_converge_frames({2000: {**{c: 0.565 for c in CELLS}, ("naive", "histo>cyto"): 0.58}}))  # one cell moves 0.02
    assert steps_check.main(["--converge", "s.sqlite"]) == 0
    out = capsys.readouterr().out
    assert "1000 steps: doubling moves mean ACC by at most +0.020 (naive, histo>cyto), not below 0.01" in out
    assert "No step count of (250, 500, 1000) is shown converged." in out
