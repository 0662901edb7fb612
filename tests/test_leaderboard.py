import json

from dqcl.results.leaderboard import _ranks, write_leaderboard
from dqcl.evaluation.metrics import METRICS
from dqcl.results.store import SCHEMA_VERSION, Store


def _put(store, label, name, seed, R, params=None, study="s", ordering=("cyto", "histo")):
    cfg = {"study": study, "strategy": {"label": label, "name": name, "params": params or {}}, "ordering": list(ordering), "seed": seed}
    res = {"R": {m: R for m in METRICS}, "baseline": {m: [0.0] * len(ordering) for m in METRICS},
           "timings": {"train_s": [1.0], "eval_s": [1.0], "total_s": 2.0}, "images_seen": 10, "device": "cpu"}
    store.put(f"{label}-{seed}-{json.dumps(params)}", cfg, res)


def test_groups_only_where_the_holm_adjusted_paired_difference_excludes_zero():
    assert _ranks({"a": {0: 0.9}, "b": {0: 0.1}}) == {"a": "—", "b": "—"}  # one seed: no interval, no groups
    # a beats b on one seed and loses on the other: one group; c is far below both on every seed: a group of its own
    r = _ranks({"a": {0: 0.95, 1: 0.87, 2: 0.93}, "b": {0: 0.89, 1: 0.91, 2: 0.90}, "c": {0: 0.2, 1: 0.25, 2: 0.21}})
    assert r == {"a": "a", "b": "a", "c": "b"}
    # a consistent small gain on every seed is a real difference even where the spreads overlap
    r = _ranks({"a": {0: 0.60, 1: 0.80, 2: 0.70}, "b": {0: 0.58, 1: 0.77, 2: 0.68}})
    assert r == {"a": "a", "b": "b"}
    # a strategy with one seed so far (a study still running) has no group, and the others still do
    r = _ranks({"a": {0: 0.9, 1: 0.91, 2: 0.92}, "b": {0: 0.2, 1: 0.25, 2: 0.21}, "late": {0: 0.95}})
    assert r == {"a": "a", "b": "b", "late": "—"}


def test_leaderboard_files_tables_and_plots(tmp_path):
    with Store(tmp_path / "r.sqlite") as store:
        for seed in (0, 1, 2):
            _put(store, "naive", "naive", seed, [[0.8, 0.0], [0.0 + 0.01 * seed, 0.7]])
            _put(store, "cumulative", "cumulative", seed, [[0.8, 0.0], [0.6, 0.7 - 0.01 * seed]])
            for rate in (0.05, 0.5):
                _put(store, f"replay_{rate}", "replay", seed, [[0.8, 0.0], [rate, 0.7]], {"rate": rate})
                _put(store, f"dq_{rate}", "dq_replay", seed, [[0.8, 0.0], [rate * 1.2, 0.7]], {"rate": rate})
        paths = write_leaderboard(store, tmp_path / "lb")
    names = {p.name for p in paths}
    assert {"leaderboard.md", "leaderboard.csv", "leaderboard.json", "leaderboard.tex"} <= names
    assert {"s_cyto-histo_R_ap50.png", "s_cyto-histo_forgetting_plasticity_ap50.png", "s_cyto-histo_replay_rates_ap50.png"} <= names
    md = (tmp_path / "lb" / "leaderboard.md").read_text()
    table = [line.split("|")[1:7] for line in md.split("### s — ap50")[1].splitlines() if line.startswith("|")][2:]
    rank = {cells[1].strip(): cells[0].strip() for cells in table}
    versus = {cells[1].strip(): cells[5].strip() for cells in table}
    # dq_0.5 (0.650 on every seed) and cumulative (0.650, 0.645, 0.640): differences 0, +0.005, +0.010, an interval
    # around 0 once Holm-adjusted over the block's 15 pairs: one group, the best
    assert rank["dq_0.5"] == rank["cumulative"] == "a"
    assert rank["naive"] not in ("a", "—")
    assert "0.645 ± 0.005" in md
    assert " better; sign-flip p " in versus["cumulative"] and versus["naive"] == "—"
    assert "![groups](s_cyto-histo_groups_ap50.png)" in md and "s_cyto-histo_groups_ap50.png" in names
    tex = (tmp_path / "lb" / "leaderboard.tex").read_text()
    assert r"\begin{tabular}" in tex and r"$\pm$" in tex and r"replay\_0.05" in tex
    for p in paths:
        if p.suffix == ".png":
            assert p.read_bytes()[:4] == b"\x89PNG"


def test_store_from_a_newer_dqcl_is_refused(tmp_path, capsys):
    import sqlite3

    from dqcl.cli import main

    path = tmp_path / "r.sqlite"
    Store(path).close()
    with sqlite3.connect(path) as c:
        c.execute("UPDATE meta SET value=? WHERE key='schema'", (str(SCHEMA_VERSION + 1),))
    before = path.read_bytes()
    assert main(["leaderboard", "build", "--store", str(path), "--out", str(tmp_path / "o")]) == 2
    assert "newer than this dqcl understands" in capsys.readouterr().err
    assert path.read_bytes() == before
