"""The factorial replay-threshold verdict (claim (e)): runs whose gain on the source follows one quantity
(or two) by construction, and the sign rule written in benchmarks/replay_threshold_k*.toml."""

import numpy as np
import pytest

from dqcl.results.claims import claims

SIZES = {"cyto_s": 144, "cyto_l": 576}


def _entry(source: str, seed: int, strategy: str, memory: dict | None, score: float) -> dict:
    label = "naive" if memory is None else f"replay {memory['size']} {memory['replay_batch']}"
    return {"study": "replay_threshold", "metric": "ap50", "selector": None, "ordering": [source, "histo"], "seed": seed,
            "strategy": label, "strategy_name": strategy, "params": {}, "compute": "matched", "memory": memory,
            "batch_size": 8, "train_patches": {source: SIZES[source], "histo": 288}, "R": [[0.7, 0.0], [score, 0.6]]}


def _rows(weights: dict[str, float], seeds=range(5)) -> list[dict]:
    """Naive ends at 0.3 + noise on the source; replay adds ``weights[q]`` per unit of each quantity q
    (count: memory patches / 16, share: memory samples per batch, rate: count / source size * 10), plus
    seed-by-cell noise (sd 0.01, a fixed draw) far smaller than the effects."""
    rows, rng = [], np.random.default_rng(7)
    for source, n in SIZES.items():
        for seed in seeds:
            base = 0.3 + 0.01 * seed
            rows.append(_entry(source, seed, "naive", None, base))
            for count in (2, 16):
                for k in (1, 2):
                    q = {"count": count / 16, "share": k, "rate": count / n * 10}
                    gain = 0.05 + sum(w * q[name] for name, w in weights.items()) + rng.normal(0, 0.01)
                    memory = {"size": count, "rate": 0.0, "protocol": "batch", "replay_batch": k, "compute": "matched"}
                    rows.append(_entry(source, seed, "replay", memory, base + gain))
    return rows


def _claim(rows):
    (claim,) = [c for c in claims(rows) if c.claim.startswith("replay threshold")]
    return claim


ALL = ("count", "share", "rate")


@pytest.mark.parametrize("weights, supported", [
    ({"count": 0.1}, {"count"}),
    ({"share": 0.1}, {"share"}),
    ({"rate": 0.3}, {"rate"}),
    ({"count": 0.1, "share": 0.1}, set()),  # both move: no hypothesis alone fits
    ({}, set()),  # nothing moves: every "+" a hypothesis predicts is missing
])
def test_each_hypothesis_is_read_against_its_predicted_signs(weights, supported):
    """benchmarks/claims/replay_threshold.toml at 10 seeds: a hypothesis is supported where every contrast meets its
    sign ("0" within the rule's margin of 0.05), contradicted where one contrast violates it."""
    claim = _claim(_rows(weights, seeds=range(10)))
    assert claim.claim.endswith("(factorial)")
    for h in ALL:
        assert f"{h}: **{'supported' if h in supported else 'contradicted'}**" in claim.verdict, claim.verdict
    assert "replay_threshold.toml (sha256 " in claim.rule and "equivalence margin ±0.05" in claim.rule
    assert "144 source patches, 2 memory patches, 1 of 8 per batch" in claim.evidence
    assert "predicted (size, count, share): count (0 + 0), share of each batch (0 0 +), rate (- + 0)" in claim.evidence


def test_below_the_rules_fewest_seeds_every_hypothesis_is_undecided():
    claim = _claim(_rows({"count": 0.1}))  # 5 seeds: the effect is clear, but the rule asks for 10
    assert all(f"{h}: **undecided (5 seeds, fewer than 10)**" in claim.verdict for h in ALL), claim.verdict


def test_the_contrasts_are_the_mean_differences_over_the_other_cells():
    # gain = 0.05 + 0.1 * count/16 (+ noise): count contrast (16 - 2) / 16 * 0.1 = 0.0875
    claim = _claim(_rows({"count": 0.1}))
    assert "memory 16 − 2 patches +0.087" in claim.evidence or "memory 16 − 2 patches +0.088" in claim.evidence, claim.evidence


def test_a_missing_cell_or_one_seed_gives_no_verdict():
    rows = _rows({"count": 0.1})
    assert not [c for c in claims([r for r in rows if not (r["memory"] and r["memory"]["size"] == 16
                                                           and r["memory"]["replay_batch"] == 2 and r["ordering"][0] == "cyto_l")])
                if c.claim.startswith("replay threshold")]
    assert not [c for c in claims(_rows({"count": 0.1}, seeds=[0])) if c.claim.startswith("replay threshold")]


def test_the_factorial_study_is_not_read_as_the_rate_or_count_arms():
    # its runs are all replay by minibatch with a size: no rate arm, no count arm mixed in
    assert [c.claim for c in claims(_rows({"share": 0.1})) if c.claim.startswith("replay threshold")] == \
        ["replay threshold: count, share of each batch or rate? (factorial)"]
