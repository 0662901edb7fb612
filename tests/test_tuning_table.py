"""The leaderboard's tuned-beside-untuned table (`dqcl.results.tuning`): each tuned strategy beside its
untuned cells at the same ordering and memory budget, never pooled, with the protocol each trained under."""

import json
import math

import pytest

from dqcl.results.html import index_html
from dqcl.results.tuning import tuning_table

ORDER = ["cyto", "histo"]
BUDGET = {"size": 32, "rate": 0.0, "protocol": "batch", "replay_batch": 2, "compute": "matched"}
TUNED = {"trials": 8, "validation": 0.25, "file": "budget_baselines.json", "sha256": "ab12",
         "space": {"lr": [0.005, 0.2], "ewc_lambda": [1.0, 1e5]}}


def _e(study, label, name, seed, acc, forgetting, tuned=None, params=None, memory=None, steps=(250, 250),
       schedule="constant", ordering=ORDER):
    return {"metric": "ap50", "selector": None, "study": study, "strategy": label, "strategy_name": name,
            "ordering": list(ordering), "memory": memory, "params": params or {}, "train_lr": 0.05, "tuned": tuned,
            "steps": list(steps), "schedule": schedule, "seed": seed, "acc": acc, "forgetting": forgetting}


def _rows():
    rows = []
    for s, (a, b) in enumerate([(0.40, 0.60), (0.44, 0.66), (0.42, 0.63)]):
        rows.append(_e("untuned", "ewc", "ewc", s, a, 0.30, params={"ewc_lambda": 100.0}))
        rows.append(_e("tuned", "ewc", "ewc", s, b, 0.10, tuned=TUNED, params={"ewc_lambda": 4.25e4, "lr": 0.0406},
                       steps=(1000, 1000), schedule="cosine"))
        rows.append(_e("untuned", "replay", "replay", s, 0.7, 0.05, memory=BUDGET))  # never tuned: not shown
        rows.append(_e("tuned", "ewc", "ewc", s, 0.5, 0.2, tuned=TUNED, params={"ewc_lambda": 1.0, "lr": 0.01},
                       ordering=ORDER[::-1]))  # no untuned ewc in this ordering: nothing to stand beside
    return rows


def test_tuned_and_untuned_cells_stand_side_by_side_with_hand_computed_cells():
    headers, table = tuning_table(_rows())
    col = {h: i for i, h in enumerate(headers)}
    assert [r[col["study"]] for r in table] == ["untuned", "tuned"]  # the untuned cell first; histo → cyto has no pair
    untuned, tuned = table
    assert untuned[col["values"]] == "ewc_lambda 100, lr 0.05"  # the spec's learning rate where the strategy set none
    assert tuned[col["values"]] == "ewc_lambda 4.25e+04, lr 0.0406"
    assert untuned[col["chosen"]] == "untuned" and tuned[col["chosen"]] == "tuned: 8 trials, 0.25 validation share, budget_baselines.json"
    assert untuned[col["protocol"]] == "250 + 250 steps, constant" and tuned[col["protocol"]] == "1,000 + 1,000 steps, cosine"
    # by hand: 0.60, 0.66, 0.63 -> mean 0.63, sd 0.03, 95 % t half-width 4.303 * 0.03 / sqrt(3) = 0.0745
    half = 4.302652729911275 * 0.03 / math.sqrt(3)
    assert tuned[col["n"]] == 3
    assert tuned[col["ACC [95 % CI]"]] == f"0.630 ± 0.030 [{0.63 - half:.3f}, {0.63 + half:.3f}]"
    assert untuned[col["Forgetting [95 % CI]"]].startswith("0.300 ± 0.000")


def test_no_tuned_run_means_no_table():
    assert tuning_table([e for e in _rows() if e["tuned"] is None]) is None


def test_the_page_shows_the_table_with_names_as_text():
    rows = _rows()
    for e in rows:
        if e["study"] == "tuned":
            e["study"] = "<img src=x onerror=alert(1)>"
    page = index_html(["x"], {}, [], [], {}, {}, {}, None, "", None, tuning_table(rows))
    assert "<h2 id='tuned-beside-untuned'>Tuned beside untuned</h2>" in page and "href='#tuned-beside-untuned'" in page
    assert "<img src=x" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page


