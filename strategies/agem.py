from avalanche.training import AGEM

from dqcl.strategy import Base, register_strategy


@register_strategy(
    "agem",
    description="averaged GEM: project the gradient so the loss on a memory sample of past domains does not rise",
    reference="Chaudhry et al. 2019, ICLR",
)
def agem(base: Base, *, patterns_per_exp: int = 16, sample_size: int = 16) -> AGEM:
    return AGEM(patterns_per_exp=patterns_per_exp, sample_size=sample_size, **base.kwargs())


agem.check = lambda patterns_per_exp, sample_size: None if patterns_per_exp >= 1 and sample_size >= 1 else "patterns_per_exp and sample_size must be >= 1"
