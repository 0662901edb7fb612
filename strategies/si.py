from avalanche.training import SynapticIntelligence

from dqcl.core.validation import out_of_range
from dqcl.train import Base, register_strategy


@register_strategy(
    "si",
    description="synaptic intelligence: a penalty on weights by their path-integral contribution to past losses",
    reference="Zenke et al. 2017, ICML",
)
def si(base: Base, *, si_lambda: float = 1.0, eps: float = 1e-7) -> SynapticIntelligence:
    return SynapticIntelligence(si_lambda=si_lambda, eps=eps, **base.kwargs())


si.check = lambda si_lambda, eps: out_of_range("si_lambda", si_lambda, 0) or out_of_range("eps", eps, 0, lo_open=True)
