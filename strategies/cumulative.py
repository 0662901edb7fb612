from avalanche.training import Cumulative

from dqcl.train import Base, register_strategy


@register_strategy(
    "cumulative",
    description="full replay: each experience trains on all data of every domain seen so far",
    reference="",
    effects=("memory",),
    memory="all",
)
def cumulative(base: Base) -> Cumulative:
    return Cumulative(**base.kwargs())
