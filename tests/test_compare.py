"""All-pairs comparisons within a ranked block (issue 26): Holm-adjusted paired tests, an exact
sign-flip check, a compact letter display that never chains ties, intervals that agree with the tests."""

import itertools
import random

import numpy as np
import pytest

from dqcl.results.compare import compare, holm, letters, sign_flip_p

SEEDS = range(10)


def _accs(offsets: dict[str, float], noise: float, seed: int = 0) -> dict[str, dict[int, float]]:
    """ACC per label and seed: a seed effect shared by every label (so the marginal spreads overlap widely),
    the label's offset, and a little noise of its own."""
    rng = np.random.default_rng(seed)
    base = rng.normal(0.5, 0.08, len(SEEDS))
    return {lab: {s: float(base[s] + off + rng.normal(0, noise)) for s in SEEDS} for lab, off in offsets.items()}


def test_clear_steps_give_three_groups_even_where_the_spreads_overlap():
    accs = _accs({"A": 0.10, "B": 0.05, "C": 0.0}, noise=0.005)
    spread = {lab: np.std(list(v.values()), ddof=1) for lab, v in accs.items()}
    assert all(s > 0.05 for s in spread.values())  # each label's own spread covers the gaps
    assert compare(accs).groups == {"A": "a", "B": "b", "C": "c"}


def test_neighbours_that_overlap_never_chain_into_one_group():
    """A ~ B and B ~ C, but A > C: the letters say exactly that (a neighbour rule would put all three in one group)."""
    e = np.array([0.05, -0.05, 0.04, -0.04, 0.03, -0.03, 0.06, -0.06, 0.02, -0.02])  # B's own wobble around C and A
    tiny = np.linspace(-0.002, 0.002, len(SEEDS))
    base = np.random.default_rng(3).normal(0.5, 0.08, len(SEEDS))
    c, b = base, base + 0.02 + e
    a = c + 0.04 + tiny  # A - C: +0.04 on every seed; A - B and B - C: +0.02 give or take 0.05
    accs = {lab: dict(zip(SEEDS, map(float, v))) for lab, v in (("A", a), ("B", b), ("C", c))}
    block = compare(accs)
    assert block.pair("A", "C").apart and not block.pair("A", "B").apart and not block.pair("B", "C").apart
    assert block.groups == {"A": "a", "B": "ab", "C": "b"}


def test_holm_matches_statsmodels():
    multipletests = pytest.importorskip("statsmodels.stats.multitest").multipletests
    rng = np.random.default_rng(1)
    for _ in range(20):
        p = list(rng.uniform(0, 0.2, rng.integers(1, 12)))
        assert holm(p) == pytest.approx(list(multipletests(p, method="holm")[1]))


def test_sign_flip_p_by_hand_and_against_scipy():
    # differences 1, 2, 3: of the 8 sign patterns, |sum| >= 6 for +++ and --- only
    assert sign_flip_p([1.0, 2.0, 3.0]) == pytest.approx(2 / 8)
    assert sign_flip_p([0.1, 0.1, 0.1]) == pytest.approx(0.25)  # n = 3: never below 0.25
    assert sign_flip_p([0.0, 0.0]) == 1.0
    from scipy.stats import permutation_test

    rng = np.random.default_rng(2)
    for n in (4, 7, 10):
        d = rng.normal(0.02, 0.05, n)
        ref = permutation_test((d,), np.mean, permutation_type="samples", n_resamples=np.inf).pvalue
        assert sign_flip_p(d) == pytest.approx(ref)


def test_each_interval_excludes_zero_exactly_where_holm_tells_the_pair_apart():
    accs = _accs({f"s{i}": 0.015 * i for i in range(6)}, noise=0.02, seed=5)
    block = compare(accs)
    assert block.family == 15
    for p in block.pairs.values():
        assert (p.lo > 0 or p.hi < 0) == p.apart, p
        assert 0.95 - 1e-12 <= p.level <= 1 - 0.05 / block.family + 1e-12


def test_letters_share_a_letter_exactly_where_two_are_not_told_apart():
    rng = random.Random(0)
    for _ in range(300):
        order = [f"s{i}" for i in range(rng.randint(1, 8))]
        apart = {frozenset(p) for p in itertools.combinations(order, 2) if rng.random() < 0.4}
        shown = letters(order, apart)
        for x, y in itertools.combinations(order, 2):
            assert bool(set(shown[x]) & set(shown[y])) != (frozenset((x, y)) in apart), (order, apart, shown)


def test_a_label_with_fewer_seeds_is_compared_on_the_seeds_it_shares():
    accs = _accs({"A": 0.1, "B": 0.0}, noise=0.005)
    accs["late"] = {s: accs["A"][s] for s in (0, 1, 2)}
    block = compare(accs)
    assert block.pair("late", "B").n == 3 and block.pair("A", "B").n == 10
    assert block.seeds["late"] == 3 and np.isfinite(block.mean_rank["late"])
