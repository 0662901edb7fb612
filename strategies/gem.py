from avalanche.training import GEM

from dqcl.core.validation import out_of_range
from dqcl.train import Base, register_strategy


@register_strategy(
    "gem",
    description="gradient episodic memory: project the gradient (quadratic program) so no past domain's memory loss rises",
    reference="Lopez-Paz & Ranzato 2017, NeurIPS",
)
def gem(base: Base, *, patterns_per_exp: int = 16, memory_strength: float = 0.5) -> GEM:
    return GEM(patterns_per_exp=patterns_per_exp, memory_strength=memory_strength, **base.kwargs())


gem.check = lambda patterns_per_exp, memory_strength: (
    out_of_range("patterns_per_exp", patterns_per_exp, 1) or out_of_range("memory_strength", memory_strength, 0)
)
