"""The leaderboard of a study whose rehearsal strategies ran at several memory budgets (issue 18):
one block per budget, ranked on its own, with the strategies that keep no bounded memory in
every block; the memory held and the samples per step as columns of every format; the test
objects and the data draws on the Data line; a figure of every seed's value. A store of runs
from before these were recorded builds as it did. Fake runs, no training."""

from __future__ import annotations

import csv
import json
import re

import pytest

from dqcl.evaluation.metrics import METRICS
from dqcl.results.leaderboard import write_leaderboard
from dqcl.results.stats import predict, summarise
from dqcl.results.store import Store
from dqcl.results.tables import _budget_blocks

from test_leaderboard import _put

SEEDS = (0, 1, 2)
ORDER = ("cyto", "histo")


def _budget(size: int, protocol: str = "batch", compute: str = "matched") -> dict:
    return {"size": size, "rate": 0.0, "protocol": protocol, "replay_batch": 4, "compute": compute}


NO_BUDGET = {"size": 0, "rate": 0.0, "protocol": "mix", "replay_batch": 0, "compute": "matched"}  # naive, cumulative


def _put_new(store, label, name, seed, R, memory, held, samples=8.0, study="m"):
    """A run as dqcl 0.4 stores it: its [memory] table, compute counts, memory held and data record."""
    cfg = {"study": study, "strategy": {"label": label, "name": name, "params": {}}, "ordering": list(ORDER), "seed": seed,
           "memory": memory, "data": {"patch_size": 64, "stride": 64}}
    res = {"R": {m: R for m in METRICS}, "baseline": {m: [0.0, 0.0] for m in METRICS},
           "timings": {"train_s": [1.0, 1.0], "eval_s": [1.0], "total_s": 2.0}, "images_seen": 10, "device": "cpu",
           "compute": {"steps": 10, "forward": 80, "backward": 80, "step_forward": 80, "step_backward": 80, "per_step": [8, 8],
                       "samples_per_step": samples},
           "memory": None if held is None else {"budget": "x", "size": memory["size"], "rate": None, "protocol": memory["protocol"],
                                                "replay_batch": 4, "compute": memory["compute"], "held": [0, held], "max_held": held},
           "data": {"cyto": {"train_hash": f"c{seed}", "test_hash": "t", "train_patches": 40, "test_patches": 10,
                             "test_objects": 1200 + 2 * seed},
                    "histo": {"train_hash": f"h{seed}", "test_hash": "t", "train_patches": 40, "test_patches": 10,
                              "test_objects": 1087}}}
    store.put(f"{study}-{label}-{seed}-{json.dumps(memory)}", cfg, res)


def _two_budgets(store) -> None:
    """naive and cumulative (no budget), replay and er at 32 and 64 patches. At 32 replay beats er
    on every seed, at 64 er beats replay: the ranks differ by block."""
    for s in SEEDS:
        e = 0.01 * s
        _put_new(store, "naive", "naive", s, [[0.8, 0.0], [0.10 + e, 0.7]], NO_BUDGET, None)
        _put_new(store, "cumulative", "cumulative", s, [[0.8, 0.0], [0.30 + e, 0.7]], NO_BUDGET, None)
        _put_new(store, "replay", "replay", s, [[0.8, 0.0], [0.60 + e, 0.7]], _budget(32), 32, samples=8.0)
        _put_new(store, "er", "er", s, [[0.8, 0.0], [0.50 + e, 0.7]], _budget(32), 32, samples=8.0)
        _put_new(store, "replay", "replay", s, [[0.8, 0.0], [0.62 + e, 0.7]], _budget(64), 64, samples=8.0)
        _put_new(store, "er", "er", s, [[0.8, 0.0], [0.70 + e, 0.7]], _budget(64), 64 - s, samples=7.5)


def _md_blocks(md: str, metric: str = "ap50") -> dict[str, dict[str, list[str]]]:
    """The blocks of the study's table for ``metric``: title -> strategy -> cells."""
    part = md.split(f"### m — {metric}")[1].split("### ")[0]
    blocks, title = {}, None
    for line in part.splitlines():
        if line.startswith("**"):
            title = line.strip("*")
            blocks[title] = {}
        elif line.startswith("|") and title is not None:
            cells = [c.strip() for c in line.strip("|").split("|")]
            if cells[0] not in ("group",) and not set(cells[0]) <= set("-:"):
                blocks[title][cells[1]] = cells
            elif cells[0] == "group":
                blocks[title]["__headers__"] = cells
    return blocks


