"""All-pairs comparisons within a ranked block: paired by seed, adjusted for the block's family.

Every pair of strategies in a block is compared on the seeds both ran (their ACC difference,
seed by seed). Each pair gets

- the two-sided paired t-test p-value and its 95 % t-interval (`dqcl.results.stats`);
- an exact sign-flip p-value (a permutation test that does not lean on normality): under "no
  difference" each seed's difference is as likely positive as negative, so the p-value is the
  share of the 2^n sign patterns whose mean is at least as far from 0 as the one seen (exact up
  to n = 16 seeds, beyond that 2^16 patterns drawn with a fixed seed). With n seeds it cannot go
  below 2 / 2^n: 0.25 at n = 3, 0.0039 at n = 9;
- Holm's step-down adjustment of each of the two over the block's family of pairs (Holm 1979:
  sort the m p-values, multiply the k-th smallest by m - k + 1, keep the running maximum);
- an interval at the level Holm used for that pair, 1 - 0.05 / (m - k + 1), where k is the pair's
  step, or the first step Holm stopped at for the pairs after it, so that an interval excludes 0
  exactly where Holm's t-test rejects.

Two strategies are told apart where Holm's t-test rejects; the groups are shown as a compact
letter display (Piepho 2004, insert-absorb): strategies that share a letter are not told apart,
and no two strategies that are told apart share one. ``flagged``: pairs the t-test tells apart
and the sign-flip test (Holm-adjusted) does not, or the other way round.

Holm and the sign-flip test are written out here rather than imported (statsmodels'
``multipletests``, ``scipy.stats.permutation_test``): importing those costs 0.6 to 1 s, more than
the whole leaderboard build of a small store; the tests check both against those libraries.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from itertools import combinations

import numpy as np

from .stats import Summary, summarise

__all__ = ["Pair", "Block", "compare", "holm", "sign_flip_p", "letters", "ALPHA", "EXACT_SEEDS"]

ALPHA = 0.05
EXACT_SEEDS = 16  # up to this many seeds every sign pattern is counted; beyond, 2^16 are drawn (fixed seed)


def holm(p: list[float]) -> list[float]:
    """Holm-adjusted p-values, in the order given."""
    m = len(p)
    order = sorted(range(m), key=lambda i: p[i])
    out, running = [1.0] * m, 0.0
    for k, i in enumerate(order):
        running = max(running, min(1.0, (m - k) * p[i]))
        out[i] = running
    return out


def sign_flip_p(diffs) -> float:
    """Two-sided exact sign-flip p-value of paired differences (mean as the statistic)."""
    d = np.asarray(list(diffs), float)
    n = len(d)
    if n == 0:
        return 1.0
    if n <= EXACT_SEEDS:
        signs = 1 - 2 * ((np.arange(2**n)[:, None] >> np.arange(n)) & 1)
    else:
        signs = np.random.default_rng(0).choice([-1, 1], size=(2**EXACT_SEEDS, n))
    means = np.abs(signs @ d) / n
    seen = abs(d.mean())
    return float(np.mean(means >= seen - 1e-12 * max(1.0, seen)))


def _t_p(s: Summary) -> float:
    """Two-sided paired t-test p-value of a summary of differences."""
    from scipy.special import stdtr

    if s.n < 2:
        return 1.0
    if s.std == 0 or not math.isfinite(s.std):
        return 0.0 if s.mean != 0 else 1.0
    t = s.mean / (s.std / math.sqrt(s.n))
    return float(2 * stdtr(s.n - 1, -abs(t)))


def _interval(diffs: list[float], level: float) -> tuple[float, float]:
    from scipy.special import stdtrit

    s = summarise(diffs)
    if s is None or s.n < 2:
        return (math.nan, math.nan)
    half = float(stdtrit(s.n - 1, 1 - (1 - level) / 2)) * s.std / math.sqrt(s.n)
    return (s.mean - half, s.mean + half)


@dataclass(frozen=True)
class Pair:
    a: str
    b: str
    n: int  # seeds both ran
    diff: Summary | None  # a - b over those seeds (unadjusted 95 % t-interval)
    p_t: float
    p_flip: float
    p_holm: float = 1.0  # Holm-adjusted p_t over the block
    p_flip_holm: float = 1.0
    lo: float = math.nan  # the interval at Holm's level for this pair
    hi: float = math.nan
    level: float = 0.95

    @property
    def apart(self) -> bool:
        return self.n >= 2 and self.p_holm < ALPHA

    @property
    def flagged(self) -> bool:
        return self.n >= 2 and (self.p_holm < ALPHA) != (self.p_flip_holm < ALPHA)


@dataclass(frozen=True)
class Block:
    pairs: dict[tuple[str, str], Pair]
    groups: dict[str, str]  # label -> its letters ("ab"); "—" for a label with fewer than two seeds
    mean_rank: dict[str, float]  # the label's rank averaged over the seeds every label of the block ran
    seeds: dict[str, int]
    family: int = field(default=0)  # pairs in the family

    def pair(self, a: str, b: str) -> Pair | None:
        """a - b (whichever order was stored)."""
        if (a, b) in self.pairs:
            return self.pairs[(a, b)]
        p = self.pairs.get((b, a))
        if p is None:
            return None
        d = p.diff
        flipped = None if d is None else Summary(d.n, -d.mean, d.std, -d.hi, -d.lo)
        return Pair(a, b, p.n, flipped, p.p_t, p.p_flip, p.p_holm, p.p_flip_holm, -p.hi, -p.lo, p.level)


def compare(accs: dict[str, dict[int, float]], alpha: float = ALPHA) -> Block:
    """Every pair of ``accs`` (label -> seed -> ACC) compared on their shared seeds, Holm-adjusted over the
    block; the groups as letters (best mean first) and each label's mean rank over the seeds."""
    labels = sorted(accs, key=lambda k: (-float(np.mean(list(accs[k].values()))) if accs[k] else math.inf, k))
    raw = []
    for a, b in combinations(labels, 2):
        seeds = sorted(set(accs[a]) & set(accs[b]))
        diffs = [accs[a][s] - accs[b][s] for s in seeds]
        s = summarise(diffs)
        raw.append((a, b, diffs, s, _t_p(s) if s else 1.0, sign_flip_p(diffs) if diffs else 1.0))
    testable = [i for i, r in enumerate(raw) if r[3] is not None and r[3].n >= 2]
    m = len(testable)
    adj_t = dict(zip(testable, holm([raw[i][4] for i in testable])))
    adj_f = dict(zip(testable, holm([raw[i][5] for i in testable])))
    # the level of each pair's interval: Holm's at its step, or at the step where Holm stopped
    steps = sorted(testable, key=lambda i: raw[i][4])
    stop = next((k for k, i in enumerate(steps) if raw[i][4] > alpha / (m - k)), m)
    levels = {i: 1 - alpha / (m - min(k, stop)) for k, i in enumerate(steps)}
    pairs = {}
    for i, (a, b, diffs, s, p_t, p_f) in enumerate(raw):
        lo, hi = _interval(diffs, levels[i]) if i in levels else (math.nan, math.nan)
        pairs[(a, b)] = Pair(a, b, 0 if s is None else s.n, s, p_t, p_f, adj_t.get(i, 1.0), adj_f.get(i, 1.0), lo, hi,
                             levels.get(i, 0.95))
    ranked = [lab for lab in labels if len(accs[lab]) >= 2]
    apart = {frozenset((p.a, p.b)) for p in pairs.values() if p.apart and p.a in ranked and p.b in ranked}
    groups = {lab: "—" for lab in labels}
    groups.update(letters(ranked, apart))
    return Block(pairs, groups, _mean_ranks(accs), {lab: len(v) for lab, v in accs.items()}, m)


