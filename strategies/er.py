import numpy as np
from avalanche.training import Naive

from dqcl.core.validation import out_of_range
from dqcl.train import Base, register_strategy
from dqcl.train.rehearsal import Budget, ReplayPlugin, Reservoir


@register_strategy(
    "er",
    description="experience replay: a reservoir over every sample trained on; each step adds a minibatch drawn from it",
    reference="Chaudhry et al. 2019 (tiny episodic memories); Buzzega et al. 2020 (mammoth's ER)",
    effects=("memory",),
    memory="size",
    protocols=("batch",),
)
def er(base: Base, *, mem_size: int = 32, replay_batch: int = 0, balanced: bool = False) -> Naive:
    """``mem_size`` and ``replay_batch`` (0: the batch size) hold when the spec has no ``[memory]``
    table; with one, its size and replay minibatch win. Replay starts with the second experience.
    ``balanced``: a domain-balanced reservoir (`dqcl.train.rehearsal.Reservoir`), so that the memory holds
    the earlier domains about as much as a storage filled after each experience does."""
    budget = base.memory or Budget(size=mem_size, protocol="batch", replay_batch=replay_batch, batch_size=base.train_mb_size)
    reservoir = Reservoir(budget.size, np.random.default_rng([base.seed, 7]), balanced=balanced)
    return Naive(**base.kwargs(ReplayPlugin(budget, reservoir=reservoir, seed=base.seed)))


er.check = lambda mem_size, replay_batch, balanced: out_of_range("mem_size", mem_size, 1) or out_of_range("replay_batch", replay_batch, 0)
er.added_later = {"balanced": False}  # left out of a run's key at its default: the published ER runs keep theirs
