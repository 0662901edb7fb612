import numpy as np
from avalanche.training import Naive
from avalanche.training.storage_policy import HerdingSelectionStrategy

from dqcl.core.validation import out_of_range
from dqcl.train import Base, register_strategy
from dqcl.train.replay import memory_for


def herding_selector(dataset, count: int, strategy, exp_id: int) -> np.ndarray:
    """Avalanche's iCaRL herding on the CPnet style vector (the output of its `make_style` layer), in herding order.
    A CPSAM network (``model.arch = "cpsam"``) has a `make_style` module too: its encoder tokens, mean-pooled."""
    order = HerdingSelectionStrategy(strategy.model, "net.make_style").make_sorted_indices(strategy, dataset)
    return np.asarray(order[:count], dtype=np.int64)


@register_strategy(
    "herding_replay",
    description="herding replay: keep the patches whose mean style vector best matches each past domain's (fraction `rate`)",
    reference="Rebuffi et al. 2017 (iCaRL), CVPR",
    effects=("memory",),
)
def herding_replay(base: Base, *, rate: float = 0.05) -> Naive:
    return Naive(**base.kwargs(memory_for(base, rate, herding_selector)))


herding_replay.check = lambda rate: out_of_range("rate", rate, 0, 1, lo_open=True)
