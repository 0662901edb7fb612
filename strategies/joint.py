from avalanche.training import JointTraining

from dqcl.train import Base, register_strategy


@register_strategy(
    "joint",
    description="joint training on all domains at once, trained once (upper bound; its R has a single row)",
    reference="",
)
def joint(base: Base) -> JointTraining:
    return JointTraining(**base.kwargs())