@pytest.fixture(scope="module")
def two_budgets(tmp_path_factory):
    root = tmp_path_factory.mktemp("budgets")
    with Store(root / "r.sqlite") as store:
        _two_budgets(store)
        paths = write_leaderboard(store, root / "lb")
    return root / "lb", paths


def test_one_block_per_budget_each_with_the_strategies_that_keep_no_memory_and_its_own_ranks(two_budgets):
    out, _ = two_budgets
    md = (out / "leaderboard.md").read_text()
    blocks = _md_blocks(md)
    b32 = "cyto → histo — memory 32 patches, replayed by minibatch, replay minibatch 4, compute matched"
    b64 = b32.replace("32", "64")
    assert list(blocks) == [b32, b64]  # smaller budget first
    for title in (b32, b64):
        assert set(blocks[title]) - {"__headers__"} == {"naive", "cumulative", "replay", "er"}
    rank = {t: {lab: cells[0] for lab, cells in b.items() if lab != "__headers__"} for t, b in blocks.items()}
    # every seed orders them alike (the same gaps): every pair is told apart, one letter each, best first
    assert rank[b32] == {"replay": "a", "er": "b", "cumulative": "c", "naive": "d"}
    assert rank[b64] == {"er": "a", "replay": "b", "cumulative": "c", "naive": "d"}
    # naive's cells are the same in both blocks: a budget does not change it
    assert blocks[b32]["naive"] == blocks[b64]["naive"]
    # the memory held (the most over seeds; "all" for cumulative; — for naive) and samples per step
    headers = blocks[b32]["__headers__"]
    mem, sps = headers.index("memory (patches)"), headers.index("samples/step")
    assert {lab: c[mem] for lab, c in blocks[b64].items() if lab != "__headers__"} == {
        "naive": "—", "cumulative": "all", "replay": "64", "er": "64"}
    assert blocks[b64]["er"][sps] == "7.5" and blocks[b32]["replay"][sps] == "8.0"
    # the iou tables are split the same way
    assert list(_md_blocks(md, "iou")) == [b32, b64]


def test_the_data_line_states_test_objects_and_data_draws(two_budgets):
    out, _ = two_budgets
    md = (out / "leaderboard.md").read_text()
    assert "Test objects per domain: cyto 1,202, histo 1,087 (mean over runs); per-seed data" in md
    assert "Test objects per domain" in (out / "index.html").read_text()


