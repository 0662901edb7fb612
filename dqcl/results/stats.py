"""Statistics over seeds: mean, standard deviation, 95 % intervals, paired differences.

Every interval is a two-sided 95 % Student-t interval over seeds, mean ± t(0.975, n-1) * sd / sqrt(n),
with the sample standard deviation (ddof = 1): where the mean over seeds lies. Where ONE new run
(another seed, or a rerun on other hardware) should land is wider, the prediction interval
mean ± t(0.975, n-1) * sd * sqrt(1 + 1/n) (`predict`). Two strategies are compared on the seeds
both ran, difference by difference (paired): the seed fixes the initial network, the order
of batches and the augmentation, so seed-to-seed variation common to both cancels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["Summary", "summarise", "predict", "paired", "fmt"]


@dataclass(frozen=True)
class Summary:
    n: int
    mean: float
    std: float  # ddof = 1; nan for one value
    lo: float  # 95 % interval; nan for one value
    hi: float

    def excludes_zero(self) -> bool:
        return self.n >= 2 and (self.lo > 0 or self.hi < 0)


def _t975(dof: int) -> float:
    """Student's t 97.5 % quantile (scipy.special's, not scipy.stats': the same number, a third of the import time)."""
    from scipy.special import stdtrit

    return float(stdtrit(dof, 0.975))


def summarise(values) -> Summary | None:
    vals = [float(v) for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    if not vals:
        return None
    n, mean = len(vals), float(np.mean(vals))
    if n == 1:
        return Summary(1, mean, math.nan, math.nan, math.nan)
    std = float(np.std(vals, ddof=1))
    half = _t975(n - 1) * std / math.sqrt(n)
    return Summary(n, mean, std, mean - half, mean + half)


def predict(values) -> Summary | None:
    """``values``' summary with ``lo`` and ``hi`` the 95 % prediction interval of one new run drawn as
    they were: mean ± t(0.975, n-1) * sd * sqrt(1 + 1/n) (the mean's uncertainty plus one run's
    spread); one value: no interval (nan); none: None."""
    s = summarise(values)
    if s is None or s.n == 1:
        return s
    half = _t975(s.n - 1) * s.std * math.sqrt(1 + 1 / s.n)
    return Summary(s.n, s.mean, s.std, s.mean - half, s.mean + half)


def paired(a: dict[int, float], b: dict[int, float]) -> Summary | None:
    """The difference a - b over the seeds both have (None if they share none)."""
    seeds = sorted(set(a) & set(b))
    return summarise([a[s] - b[s] for s in seeds]) if seeds else None


def fmt(s: Summary | None, interval: bool = True, signed: bool = False) -> str:
    """"0.412 ± 0.031 [0.335, 0.489]"; one seed: the value alone; no values: "—"."""
    if s is None:
        return "—"
    sign = "+" if signed else ""
    if s.n == 1:
        return f"{s.mean:{sign}.3f}"
    text = f"{s.mean:{sign}.3f} ± {s.std:.3f}"
    return text + (f" [{s.lo:{sign}.3f}, {s.hi:{sign}.3f}]" if interval else "")
