from avalanche.training import Naive

from dqcl.train import Base, register_strategy


@register_strategy(
    "naive",
    description="fine-tuning: train on each domain in turn, nothing done against forgetting (lower bound)",
    reference="",
)
def naive(base: Base) -> Naive:
    return Naive(**base.kwargs())
