"""Domain-ordering studies (issue 28): balanced ordering designs, the metrics of longer streams (average
incremental accuracy, intransigence, forgetting by distance), checked against hand computations."""

import itertools

import pytest

from dqcl.results.cl_metrics import cl_metrics, forgetting_by_distance, intransigence

R3 = [[0.9, 0.1, 0.2],
      [0.5, 0.8, 0.3],
      [0.4, 0.6, 0.7]]


def test_the_metrics_of_a_three_domain_stream_by_hand():
    m = cl_metrics(R3, [0.0, 0.05, 0.1])
    # after each experience, the mean on the domains seen so far: 0.9; (0.5 + 0.8) / 2; (0.4 + 0.6 + 0.7) / 3
    assert m["inc_acc"] == pytest.approx((0.9 + 0.65 + 1.7 / 3) / 3)
    # d = 1: domain 0 after exp 1 (0.9 - 0.5), domain 1 after exp 2 (0.8 - 0.6); d = 2: domain 0, max(0.9, 0.5) - 0.4
    assert forgetting_by_distance(R3) == pytest.approx([(0.4 + 0.2) / 2, 0.5])
    # joint ends at 0.85, 0.75, 0.8: intransigence = mean (0.85 - 0.9, 0.75 - 0.8, 0.8 - 0.7)
    assert intransigence(R3, [0.85, 0.75, 0.8]) == pytest.approx((-0.05 - 0.05 + 0.1) / 3)
    assert intransigence([[0.8, 0.7]], [0.8, 0.7]) is None and forgetting_by_distance([[0.8, 0.7]]) is None


def _orders(spec_orderings, names=("a", "b", "c", "d")):
    from dqcl.config.parse import parse_spec

    raw = {"study": {"name": "o", "orderings": spec_orderings},
           "domains": {n: {"kind": "cyto", "n_train": 2, "n_test": 1, "size": 96} for n in names},
           "strategies": {"naive": {}}}
    return [list(o) for o in parse_spec(raw, "o.toml").orderings]


