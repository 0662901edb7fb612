"""The memory budget every rehearsal strategy obeys, and the two ways memory reaches the batches.

A spec's ``[memory]`` table (`dqcl.config.schema.MemorySpec`) becomes a `Budget`, handed to
every strategy as ``base.memory``. A strategy that declares the ``memory`` effect keeps at most
``Budget.size`` patches of earlier domains in total (or ``Budget.rate`` of each), whatever its
own parameters say; the contract suite (`dqcl.checks`) checks it from outside, by counting the
distinct patches of the first domain that reach the network while it trains the second.

How memory reaches the batches (``protocol``):

- ``"mix"``: the memory joins the next domain's training set, so the share of replayed
  samples in each batch is the memory's share of the data (the paper's protocol);
- ``"batch"``: every step draws ``replay_batch`` samples from memory beside the new data
  (experience replay as in mammoth and Avalanche's ``ReplayPlugin``).

Compute (``compute``): ``"appended"`` adds the memory samples to a full batch of new data;
``"matched"`` takes them out of it (``batch_size - replay_batch`` new samples), so every
strategy backpropagates ``batch_size`` samples per step and no ranking can come from more
gradient signal. The gradient-projection methods (A-GEM, GEM) count their memory pass as
part of the step the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from avalanche.core import SupervisedPlugin
from avalanche.training.storage_policy import ExemplarsBuffer

from ..config.quotas import keep_count, quotas, shares
from ..config.schema import COMPUTE, PROTOCOLS

__all__ = ["Budget", "PROTOCOLS", "COMPUTE", "keep_count", "BalancedBuffer", "EpisodicMemory", "Reservoir", "ReplayPlugin",
           "Rehearsal", "MemoryContent", "held_by", "old_share_of", "random_selector"]


# (dataset, count, strategy, experience id) -> indices into the dataset, in the order they are kept
Selector = Callable[[object, int, object, int], np.ndarray]


def random_selector(seed: int) -> Selector:
    """``count`` patches of an experience at random (a generator seeded by the run and the experience)."""

    def pick(dataset, count: int, strategy, exp_id: int) -> np.ndarray:
        rng = np.random.default_rng([seed, exp_id])
        return rng.choice(len(dataset), size=count, replace=False)

    return pick


@dataclass(frozen=True)
class Budget:
    """The memory every rehearsal strategy of a run holds, and how it is replayed."""

    size: int = 0  # patches in total over every earlier domain (0: ``rate`` decides)
    rate: float = 0.0  # or: this fraction of each earlier domain
    protocol: str = "mix"
    replay_batch: int = 0  # memory samples per step (protocol "batch", DER++, A-GEM, GEM); 0: the batch size
    compute: str = "appended"
    batch_size: int = 8

    def quotas(self, sizes: list[int]) -> list[int]:
        """Patches kept of each domain seen so far, given their patch counts.

        A size is shared equally among the domains seen (the first ones get the remainder),
        as Avalanche's experience-balanced buffer does; a domain smaller than its share keeps
        all of itself. A rate keeps ``keep_count(n, rate)`` of each domain.
        """
        return quotas(self.size, self.rate, sizes)

    @property
    def per_step(self) -> int:
        """Memory samples in one step's batch."""
        return self.replay_batch or self.batch_size

    def new_per_step(self, memory_in_batch: bool) -> int:
        """New-data samples per step: all of the batch, or the batch less the memory's part when compute is matched."""
        if self.compute == "matched" and memory_in_batch:
            return max(1, self.batch_size - self.per_step)
        return self.batch_size

    def describe(self) -> str:
        held = f"{self.size} patches" if self.size > 0 else f"{self.rate:g} of each earlier domain"
        how = "in the training set" if self.protocol == "mix" else f"{self.per_step} memory samples per step"
        return f"{held}, {how}, compute {self.compute}"


class Rehearsal:
    """What every rehearsal plugin reports: the patches of earlier domains it holds now, and the share of
    its memory that holds earlier domains than the one being trained (a storage filled after each
    experience holds nothing else: 1; a reservoir also takes the current domain's samples)."""

    def memory_held(self) -> int:
        raise NotImplementedError

    def old_share(self, experience: int) -> float | None:
        """The share of the memory's samples that come from experiences before ``experience`` (None: empty)."""
        return 1.0 if self.memory_held() > 0 else None