def _mean_ranks(accs: dict[str, dict[int, float]]) -> dict[str, float]:
    """Each label's rank (1 = best, ties averaged) on each seed that every label of the block ran,
    averaged over those seeds (as a Friedman test or a critical-difference diagram ranks: over complete
    blocks only, so that no label is ranked among fewer rivals on some seeds); NaN where no seed is shared."""
    shared = set.intersection(*(set(v) for v in accs.values())) if accs else set()
    ranks: dict[str, list[float]] = {lab: [] for lab in accs}
    for seed in sorted(shared):
        values = sorted((v[seed] for v in accs.values()), reverse=True)
        for lab, v in accs.items():
            ranks[lab].append(values.index(v[seed]) + 1 + (values.count(v[seed]) - 1) / 2)
    return {lab: float(np.mean(r)) if r else math.nan for lab, r in ranks.items()}


def letters(order: list[str], apart: set[frozenset]) -> dict[str, str]:
    """A compact letter display (Piepho 2004, insert-absorb) of ``order`` (best first): two labels share
    a letter exactly where they are not ``apart``, unless a chain of overlaps forces otherwise: the
    display is the smallest in Piepho's sense, every pair ``apart`` shares no letter, and every other
    pair shares one. Letters are given in order of the best label of each group ("a" holds the best)."""
    if not order:
        return {}
    cols: list[set[str]] = [set(order)]
    for pair in sorted(apart, key=lambda p: sorted(order.index(x) for x in p)):
        x, y = tuple(pair)
        new: list[set[str]] = []
        for col in cols:
            if x in col and y in col:  # insert: split the column in two, one without each
                new += [col - {x}, col - {y}]
            else:
                new.append(col)
        # absorb: drop columns contained in another
        new = [c for i, c in enumerate(new) if c and not any(c < d or (c == d and j < i) for j, d in enumerate(new))]
        cols = new
    cols.sort(key=lambda c: min(order.index(x) for x in c))
    names = "abcdefghijklmnopqrstuvwxyz"
    out = {lab: "" for lab in order}
    for k, col in enumerate(cols):
        letter = names[k] if k < 26 else f"({k + 1})"
        for lab in order:
            if lab in col:
                out[lab] += letter
    return out
