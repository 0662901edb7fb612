from avalanche.training import Naive

from dqcl.core.validation import out_of_range
from dqcl.train import Base, register_strategy
from dqcl.train.replay import memory_for, random_selector


@register_strategy(
    "replay",
    description="random replay: keep a random fraction `rate` of each past domain and train on it with the next",
    reference="Rolnick et al. 2019 (experience replay); Chaudhry et al. 2019",
    effects=("memory",),
)
def replay(base: Base, *, rate: float = 0.05) -> Naive:
    return Naive(**base.kwargs(memory_for(base, rate, random_selector(base.seed))))


replay.check = lambda rate: out_of_range("rate", rate, 0, 1, lo_open=True)
