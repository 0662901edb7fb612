from avalanche.training import Naive

from dqcl.dq import SELECTORS
from dqcl.dqpolicy import DQBuffer
from dqcl.embed import EMBEDDERS
from dqcl.memory import MixReplayPlugin
from dqcl.strategy import Base, register_strategy


def _check(rate: float, bins: int, variant: str, embedder: str, embedder_weights: str) -> str | None:
    if not 0.0 < rate <= 1.0:
        return f"rate must be in (0, 1], got {rate}"
    if bins < 1:
        return f"bins must be >= 1, got {bins}"
    if variant not in SELECTORS:
        return f"variant must be one of {', '.join(SELECTORS)}, got '{variant}'"
    if embedder not in EMBEDDERS:
        return f"embedder must be one of {', '.join(EMBEDDERS)}, got '{embedder}'"
    return None


@register_strategy(
    "dq_replay",
    description="DQ replay: keep a dataset-quantization coreset (fraction `rate`) of each past domain, train on it with the next",
    reference="Zhao & Chen 2025 (arXiv 2511.04803); Zhou et al. ICCV 2023 (dataset quantization)",
)
def dq_replay(
    base: Base, *, rate: float = 0.05, bins: int = 10, variant: str = "mmv", embedder: str = "style", embedder_weights: str = ""
) -> Naive:
    memory = DQBuffer(rate, variant, bins, embedder, base.seed, embedder_weights=embedder_weights)
    return Naive(**base.kwargs(MixReplayPlugin(memory)))


dq_replay.check = _check
