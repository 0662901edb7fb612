from avalanche.training import Naive

from dqcl.core.validation import out_of_range
from dqcl.train import Base, register_strategy
from dqcl.train.replay import FractionBuffer, MixReplayPlugin, random_selector


@register_strategy(
    "replay",
    description="random replay: keep a random fraction `rate` of each past domain and train on it with the next",
    reference="Rolnick et al. 2019 (experience replay); Chaudhry et al. 2019",
    effects=("memory",),
)
def replay(base: Base, *, rate: float = 0.05) -> Naive:
    memory = FractionBuffer(rate, random_selector(base.seed))
    return Naive(**base.kwargs(MixReplayPlugin(memory)))


replay.check = lambda rate: out_of_range("rate", rate, 0, 1, lo_open=True)