@pytest.mark.parametrize("n", [3, 4, 5])
def test_latin_and_balanced_squares(n):
    names = "abcdefg"[:n]
    latin = _orders("latin", names)
    assert len(latin) == n and all(sorted(col) == sorted(names) for col in zip(*latin))  # each domain once per position
    balanced = _orders("balanced", names)
    assert len(balanced) == (n if n % 2 == 0 else 2 * n)
    assert all(sorted(col) == sorted(names * (len(balanced) // n)) for col in zip(*balanced))
    follows = [(o[i], o[i + 1]) for o in balanced for i in range(n - 1)]
    # every ordered pair of distinct domains: one after the other equally often (once for even n, twice for odd)
    assert {follows.count(p) for p in itertools.permutations(names, 2)} == {1 if n % 2 == 0 else 2}


def test_random_orderings_are_distinct_and_seeded(tmp_path, capsys):
    a, b = _orders("random:6:3"), _orders("random:6:3")
    assert a == b and len({tuple(o) for o in a}) == 6 and _orders("random:6:4") != a
    from dqcl.errors import SpecError

    with pytest.raises(SpecError, match="asks for 25 distinct orderings of 4 domains, which have 24"):
        _orders("random:25")
    with pytest.raises(SpecError, match="is not random:K or random:K:SEED"):
        _orders("random:x")


def test_the_run_count_is_said_before_anything_runs(tmp_path, capsys):
    from dqcl.cli import main

    from conftest import tiny_spec_text

    spec = tmp_path / "s.toml"
    spec.write_text(tiny_spec_text(tmp_path, "[strategies.naive]\n").replace('orderings = [["cyto", "histo"]]', 'orderings = "balanced"'))
    assert main(["run", "benchmark", str(spec), "--store", str(tmp_path / "r.sqlite"), "--dry-run"]) == 0
    assert "tiny: 2 run(s): 2 ordering(s) x 1 strategy(ies) x 1 seed(s)" in capsys.readouterr().err


def test_order_sensitivity_by_hand_and_in_every_format(tmp_path):
    """Two orders of three domains, two seeds each: the order table's numbers, and the forgetting-by-distance figure."""
    import json

    from dqcl.evaluation.metrics import METRICS
    from dqcl.results.leaderboard import write_leaderboard
    from dqcl.results.orders import order_table
    from dqcl.results.store import Store

    def R(first_forget, seed):
        # the domain learned first is forgotten by first_forget after one more experience, fully kept otherwise
        return [[0.8, 0.1, 0.1], [0.8 - first_forget, 0.7, 0.1], [0.8 - first_forget, 0.7, 0.6 + 0.01 * seed]]

    runs = {("a", "b", "c"): 0.3, ("c", "b", "a"): 0.1}
    with Store(tmp_path / "r.sqlite") as store:
        for order, forget in runs.items():
            for seed in (0, 1):
                cfg = {"study": "o", "strategy": {"label": "naive", "name": "naive", "params": {}}, "ordering": list(order),
                       "seed": seed}
                res = {"R": {m: R(forget, seed) for m in METRICS}, "baseline": {m: [0.0] * 3 for m in METRICS},
                       "timings": {"train_s": [1.0] * 3, "eval_s": [1.0], "total_s": 3.0}}
                store.put(f"{'-'.join(order)}-{seed}", cfg, res)
        from dqcl.results.entries import entries

        rows = entries(store)
        paths = {p.name for p in write_leaderboard(store, tmp_path / "lb")}
    headers, (row,) = order_table(rows, "o")
    cells = dict(zip(headers, row))
    # ACC per order: (0.5 + 0.7 + 0.6 / 0.61) / 3 = 0.600 / 0.603 for a-b-c; 0.667 / 0.670 for c-b-a
    assert cells["ACC over orders [95 % CI]"].startswith("0.635 ± 0.047")
    assert cells["SD across orders"] == "0.047" and cells["SD across seeds"] == "0.002"
    # forgetting of the first domain: 0.3 (a first), 0.1 (c first); of the second: 0
    assert cells["forgetting at position 1"].startswith("0.200") and cells["forgetting at position 2"].startswith("0.000")
    assert cells["best first domain: ACC"].startswith("c: 0.668")
    md = (tmp_path / "lb" / "leaderboard.md").read_text()
    assert "**Order sensitivity (ap50)**" in md and "Order sensitivity (ap50)" in (tmp_path / "lb" / "index.html").read_text()
    assert "o_forgetting_distance_ap50.png" in paths
    entry = next(e for e in json.loads((tmp_path / "lb" / "leaderboard.json").read_text()) if e["metric"] == "ap50")
    assert len(entry["forgetting_by_distance"]) == 2 and entry["inc_acc"] is not None


@pytest.mark.parametrize("first_forgets, verdict", [(0.05, "supported"), (0.4, "contradicted")])
def test_the_generalist_first_claim_reads_its_rule_by_hand(first_forgets, verdict):
    """Three-domain streams, six seeds: with cyto first the stream forgets `first_forgets` of its first domain,
    with cyto last 0.2 (the other domains kept), each jittered by seed: the claim's contrast by hand, read by its rule."""
    from dqcl.evaluation.metrics import METRICS
    from dqcl.results.claims import claims
    from dqcl.results.entries import rows_of

    def run(order, forget, seed):
        R = [[0.8, 0.1, 0.1], [0.8 - forget, 0.7, 0.1], [0.8 - forget, 0.7, 0.6]]
        return {"key": f"{'-'.join(order)}-{seed}", "study": "orderings", "label": "naive", "created": 0.0,
                "config": {"study": "orderings", "strategy": {"label": "naive", "name": "naive", "params": {}},
                           "ordering": list(order), "seed": seed},
                "result": {"R": {m: R for m in METRICS}, "baseline": {m: [0.0] * 3 for m in METRICS},
                           "timings": {"train_s": [1.0] * 3, "eval_s": [1.0], "total_s": 3.0}}}

    runs = [run(("cyto", "histo", "nuclei"), first_forgets + 0.002 * s, s) for s in range(6)]
    runs += [run(("histo", "nuclei", "cyto"), 0.2 - 0.002 * s, s) for s in range(6)]
    for r in runs:
        r["draw"], r["broken"] = "unrecorded", None
    (claim,) = [c for c in claims(rows_of(runs)) if c.claim.startswith("generalist first")]
    # per seed s: ((first_forgets + 0.002 s) - (0.2 - 0.002 s)) / 2 (the other domain forgets nothing); mean over s = 0..5
    contrast = sum((first_forgets + 0.002 * s - (0.2 - 0.002 * s)) / 2 for s in range(6)) / 6
    assert f"first − last {contrast:+.3f}" in claim.evidence and claim.verdict.startswith(f"**{verdict}**"), claim
    assert "t only" not in claim.verdict  # six pairs all one way: the exact sign-flip test agrees (p 2/64)
    assert "generalist_first.toml" in claim.rule and "at least 6 seeds" in claim.rule
