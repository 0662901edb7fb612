from avalanche.training import SynapticIntelligence

from dqcl.strategy import Base, register_strategy


@register_strategy(
    "si",
    description="synaptic intelligence: a penalty on weights by their path-integral contribution to past losses",
    reference="Zenke et al. 2017, ICML",
)
def si(base: Base, *, si_lambda: float = 1.0, eps: float = 1e-7) -> SynapticIntelligence:
    return SynapticIntelligence(si_lambda=si_lambda, eps=eps, **base.kwargs())


si.check = lambda si_lambda, eps: None if si_lambda >= 0 and eps > 0 else "si_lambda must be >= 0 and eps > 0"