def test_every_format_has_the_blocks_and_columns(two_budgets):
    out, paths = two_budgets
    with open(out / "leaderboard.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    er64 = [r for r in rows if r["strategy_name"] == "er" and "64" in r["memory_budget"]]
    assert len(er64) == len(SEEDS) * len(METRICS)
    # a label that ran at two budgets names its budget in every row, so no reader of the CSV pools the two
    assert {r["strategy"] for r in rows if r["strategy_name"] == "er"} == {"er [32 patches, 4 per step, matched]",
                                                                           "er [64 patches, 4 per step, matched]"}
    assert {r["memory_held"] for r in er64} == {"64", "63", "62"} and {r["samples_per_step"] for r in er64} == {"7.5"}
    assert {r["memory_budget"] for r in rows if r["strategy"] == "naive"} == {""}
    tex = (out / "leaderboard.tex").read_text()
    assert tex.count("memory 32 patches, replayed by minibatch") == 2 and "memory (patches)" in tex
    assert re.search(r"^a & er & 1\.0 & 3 & .* & 64 & 7\.5 \\\\$", tex, re.M)
    page = (out / "index.html").read_text()
    assert page.count("— memory 64 patches, replayed by minibatch, replay minibatch 4, compute matched</h3>") == 2
    assert "<th>memory (patches)</th><th>samples/step</th>" in page
    assert "memory (patches)" in md_legend(out)
    # the seed figure of the ordering; figures tell the budgets apart
    assert (out / "m_cyto-histo_seeds_ap50.png").read_bytes()[:4] == b"\x89PNG"
    assert "![seeds](m_cyto-histo_seeds_ap50.png)" in (out / "leaderboard.md").read_text()
    assert (out / "m_cyto-histo_seeds_ap50.png") in paths
    entries = json.loads((out / "leaderboard.json").read_text())
    assert {e["memory_held"] for e in entries if e["strategy"] == "cumulative"} == {None}


def md_legend(out) -> str:
    return (out / "leaderboard.md").read_text().split("## ")[0]


def test_one_budget_is_one_table(tmp_path):
    with Store(tmp_path / "r.sqlite") as store:
        for s in SEEDS:
            _put_new(store, "naive", "naive", s, [[0.8, 0.0], [0.1 + 0.01 * s, 0.7]], NO_BUDGET, None)
            _put_new(store, "replay", "replay", s, [[0.8, 0.0], [0.6 + 0.01 * s, 0.7]], _budget(32), 32)
        write_leaderboard(store, tmp_path / "lb")
    md = (tmp_path / "lb" / "leaderboard.md").read_text()
    assert list(_md_blocks(md)) == ["cyto → histo"]
    assert "memory (patches)" in md and " — memory" not in md  # the columns, no block heading


def test_a_strategy_with_and_without_a_memory_table_gets_a_block_of_its_own():
    own = {"study": "m", "strategy": "replay"}
    rows = [own, {"study": "m", "strategy": "replay", "memory": _budget(32)}, {"study": "m", "strategy": "naive"}]
    blocks = _budget_blocks(rows)
    assert [k for k, _ in blocks] == [(), (32, 0.0, "batch", 4, "matched")]
    assert _budget_blocks([own, {"study": "m", "strategy": "naive"}]) == [(None, None)]


def test_runs_stored_before_budgets_build_as_before_with_a_seed_figure(tmp_path):
    with Store(tmp_path / "r.sqlite") as store:
        for seed in SEEDS:
            _put(store, "naive", "naive", seed, [[0.8, 0.0], [0.01 * seed, 0.7]])
            _put(store, "replay", "replay", seed, [[0.8, 0.0], [0.5 + 0.01 * seed, 0.7]], {"rate": 0.1})
            _put(store, "joint", "joint", seed, [[0.7 + 0.01 * seed, 0.7]])
        paths = write_leaderboard(store, tmp_path / "lb")
    out = tmp_path / "lb"
    md = (out / "leaderboard.md").read_text()
    assert "memory (patches)" not in md and "samples/step" not in md and "Test objects" not in md and " — memory" not in md
    assert list(_md_blocks(md.replace("### s", "### m"))) == ["cyto → histo"]
    header = (out / "leaderboard.csv").read_text().splitlines()[0]
    assert "memory_held" not in header and "samples_per_step" not in header
    assert "memory_held" not in json.loads((out / "leaderboard.json").read_text())[0]
    assert (out / "s_cyto-histo_seeds_ap50.png") in paths and (out / "s_cyto-histo_seeds_ap50.png").stat().st_size > 1000


def test_a_budget_from_the_store_is_data_in_every_format(tmp_path):
    evil = "<script>|x\n# y $\\input{z}"
    with Store(tmp_path / "r.sqlite") as store:
        for s in (0, 1):
            _put_new(store, "naive", "naive", s, [[0.8, 0.0], [0.1 + 0.01 * s, 0.7]], NO_BUDGET, None)
            for size in (32, 64):
                _put_new(store, "replay", "replay", s, [[0.8, 0.0], [0.5 + 0.01 * s, 0.7]], _budget(size, protocol=evil), size)
        write_leaderboard(store, tmp_path / "lb")
    out = tmp_path / "lb"
    md = (out / "leaderboard.md").read_text()
    assert "<script>" not in md and "\n# y" not in md and "protocol &lt;script&gt;&#124;x" in md
    assert "<script>|x" not in (out / "index.html").read_text() and "&lt;script&gt;|x" in (out / "index.html").read_text()
    assert r"\input" not in (out / "leaderboard.tex").read_text().replace(r"\textbackslash{}input", "")


def test_the_prediction_interval_of_one_new_run_is_wider_than_the_mean_s():
    vals = [0.345, 0.309, 0.349, 0.364, 0.354]
    ci, pi = summarise(vals), predict(vals)
    assert pi.mean == ci.mean and pi.lo < ci.lo and pi.hi > ci.hi
    # mean ± t(0.975, 4) * s * sqrt(1 + 1/5), t = 2.776
    assert pi.hi - pi.mean == pytest.approx(2.7764451 * ci.std * (1 + 1 / 5) ** 0.5, rel=1e-6)
    assert predict([0.3]).n == 1 and predict([]) is None


def test_joint_training_shows_all_for_memory(tmp_path):
    # joint trains on every patch of every domain at once: its memory cell is "all", as cumulative's, not "—"
    with Store(tmp_path / "r.sqlite") as store:
        for s in SEEDS:
            _put_new(store, "naive", "naive", s, [[0.8, 0.0], [0.10, 0.7]], NO_BUDGET, None, study="j")
            _put_new(store, "joint", "joint", s, [[0.75, 0.7]], NO_BUDGET, None, study="j")
        write_leaderboard(store, tmp_path / "lb")
    rows = {}
    part = (tmp_path / "lb" / "leaderboard.md").read_text().split("### j — ap50")[1].split("### ")[0]
    for line in part.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if line.startswith("|"):
            rows[cells[1]] = cells
    mem = rows["strategy"].index("memory (patches)")
    assert rows["joint"][mem] == "all" and rows["naive"][mem] == "—"


def test_the_replay_rate_figure_draws_each_way_of_replaying_apart(monkeypatch, tmp_path):
    # the same [memory] rate replayed by mixing and by a minibatch are two lines, not one averaged line;
    # a budget in patches has no rate and is not drawn on the rate axis
    from dqcl.results import plots

    legends = []
    monkeypatch.setattr(plots, "save_figure", lambda fig, out, dpi=100: legends.append(
        [t.get_text() for t in fig.axes[0].get_legend().get_texts()]) or out)
    rows = []
    for s in SEEDS:
        rows.append(_entry("naive", [[0.8, 0.0], [0.1, 0.7]], None))
        rows.append(_entry("cumulative", [[0.8, 0.0], [0.6, 0.7]], None))
        for rate in (0.05, 0.1):
            rows.append(_entry("replay", [[0.8, 0.0], [0.2 + rate, 0.7]], {**NO_BUDGET, "rate": rate, "protocol": "mix",
                                                                          "compute": "appended"}))
            rows.append(_entry("replay", [[0.8, 0.0], [0.4 + rate, 0.7]], {**NO_BUDGET, "rate": rate, "protocol": "batch",
                                                                          "replay_batch": 2, "compute": "matched"}))
        rows.append(_entry("replay", [[0.8, 0.0], [0.5, 0.7]], _budget(32)))
    assert plots.replay_rate_curves(rows, tmp_path / "r.png") is not None
    assert sorted(legends[0]) == ["random replay (2 per step, compute matched)", "random replay (mixed, compute appended)"]


def _entry(name: str, R: list, memory: dict | None) -> dict:
    return {"strategy": name, "strategy_name": name, "params": {}, "R": R, "ordering": list(ORDER), "study": "m",
            "metric": "ap50", "memory": memory}


def test_naive_at_both_computes_is_two_rows_and_each_budget_is_compared_with_its_own(tmp_path):
    # the rate-or-count study runs naive at compute appended (beside mixed replay) and at compute matched
    # (beside replay by minibatch, short batches dropped): neither run replaces the other, and a block's
    # "ACC − naive" reads the naive of its own compute
    with Store(tmp_path / "s.sqlite") as store:
        for s in SEEDS:
            e = 0.01 * s
            _put_new(store, "naive", "naive", s, [[0.8, 0.0], [0.10 + e, 0.7]], None, None)
            _put_new(store, "naive", "naive", s, [[0.8, 0.0], [0.20 + e, 0.7]], NO_BUDGET, None)
            _put_new(store, "replay", "replay", s, [[0.8, 0.0], [0.60 + e, 0.7]], _budget(32, "mix", "appended"), 32)
            _put_new(store, "replay", "replay", s, [[0.8, 0.0], [0.60 + e, 0.7]], _budget(32), 32)
        write_leaderboard(store, tmp_path / "lb")
    blocks = _md_blocks((tmp_path / "lb" / "leaderboard.md").read_text())
    versus = {}
    for title, rows in blocks.items():
        headers = rows["__headers__"]
        assert set(rows) - {"__headers__"} == {"replay", "naive (compute appended)", "naive (compute matched)"}
        versus["matched" if "compute matched" in title else "appended"] = rows["replay"][headers.index("ACC − naive (paired, Holm)")]
    assert versus["appended"].startswith("+0.250") and versus["matched"].startswith("+0.200"), versus
