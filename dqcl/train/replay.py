"""Replay memories as Avalanche storage policies: which patches of an experience a memory keeps.

A selector picks ``count`` patches of an experience: at random (`random_selector`) or by
dataset quantization on an embedding of the experience's patches (`dq_selector`). The storage
policy (`dqcl.train.rehearsal.BalancedBuffer`) asks for as many as the run's memory budget
allows and `dqcl.train.rehearsal.ReplayPlugin` replays them; `memory_for` builds the two from
a strategy's ``base``. (Avalanche's own `ReplayPlugin` draws a full extra memory minibatch every
step whatever the memory's size; dqcl's protocol ``"mix"`` replays a 1 % memory as 1 % of the data.)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..data.streams import dataset_tensors
from ..dq.embedders import embed, embed_options
from ..dq.selectors import capped_bins, select
from .rehearsal import (
    BalancedBuffer,
    Budget,
    ReplayPlugin,
    Selector,
    keep_count,
    random_selector,
)

__all__ = ["Selector", "random_selector", "dq_selector", "FractionBuffer", "DQBuffer", "keep_count", "memory_for",
           "exact_count"]


def exact_count(idx: np.ndarray, n: int, count: int, seed: int) -> np.ndarray:
    """``idx`` made exactly ``count`` long: DQ keeps a whole number of patches per bin, so its coreset
    at rate count / n can fall short of ``count`` (or pass it); the shortfall is drawn at random from
    the rest, and an excess is dropped at random (both seeded). The result is in random keep order."""
    rng = np.random.default_rng([seed, 3])
    idx = rng.permutation(np.unique(idx))
    if len(idx) >= count:
        return idx[:count]
    rest = np.setdiff1d(np.arange(n), idx)
    return np.concatenate([idx, rng.choice(rest, size=count - len(idx), replace=False)])


def dq_selector(
    variant: str = "mmv", bins: int = 10, embedder: str = "style", seed: int = 0,
    cache_dir: Path | None = None, embedder_weights: str = "", rate: float | None = None,
) -> Selector:
    """Embed an experience's patches, then pick a coreset of it with `dqcl.dq.selectors.select`.

    With ``embedder="style"`` the features are the style vectors of the network as it is
    after training on that experience (the strategy's model). With ``rate`` (a memory with no
    budget, dqcl 0.3's behaviour) the coreset is DQ's at that rate, whatever its size; without,
    it is exactly the count asked for (`exact_count`).
    """

    def pick(dataset, count: int, strategy, exp_id: int) -> np.ndarray:
        x, y = dataset_tensors(dataset)
        images, labels = x.numpy(), y[:, 0].numpy().astype(np.int32)
        opts = embed_options(embedder, embedder_weights, strategy.model if embedder == "style" else None)
        feats = embed(embedder, images, labels, cache_dir=cache_dir, **opts)
        n = len(feats)
        r = rate if rate is not None else min(1.0, count / n)
        idx = select(feats, r, capped_bins(bins, n, r), variant, seed=seed + exp_id)
        return idx if rate is not None else exact_count(idx, n, count, seed + exp_id)

    return pick


class FractionBuffer(BalancedBuffer):
    """Keeps ``rate`` of each experience's samples (picked by ``select``) beside what it kept before.

    The memory grows with the stream: a fraction of every past domain is the paper's protocol,
    not a fixed budget shared between domains (a spec's ``[memory] size`` gives one).
    """

    def __init__(self, rate: float, select: Selector) -> None:
        super().__init__(Budget(rate=rate), select)
        self.rate = rate


class DQBuffer(FractionBuffer):
    """DQ replay's storage policy at a rate: a `FractionBuffer` whose selector is dataset quantization."""

    def __init__(self, rate: float, variant: str = "mmv", bins: int = 10, embedder: str = "style", seed: int = 0,
                 cache_dir: Path | None = None, embedder_weights: str = "") -> None:
        super().__init__(rate, dq_selector(variant, bins, embedder, seed, cache_dir, embedder_weights, rate=rate))


def memory_for(base, rate: float, select: Selector) -> ReplayPlugin:
    """The replay plugin of a selector-based strategy: the run's memory budget if the spec gives one,
    else the strategy's own ``rate`` of each earlier domain, mixed into the training set."""
    budget = base.memory or Budget(rate=rate, batch_size=base.train_mb_size)
    return ReplayPlugin(budget, BalancedBuffer(budget, select), seed=base.seed)
