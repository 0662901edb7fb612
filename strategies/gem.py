from avalanche.training import GEM

from dqcl.strategy import Base, register_strategy


@register_strategy(
    "gem",
    description="gradient episodic memory: project the gradient (quadratic program) so no past domain's memory loss rises",
    reference="Lopez-Paz & Ranzato 2017, NeurIPS",
)
def gem(base: Base, *, patterns_per_exp: int = 16, memory_strength: float = 0.5) -> GEM:
    return GEM(patterns_per_exp=patterns_per_exp, memory_strength=memory_strength, **base.kwargs())


gem.check = lambda patterns_per_exp, memory_strength: None if patterns_per_exp >= 1 and memory_strength >= 0 else "patterns_per_exp must be >= 1 and memory_strength >= 0"
