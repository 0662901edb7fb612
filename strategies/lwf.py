import copy

import torch
from avalanche.core import SupervisedPlugin
from avalanche.training import Naive
from torch.nn import functional as F

from dqcl.core.validation import out_of_range
from dqcl.train import Base, register_strategy


class FeatureDistillation(SupervisedPlugin):
    """Learning without forgetting for a one-head dense network: distil the previous network's
    encoder features on the new domain's images.

    Li & Hoiem keep the old task's *head* answering as it did on new images while a new head
    learns the new task freely. A Cellpose network has one head for every domain, so distilling
    its outputs fights the new labels pixel by pixel: where the old network says "no cell"
    (logit -8 on the new domain's cells) the optimum of task + alpha * distillation sits at
    cell probability 0.5, exactly the mask threshold, and the new domain is not learned.
    This adaptation keeps what LwF
    is, no stored data and the old network's responses on new data as the targets, but puts
    the targets on the encoder's features at each of its four resolutions (the feature
    distillation of Michieli & Zanuttigh 2019, ILT, for segmentation), leaving the decoder and
    head free to fit the new labels:

        alpha * mean_l ||f_l(x) - f_l^old(x)||^2 / mean(f_l^old(x)^2)

    Both networks normalise with the batch's statistics (the old one is kept in training
    mode), so an unchanged network adds no penalty.
    """

    def __init__(self, alpha: float) -> None:
        super().__init__()
        self.alpha = alpha
        self.previous: torch.nn.Module | None = None
        self._features: list[torch.Tensor] | None = None
        self._handle = None

    def _keep(self, module, inputs, output) -> None:
        self._features = output

    def before_forward(self, strategy, **kwargs) -> None:
        if self.previous is not None and self.alpha > 0:
            if getattr(strategy.model, "_compiled_call_impl", None) is not None:
                # compiled code does not call hooks added after compiling: take the features with a second pass
                self._features = strategy.model.net.downsample(strategy.model.prepare_input(strategy.mb_x))
                return
            self._handle = strategy.model.net.downsample.register_forward_hook(self._keep)

    def after_forward(self, strategy, **kwargs) -> None:
        if self._handle is not None:
            self._handle.remove()
            self._handle = None

    def before_backward(self, strategy, **kwargs) -> None:
        if self._features is None:
            return
        with torch.no_grad():
            old = self.previous.net.downsample(self.previous.prepare_input(strategy.mb_x.float()))
        terms = [F.mse_loss(new.float(), ref) / ref.pow(2).mean().clamp(min=1e-8) for new, ref in zip(self._features, old)]
        strategy.loss = strategy.loss + self.alpha * torch.stack(terms).mean()

    def after_training_iteration(self, strategy, **kwargs) -> None:
        self._features = None

    def after_training_exp(self, strategy, **kwargs) -> None:
        self.previous = copy.deepcopy(strategy.model).train()
        for p in self.previous.parameters():
            p.requires_grad_(False)


@register_strategy(
    "lwf",
    description="learning without forgetting: distil the previous network's encoder features on new data",
    reference="Li & Hoiem 2017, TPAMI; features as in Michieli & Zanuttigh 2019 (ILT)",
    effects=("penalty",),
    search={"alpha": (1e-2, 1e2)},  # searched by dqcl tune (log scale), beside the learning rate
)
def lwf(base: Base, *, alpha: float = 1.0) -> Naive:
    return Naive(**base.kwargs(FeatureDistillation(alpha)))


lwf.check = lambda alpha: out_of_range("alpha", alpha, 0)
