from avalanche.training import Naive
from avalanche.training.plugins import EWCPlugin
from avalanche.training.utils import zerolike_params_dict

from dqcl.core.validation import out_of_range
from dqcl.train import Base, register_strategy
from dqcl.train.importance import per_sample_importance


class EmpiricalFisherEWC(EWCPlugin):
    """Avalanche's EWC penalty, ``ewc_lambda * sum_k F_k (theta_k - theta*_k)^2``, with its Fisher
    estimated per sample.

    The diagonal Fisher is E_x[(d loss(x) / d theta)^2] over the experience's patches, the
    empirical Fisher (the observed targets, not targets sampled from the network; the loss
    is Cellpose's, so this is the Fisher of its Gaussian flow and Bernoulli cell-probability
    likelihoods up to constants). Avalanche squares the gradient of each minibatch's *mean*
    loss instead, which divides the estimate by about the batch size and lets samples cancel.
    The pass runs with normalisation layers in evaluation mode (the network as it is scored)
    on at most ``fisher_samples`` patches, and leaves the running statistics untouched.
    The penalty has no 1/2 (Avalanche's convention): ``ewc_lambda`` here is Kirkpatrick's lambda / 2.

    Stability cap: on its own, the penalty is a quadratic of curvature ``2 * ewc_lambda * F_k``
    per weight, and SGD with learning rate ``lr`` and momentum ``m`` diverges on it (each step
    overshoots further) once ``lr * ewc_lambda * F_k >= 1 + m``. Per-sample Fisher values of a
    few weights reach that at ``ewc_lambda = 100`` and ``lr = 0.05``: in the published baselines
    one seed's loss went from 2.3 to 7e4 to NaN within two epochs. Each ``F_k`` is therefore capped
    at half that limit, ``(1 + m) / (2 * lr * ewc_lambda)`` (the optimiser's largest learning rate
    and its momentum): a capped weight is still pulled back to its old value as hard as SGD can
    pull without oscillating; the other weights keep their Fisher. ``capped`` holds the share of
    weights capped at the last consolidation.
    """

    def __init__(self, ewc_lambda: float, mode: str, decay_factor: float | None, fisher_samples: int, seed: int) -> None:
        super().__init__(ewc_lambda=ewc_lambda, mode=mode, decay_factor=decay_factor)
        self.fisher_samples, self.seed = fisher_samples, seed

    def compute_importances(self, model, criterion, optimizer, dataset, device, batch_size, num_workers=0):
        fisher = per_sample_importance(model, dataset, criterion, power=2, device=device,
                                       max_samples=self.fisher_samples, seed=self.seed)
        groups = optimizer.param_groups
        lr = max(g.get("initial_lr", g["lr"]) for g in groups)
        cap = (1.0 + max(g.get("momentum", 0.0) for g in groups)) / (2.0 * lr * self.ewc_lambda) if self.ewc_lambda > 0 else None
        importances = zerolike_params_dict(model)
        capped = total = 0
        for name, imp in importances.items():
            if name in fisher:
                f = fisher[name].clone()
                if cap is not None:
                    capped += int((f > cap).sum())
                    f.clamp_(max=cap)
                total += f.numel()
                imp.data = f
        self.capped = capped / max(total, 1)
        return importances


@register_strategy(
    "ewc",
    description="elastic weight consolidation: a quadratic penalty on weights important (Fisher) to past domains",
    reference="Kirkpatrick et al. 2017, PNAS",
    effects=("penalty",),
    search={"ewc_lambda": (1.0, 1e5)},  # searched by dqcl tune (log scale), beside the learning rate
)
def ewc(base: Base, *, ewc_lambda: float = 100.0, mode: str = "separate", decay_factor: float = 0.0,
        fisher_samples: int = 256) -> Naive:
    plugin = EmpiricalFisherEWC(ewc_lambda, mode, decay_factor if mode == "online" else None, fisher_samples, base.seed)
    return Naive(**base.kwargs(plugin))


def _check(ewc_lambda: float, mode: str, decay_factor: float, fisher_samples: int) -> str | None:
    if mode not in ("separate", "online"):
        return f"mode must be 'separate' or 'online', got '{mode}'"
    decay = out_of_range("decay_factor", decay_factor, 0, 1, lo_open=True) if mode == "online" else None
    return (out_of_range("ewc_lambda", ewc_lambda, 0) or (f"mode 'online' needs {decay}" if decay else None)
            or out_of_range("fisher_samples", fisher_samples, 1))


ewc.check = _check
