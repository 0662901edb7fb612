from avalanche.training import Naive

from dqcl.memory import FractionBuffer, MixReplayPlugin, random_selector
from dqcl.strategy import Base, register_strategy


def _check(rate: float) -> str | None:
    if not 0.0 < rate <= 1.0:
        return f"rate must be in (0, 1], got {rate}"
    return None


@register_strategy(
    "replay",
    description="random replay: keep a random fraction `rate` of each past domain and train on it with the next",
    reference="Rolnick et al. 2019 (experience replay); Chaudhry et al. 2019",
)
def replay(base: Base, *, rate: float = 0.05) -> Naive:
    memory = FractionBuffer(rate, random_selector(base.seed))
    return Naive(**base.kwargs(MixReplayPlugin(memory)))


replay.check = _check