def old_share_of(strategy, experience: int) -> float | None:
    """The share of the strategy's memory (all its rehearsal plugins) holding earlier domains than ``experience``."""
    shares = [(p.memory_held(), p.old_share(experience)) for p in strategy.plugins if isinstance(p, Rehearsal)]
    shares = [(n, s) for n, s in shares if s is not None and n > 0]
    return sum(n * s for n, s in shares) / sum(n for n, _ in shares) if shares else None


def held_by(strategy) -> int | None:
    """Patches of earlier domains the strategy's rehearsal plugins hold (None: it has none)."""
    held = [p.memory_held() for p in strategy.plugins if isinstance(p, Rehearsal)]
    return sum(held) if held else None


class BalancedBuffer(ExemplarsBuffer, Rehearsal):
    """Keeps, of every experience seen, the patches its ``select`` picks, as many as the budget allows.

    `Budget.quotas` gives each experience's share from the patch counts of all seen so far:
    a fixed size shrinks the earlier shares as domains arrive (each keeps the first of its
    picks, in the selector's order), a rate keeps what the selector picked of each for good.
    Only the picks are held (a checkpoint stores them, not the experience); the buffer holds
    each experience's kept patches in index order.
    """

    checkpoint_transient = ("budget",)  # the run's settings, built anew from its config

    def __init__(self, budget: Budget, select: Selector) -> None:
        super().__init__(max_size=0)
        self.budget = budget
        self.select = select
        self.sizes: list[int] = []  # each experience's patch count
        self.picked: list = []  # each experience's picks, in index order
        self.picked_indices: list[np.ndarray] = []  # each experience's picks: their indices, in index order
        self.rank: list[np.ndarray] = []  # the keep-order place of each pick
        self.places: list[np.ndarray] = []  # the places in ``picked`` kept now
        self.kept: list[np.ndarray] = []  # the indices kept of each experience now, in index order

    def post_adapt(self, agent_state, exp) -> None:
        data = exp.dataset
        self.sizes.append(len(data))
        count = self.budget.quotas(self.sizes)[-1]  # 0: a budget smaller than the domains seen keeps none of this one
        picks = np.asarray(self.select(data, count, agent_state, exp.current_experience) if count else [], dtype=np.int64)
        _, first = np.unique(picks, return_index=True)  # a repeated pick counts once, in its first place
        order = picks[np.sort(first)]
        by_index = np.argsort(order, kind="stable")
        self.picked_indices.append(order[by_index])
        self.picked.append(data.subset(order[by_index].tolist()))
        self.rank.append(by_index)  # the sorted pick j was picked by_index[j]-th
        self._rebuild()

    def _rebuild(self) -> None:
        if self.budget.size > 0:
            quota = self.budget.quotas(self.sizes)
            self.places = [np.flatnonzero(rank < q) for rank, q in zip(self.rank, quota)]
        else:  # a rate: each experience keeps what its selector picked (DQ's coreset need not be exactly the count)
            self.places = [np.arange(len(rank)) for rank in self.rank]
        self.kept = [idx[p] for idx, p in zip(self.picked_indices, self.places)]
        parts = self.parts()
        buffer = parts[0] if parts else None
        for part in parts[1:]:
            buffer = buffer.concat(part)
        if buffer is not None:
            self.buffer = buffer
        self.max_size = sum(len(k) for k in self.places)

    def parts(self) -> list:
        """What is kept of each earlier experience, one dataset each."""
        return [p if len(k) == len(p) else p.subset(k.tolist()) for p, k in zip(self.picked, self.places) if len(k)]

    def resize(self, strategy, new_size: int) -> None:
        self.max_size = new_size
        if len(self.buffer) > new_size:
            self.buffer = self.buffer.subset(list(range(new_size)))

    def memory_held(self) -> int:
        return len(self.buffer)


