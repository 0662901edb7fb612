from avalanche.training import Naive

from dqcl.core.validation import out_of_range
from dqcl.dq.embedders import EMBEDDERS
from dqcl.dq.selectors import SELECTORS
from dqcl.train import Base, register_strategy
from dqcl.train.replay import dq_selector, memory_for


def _check(rate: float, bins: int, variant: str, embedder: str, embedder_weights: str) -> str | None:
    problem = out_of_range("rate", rate, 0, 1, lo_open=True) or out_of_range("bins", bins, 1)
    if problem:
        return problem
    if variant not in SELECTORS:
        return f"variant must be one of {', '.join(SELECTORS)}, got '{variant}'"
    if embedder not in EMBEDDERS:
        return f"embedder must be one of {', '.join(EMBEDDERS)}, got '{embedder}'"
    return None


@register_strategy(
    "dq_replay",
    description="DQ replay: keep a dataset-quantization coreset (fraction `rate`) of each past domain, train on it with the next",
    reference="Zhao & Chen 2025 (arXiv 2511.04803); Zhou et al. ICCV 2023 (dataset quantization)",
    effects=("memory",),
)
def dq_replay(
    base: Base, *, rate: float = 0.05, bins: int = 10, variant: str = "mmv", embedder: str = "style", embedder_weights: str = ""
) -> Naive:
    # no budget: DQ's coreset at ``rate`` (dqcl 0.3); a budget: exactly the count it allows
    pick = dq_selector(variant, bins, embedder, base.seed, embedder_weights=embedder_weights,
                       rate=None if base.memory else rate)
    return Naive(**base.kwargs(memory_for(base, rate, pick)))


dq_replay.check = _check