def test_a_cell_stands_beside_cells_of_its_own_memory_budget_only():
    small = {**BUDGET, "size": 8}
    lr = {"trials": 8, "validation": 0.25, "file": "t.json", "sha256": "cd", "space": {"lr": [0.005, 0.2]}}
    rows = []
    for s in range(2):
        rows.append(_e("old", "replay", "replay", s, 0.6, 0.1, memory=BUDGET))
        rows.append(_e("old", "replay", "replay", s, 0.5, 0.2, memory=small))  # no tuned cell at 8 patches
        rows.append(_e("new", "replay", "replay", s, 0.7, 0.05, memory=BUDGET, tuned=lr, params={"lr": 0.03}))
    headers, table = tuning_table(rows)
    col = {h: i for i, h in enumerate(headers)}
    assert [(r[col["study"]], r[col["memory"]]) for r in table] == [("old", "32 patches, 2 per step, matched"),
                                                                   ("new", "32 patches, 2 per step, matched")]
    assert [r[col["values"]] for r in table] == ["lr 0.05", "lr 0.03"]


def test_names_in_the_markdown_table_stay_text():
    from dqcl.results.formats import _tuning_markdown

    rows = _rows()
    for e in rows:
        if e["study"] == "tuned":
            e["study"] = "a|b <script>x</script>"
    md = "\n".join(_tuning_markdown(rows))
    (row,) = [ln for ln in md.splitlines() if "script" in ln]
    assert "<script>" not in md and "a&#124;b &lt;script&gt;" in row
    assert row.count("|") == len(row.split(" | ")) + 1  # every cell's bar is the table's: none from the name


def _tuning_file(tmp_path, trials, best):
    doc = {"dqcl_tuning": 1, "study": "t", "spec": "t.toml", "trials_per_strategy": len(trials), "validation": 0.25,
           "seeds": [100], "orderings": [["cyto", "histo"]], "objective": "ACC", "sampler": "TPE",
           "strategies": {"ewc": {"strategy": "ewc", "space": {"lr": [0.005, 0.2]}, "best": best, "trials": trials}}}
    path = tmp_path / "tuned.json"
    path.write_text(json.dumps(doc))
    return path


def _store_rows(path):
    import hashlib

    sha = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    return [_e("tuned", "ewc", "ewc", 0, 0.6, 0.1, tuned={**TUNED, "sha256": sha})]


def test_the_grid_marks_the_chosen_trial_once_and_says_which_scores_are_partial(tmp_path):
    from dqcl.results.tuning import read_trials, trial_section

    trials = [{"number": 0, "state": "complete", "value": 0.5, "params": {"lr": 0.01}},
              {"number": 1, "state": "pruned", "value": 0.3, "params": {"lr": 0.2}},
              {"number": 2, "state": "complete", "value": 0.6, "params": {"lr": 0.03}},
              {"number": 3, "state": "complete", "value": 0.6, "params": {"lr": 0.03}, "repeat": True},
              {"number": 10 ** 400, "state": "complete", "value": 10 ** 400, "params": {"lr": 0.04}}]
    path = _tuning_file(tmp_path, trials, {"lr": 0.03})
    _, _, headers, table = trial_section(read_trials(path, _store_rows(path)))
    assert [r[-1] for r in table] == ["", "", "chosen", "", ""]
    assert table[1][4] == "0.300 (pruned: the orderings run before)" and table[3][2] == "complete (repeat)"
    assert table[4][4] == "—" and table[4][1].startswith("1000")  # an integer past any float: text, not a crash


@pytest.mark.parametrize("content, why", [
    ("[" * 100000, "nested too deeply"),
    ('{"dqcl_tuning": 1, "strategies": {}, "study": "\\ud800"}', "lone surrogate"),
    ("[1, 2]", "not a dqcl tuning result"),
])
def test_a_bad_tuning_file_is_one_line(tmp_path, content, why):
    from dqcl.errors import DqclError
    from dqcl.results.tuning import read_trials

    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(DqclError) as err:
        read_trials(path, [])
    assert why in str(err.value) and "\n" not in str(err.value)
