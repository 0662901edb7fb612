from avalanche.training import MAS

from dqcl.core.validation import out_of_range
from dqcl.train import Base, register_strategy


@register_strategy(
    "mas",
    description="memory aware synapses: a penalty on weights by the sensitivity of the network's output",
    reference="Aljundi et al. 2018, ECCV",
)
def mas(base: Base, *, lambda_reg: float = 1.0, alpha: float = 0.5) -> MAS:
    return MAS(lambda_reg=lambda_reg, alpha=alpha, **base.kwargs())


mas.check = lambda lambda_reg, alpha: out_of_range("lambda_reg", lambda_reg, 0) or out_of_range("alpha", alpha, 0, 1)
