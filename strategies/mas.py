from avalanche.training import Naive
from avalanche.training.plugins import MASPlugin
from avalanche.training.utils import zerolike_params_dict

from dqcl.core.validation import out_of_range
from dqcl.train import Base, register_strategy
from dqcl.train.importance import per_sample_importance


def _output_energy(output, target):
    """MAS's learned function for dense outputs: the squared L2 norm of the 3 output maps
    (Y flow, X flow, cell-probability logit) at a pixel, averaged over pixels."""
    return output.pow(2).sum(dim=1).mean()


class SampleMAS(MASPlugin):
    """Memory aware synapses with per-sample importances taken on the network as it is scored.

    Importance is E_x |d ||F(x)||^2 / d theta| (Aljundi et al.), one patch at a time with
    normalisation layers in evaluation mode. Avalanche's pass runs the network in *training*
    mode, so it scores batch statistics that are never used at test time and moves the
    BatchNorm running statistics after training has ended; it also takes magnitudes of
    minibatch-mean gradients. Importances of successive domains are blended as Avalanche
    does: ``alpha * old + (1 - alpha) * new``.
    """

    def __init__(self, lambda_reg: float, alpha: float, samples: int, seed: int) -> None:
        super().__init__(lambda_reg=lambda_reg, alpha=alpha)
        self.samples, self.seed = samples, seed

    def _get_importance(self, strategy):
        got = per_sample_importance(strategy.model, strategy.experience.dataset, _output_energy, power=1,
                                    device=strategy.device, max_samples=self.samples, seed=self.seed)
        importance = dict(zerolike_params_dict(strategy.model))
        for name, imp in importance.items():
            if name in got:
                imp.data = got[name].clone()
        return importance


@register_strategy(
    "mas",
    description="memory aware synapses: a penalty on weights by the sensitivity of the network's output",
    reference="Aljundi et al. 2018, ECCV",
    effects=("penalty",),
    search={"lambda_reg": (1e-3, 1e2)},  # searched by dqcl tune (log scale), beside the learning rate
)
def mas(base: Base, *, lambda_reg: float = 1.0, alpha: float = 0.5, samples: int = 256) -> Naive:
    return Naive(**base.kwargs(SampleMAS(lambda_reg, alpha, samples, base.seed)))


mas.check = lambda lambda_reg, alpha, samples: (
    out_of_range("lambda_reg", lambda_reg, 0) or out_of_range("alpha", alpha, 0, 1) or out_of_range("samples", samples, 1)
)