class EpisodicMemory(Rehearsal):
    """The per-experience memory of the gradient-projection methods (A-GEM, GEM) under a budget:
    a `BalancedBuffer` of random picks, and a draw of exactly ``budget.per_step`` samples per step,
    shared among the earlier experiences as near-equally as whole samples allow (`shares`: the first
    ones take the remainder). A budget that cannot supply that many (fewer samples per step than
    earlier domains, or a domain's memory smaller than its share) is refused before the run trains
    (`dqcl.config.quotas.supply_problem`), so every step under compute matched backpropagates the batch."""

    checkpoint_transient = ("budget",)  # the run's settings, built anew from its config

    def __init__(self, budget: Budget, seed: int, reference: int = 0, whole: bool = False) -> None:
        self.budget = budget
        self.storage = BalancedBuffer(budget, random_selector(seed))
        self.rng = np.random.default_rng([seed, 13])
        # the papers' sizes: ``reference`` samples a step (A-GEM: 256), or ``whole`` memory (GEM), each a pass
        # apart from the batch (`dqcl.train.plugins.reference_pass`); 0 and False: ``budget.per_step`` in the batch
        self.reference, self.whole = reference, whole

    @property
    def apart(self) -> bool:
        """Whether the memory samples are a reference pass apart from the batch (not part of it)."""
        return self.reference > 0 or self.whole

    def add(self, strategy) -> None:
        self.storage.post_adapt(strategy, strategy.experience)

    def groups(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """(inputs, targets) kept of each earlier experience."""
        from ..data.streams import dataset_tensors

        return [dataset_tensors(part) for part in self.storage.parts()]

    def draw(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """This step's memory sample: per earlier experience, (inputs, targets)."""
        groups = self.groups()
        if self.whole:
            return groups
        out = []
        for (x, y), share in zip(groups, shares(self.reference or self.budget.per_step, len(groups))):
            idx = torch.from_numpy(self.rng.choice(len(x), size=min(share, len(x)), replace=False))
            out.append((x[idx], y[idx]))
        return out

    def memory_held(self) -> int:
        return self.storage.memory_held()

    def set_batch(self, strategy) -> None:
        """The new-data batch size of the coming experience (smaller when compute is matched and memory samples
        take part of the batch; whole where they are a reference pass apart from it)."""
        strategy.train_mb_size = self.budget.new_per_step(self.memory_held() > 0 and not self.apart)


class Reservoir(Rehearsal):
    """Reservoir sampling over every training sample offered (Vitter's algorithm R, as mammoth's buffer):
    after n offers each one is held with probability size / n. Holds inputs, targets and,
    optionally, the network's outputs on them (DER).

    ``balanced``: a domain-balanced reservoir (class-balanced reservoir sampling, Chrysakis & Moens 2020,
    with domains as the classes): once full, a sample of a domain that holds fewer slots than the
    largest replaces a random slot of the largest; a sample of the largest domain replaces a random slot
    of its own domain with probability (its slots) / (its samples offered). The domains then share the
    memory about equally, as a storage filled after each experience does."""

    def __init__(self, size: int, rng: np.random.Generator, balanced: bool = False) -> None:
        self.size = size
        self.rng = rng
        self.balanced = balanced
        self.offered: dict[int, int] = {}  # samples offered per experience (the balanced rule's n_c)
        self.x: torch.Tensor | None = None
        self.y: torch.Tensor | None = None
        self.out: torch.Tensor | None = None
        self.filled = 0
        self.seen = 0
        self.experience = 0  # the experience whose samples are offered now (its plugin sets it)
        self.origin = np.zeros(size, dtype=np.int64)  # the experience each slot's sample came from

    def offer(self, x: torch.Tensor, y: torch.Tensor, out: torch.Tensor | None = None) -> None:
        x, y = x.detach().cpu(), y.detach().cpu()
        out = out.detach().cpu() if out is not None else None
        if self.x is None:
            self.x = torch.empty((self.size, *x.shape[1:]), dtype=x.dtype)
            self.y = torch.empty((self.size, *y.shape[1:]), dtype=y.dtype)
            if out is not None:
                self.out = torch.empty((self.size, *out.shape[1:]), dtype=out.dtype)
        for b in range(len(x)):
            self.offered[self.experience] = self.offered.get(self.experience, 0) + 1
            if self.filled < self.size:
                slot = self.filled
                self.filled += 1
            elif self.balanced:
                slot = self._balanced_slot()
            else:
                slot = int(self.rng.integers(0, self.seen + 1))
            if slot < self.size:
                self.x[slot], self.y[slot] = x[b], y[b]
                self.origin[slot] = self.experience
                if out is not None:
                    self.out[slot] = out[b]
            self.seen += 1

    def _balanced_slot(self) -> int:
        """The slot a sample of ``experience`` replaces in a full balanced reservoir (``size``: it is not kept)."""
        counts = np.bincount(self.origin[: self.filled], minlength=self.experience + 1)
        largest = int(counts.max())
        if counts[self.experience] < largest:  # another domain holds more: take one of its slots
            groups = np.flatnonzero(counts == largest)
            group = int(groups[self.rng.integers(len(groups))])
        else:  # this domain is (one of) the largest: reservoir sampling within its own slots
            if self.rng.random() >= counts[self.experience] / self.offered[self.experience]:
                return self.size
            group = self.experience
        slots = np.flatnonzero(self.origin[: self.filled] == group)
        return int(slots[self.rng.integers(len(slots))])

    def old_share(self, experience: int) -> float | None:
        """The share of the filled slots holding samples of experiences before ``experience``."""
        return float(np.mean(self.origin[: self.filled] < experience)) if self.filled else None

    def draw(self, k: int) -> np.ndarray:
        """``k`` distinct slots at random (all of them when fewer are filled)."""
        return self.rng.choice(self.filled, size=min(k, self.filled), replace=False)

    def memory_held(self) -> int:
        return self.filled


class ReplayPlugin(SupervisedPlugin, Rehearsal):
    """Trains each experience with the memory of a storage policy, by the budget's protocol.

    ``"mix"`` concatenates the memory to the experience's data; ``"batch"`` draws
    ``budget.per_step`` memory samples at random for every step and puts them in the batch
    before augmentation (so they are flipped and turned as new samples are), from the second
    experience on (the first has no earlier domain to replay). With ``reservoir`` the memory is
    a reservoir over every new sample trained on (experience replay); otherwise it is the
    storage policy, filled after each experience.
    """

    checkpoint_transient = ("budget",)  # the run's settings, built anew from its config

    def __init__(self, budget: Budget, storage: BalancedBuffer | None = None, reservoir: Reservoir | None = None,
                 seed: int = 0) -> None:
        super().__init__()
        self.budget, self.storage, self.reservoir = budget, storage, reservoir
        self.rng = np.random.default_rng([seed, 11])
        self._new: tuple[torch.Tensor, torch.Tensor] | None = None
        self._in_batch = False

    def _held(self) -> int:
        return self.reservoir.filled if self.reservoir is not None else len(self.storage.buffer)

    def memory_held(self) -> int:
        return self._held()

    def old_share(self, experience: int) -> float | None:
        return self.reservoir.old_share(experience) if self.reservoir is not None else super().old_share(experience)

    def after_train_dataset_adaptation(self, strategy, **kwargs) -> None:
        if self.reservoir is not None:
            self.reservoir.experience = strategy.clock.train_exp_counter
        if self.budget.protocol == "mix" and self.storage is not None and len(self.storage.buffer):
            strategy.adapted_dataset = strategy.adapted_dataset.concat(self.storage.buffer)
        # memory reaches the batches from the first experience that has earlier domains to replay
        self._in_batch = self.budget.protocol == "batch" and self._held() > 0
        strategy.train_mb_size = self.budget.new_per_step(self._in_batch)

    def before_training_iteration(self, strategy, **kwargs) -> None:
        x, y = strategy.mbatch[0], strategy.mbatch[1]
        if self.reservoir is not None:
            self._new = (x, y)
        if not self._in_batch:
            return
        if self.reservoir is not None:
            slots = self.reservoir.draw(self.budget.per_step)
            mx, my = self.reservoir.x[slots], self.reservoir.y[slots]
        else:
            buf = self.storage.buffer
            idx = self.rng.choice(len(buf), size=min(self.budget.per_step, len(buf)), replace=False)
            mx, my = zip(*(buf[int(i)][:2] for i in idx))
            mx, my = torch.stack(mx), torch.stack(my)
        strategy.mbatch[0] = torch.cat([x, mx.to(x.device, x.dtype)])
        strategy.mbatch[1] = torch.cat([y, my.to(y.device, y.dtype)])

    def after_training_iteration(self, strategy, **kwargs) -> None:
        if self.reservoir is not None and self._new is not None:
            self.reservoir.offer(*self._new)
        self._new = None

    def after_training_exp(self, strategy, **kwargs) -> None:
        if self.storage is not None:
            self.storage.post_adapt(strategy, strategy.experience)


class MemoryContent(SupervisedPlugin):
    """The share of a strategy's memory holding earlier domains than the one it trains, after every step of
    an experience, averaged over the experience (`old_share_of`; None for an experience with no memory): a
    reservoir (ER, DER++) takes the current domain's samples too, a storage filled after each experience
    (replay, DQ replay, A-GEM, GEM) holds only earlier domains. ``shares`` keeps one value per experience."""

    def __init__(self) -> None:
        super().__init__()
        self.shares: list[float | None] = []
        self._seen: list[float] = []

    def before_training_exp(self, strategy, **kwargs) -> None:
        self._seen = []

    def after_training_iteration(self, strategy, **kwargs) -> None:
        share = old_share_of(strategy, strategy.clock.train_exp_counter)
        if share is not None:
            self._seen.append(share)

    def after_training_exp(self, strategy, **kwargs) -> None:
        self.shares.append(round(float(np.mean(self._seen)), 4) if self._seen else None)
