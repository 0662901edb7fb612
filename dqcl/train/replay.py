"""Replay memories as Avalanche storage policies, and the plugin that replays them.

`FractionBuffer` keeps a fixed fraction of every experience it has seen, chosen by a
selector: random (`random_selector`) or dataset quantization on an embedding of the
experience's patches (`dq_selector`, `DQBuffer`). `MixReplayPlugin` adds the
memory to the next experience's training set, so the share of replayed samples in each
batch equals the memory's share of the data, as in the paper's protocol. (Avalanche's own
`ReplayPlugin` draws a full extra memory minibatch every step whatever the memory's size,
which replays a 1 % memory as often as a 100 % one.)
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
from avalanche.core import SupervisedPlugin
from avalanche.training.storage_policy import ExemplarsBuffer

from ..data.streams import dataset_tensors
from ..dq.embedders import embed, embed_options
from ..dq.selectors import capped_bins, select

__all__ = ["Selector", "random_selector", "dq_selector", "FractionBuffer", "DQBuffer", "MixReplayPlugin", "keep_count"]

# (dataset, rate, strategy, experience id) -> indices into the dataset
Selector = Callable[[object, float, object, int], np.ndarray]


def keep_count(n: int, rate: float) -> int:
    """How many of n samples a memory at ``rate`` keeps: max(1, int(n * rate)), as the paper's code does."""
    return min(n, max(1, int(n * rate)))


def random_selector(seed: int) -> Selector:
    def select(dataset, rate: float, strategy, exp_id: int) -> np.ndarray:
        rng = np.random.default_rng([seed, exp_id])
        return rng.choice(len(dataset), size=keep_count(len(dataset), rate), replace=False)

    return select


def dq_selector(
    variant: str = "mmv", bins: int = 10, embedder: str = "style", seed: int = 0,
    cache_dir: Path | None = None, embedder_weights: str = "",
) -> Selector:
    """Embed an experience's patches, then pick a coreset of it with `dqcl.dq.selectors.select`.

    With ``embedder="style"`` the features are the style vectors of the network as it is
    after training on that experience (the strategy's model).
    """

    def pick(dataset, rate: float, strategy, exp_id: int) -> np.ndarray:
        x, y = dataset_tensors(dataset)
        images, labels = x.numpy(), y[:, 0].numpy().astype(np.int32)
        opts = embed_options(embedder, embedder_weights, strategy.model if embedder == "style" else None)
        feats = embed(embedder, images, labels, cache_dir=cache_dir, **opts)
        return select(feats, rate, capped_bins(bins, len(feats), rate), variant, seed=seed + exp_id)

    return pick


class FractionBuffer(ExemplarsBuffer):
    """Keeps ``rate`` of each experience's samples (picked by ``select``) beside what it kept before.

    The memory grows with the stream (``max_size`` follows it): a fraction of every past
    domain is the paper's protocol, not a fixed budget shared between domains.
    """

    def __init__(self, rate: float, select: Selector) -> None:
        super().__init__(max_size=0)
        self.rate = rate
        self.select = select
        self.kept: list[np.ndarray] = []  # indices kept of each experience, in order

    def post_adapt(self, agent_state, exp) -> None:
        data = exp.dataset
        idx = np.unique(np.asarray(self.select(data, self.rate, agent_state, exp.current_experience), dtype=np.int64))
        k = len(idx)
        self.kept.append(idx)
        self.buffer = self.buffer.concat(data.subset(idx.tolist())) if len(self.buffer) else data.subset(idx.tolist())
        self.max_size += k

    def resize(self, strategy, new_size: int) -> None:
        self.max_size = new_size
        if len(self.buffer) > new_size:
            self.buffer = self.buffer.subset(list(range(new_size)))


class DQBuffer(FractionBuffer):
    """DQ replay's storage policy: a `FractionBuffer` whose selector is dataset quantization."""

    def __init__(self, rate: float, variant: str = "mmv", bins: int = 10, embedder: str = "style", seed: int = 0,
                 cache_dir: Path | None = None, embedder_weights: str = "") -> None:
        super().__init__(rate, dq_selector(variant, bins, embedder, seed, cache_dir, embedder_weights))


class MixReplayPlugin(SupervisedPlugin):
    """Avalanche plugin: train each experience on its data plus the storage policy's buffer."""

    def __init__(self, storage_policy: ExemplarsBuffer) -> None:
        super().__init__()
        self.storage_policy = storage_policy

    def after_train_dataset_adaptation(self, strategy, **kwargs) -> None:
        if len(self.storage_policy.buffer):
            strategy.adapted_dataset = strategy.adapted_dataset.concat(self.storage_policy.buffer)

    def after_training_exp(self, strategy, **kwargs) -> None:
        self.storage_policy.post_adapt(strategy, strategy.experience)
