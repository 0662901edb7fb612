import contextlib

import torch
from avalanche.benchmarks.utils.data_loader import GroupBalancedInfiniteDataLoader
from avalanche.training import Naive
from avalanche.training.plugins import AGEMPlugin

from dqcl.core.validation import out_of_range
from dqcl.train import Base, register_strategy
from dqcl.train.importance import frozen_norm_stats, set_sgd_direction, sgd_direction
from dqcl.train.plugins import reference_pass
from dqcl.train.rehearsal import Budget, EpisodicMemory, Rehearsal


class StepAGEM(AGEMPlugin, Rehearsal):
    """A-GEM (Chaudhry et al. 2019): keep the loss on a memory sample from rising.

    Adaptations, and why:
    - the constraint is put on the step SGD takes: with momentum 0.9 and weight decay, the
      step is ``momentum * buffer + gradient + decay * theta``, not the gradient A-GEM was
      written for (plain SGD). That direction ``d`` is projected, ``d - (d.g_ref / g_ref.g_ref) g_ref``
      when ``d.g_ref < 0``, and the gradient is rewritten so SGD steps along it;
    - the reference gradient is taken on the memory sample in training mode (its own batch
      statistics, as the task gradient is), and the BatchNorm running statistics that pass
      would move are put back: only training batches set them;
    - resumable: the memory's infinite loader is rebuilt from the stored memory after a restart;
    - under a ``[memory]`` budget the memory is the budget's (random picks, shared equally among
      earlier domains) and each step's reference sample is ``budget.per_step`` of it, drawn by
      a seeded generator (`dqcl.train.rehearsal.EpisodicMemory`); with compute matched the new
      part of the batch shrinks by as much.
    """

    checkpoint_transient = ("buffer_dataloader", "buffer_dliter")

    def __init__(self, patterns_per_exp: int, sample_size: int, budget: Budget | None = None, seed: int = 0,
                 reference: int = 0) -> None:
        super().__init__(patterns_per_exp, sample_size)
        self.episodic = EpisodicMemory(budget, seed, reference=reference) if budget else None

    def memory_held(self) -> int:
        return self.episodic.memory_held() if self.episodic else sum(len(b) for b in self.buffers)

    def after_train_dataset_adaptation(self, strategy, **kwargs):
        if self.episodic:
            self.episodic.set_batch(strategy)

    def sample_from_memory(self):
        if not self.episodic:
            return super().sample_from_memory()
        x, y = zip(*self.episodic.draw())
        return torch.cat(x), torch.cat(y), None

    def after_training_exp(self, strategy, **kwargs):
        if not self.episodic:
            return super().after_training_exp(strategy, **kwargs)
        self.episodic.add(strategy)
        self.buffers = self.episodic.storage.parts()  # read by the step: a memory to project against

    def before_training_iteration(self, strategy, **kwargs):
        apart = reference_pass() if self.episodic and self.episodic.apart else contextlib.nullcontext()
        with frozen_norm_stats(strategy.model), apart:
            super().before_training_iteration(strategy, **kwargs)

    @torch.no_grad()
    def after_backward(self, strategy, **kwargs):
        if len(self.buffers) == 0:
            return
        params = list(strategy.model.parameters())
        d = sgd_direction(strategy.optimizer, params)
        ref = self.reference_gradients
        dot = torch.dot(d, ref)
        if dot < 0:
            set_sgd_direction(strategy.optimizer, params, d - ref * (dot / torch.dot(ref, ref)))

    def after_restore(self) -> None:
        if not self.buffers or self.episodic:
            return
        self.buffer_dataloader = GroupBalancedInfiniteDataLoader(
            self.buffers, batch_size=self.sample_size // len(self.buffers), num_workers=0,
            pin_memory=False, persistent_workers=False,
        )
        self.buffer_dliter = iter(self.buffer_dataloader)


@register_strategy(
    "agem",
    description="averaged GEM: project the step so the loss on a memory sample of past domains does not rise",
    reference="Chaudhry et al. 2019, ICLR",
    effects=("memory",),
    draws="per_domain",
)
def agem(base: Base, *, patterns_per_exp: int = 16, sample_size: int = 16, reference: int = 0) -> Naive:
    """``reference`` > 0 (under a ``[memory]`` budget): each step's reference gradient is taken on that many memory
    samples (the paper: 256), as a pass apart from the batch, counted as compute but not among the step's samples;
    0: on ``replay_batch`` samples that take part of the batch, as every rehearsal strategy's memory samples do."""
    # Avalanche's AGEM template is this template with the plugin appended
    return Naive(**base.kwargs(StepAGEM(patterns_per_exp, sample_size, base.memory, base.seed, reference)))


agem.check = lambda patterns_per_exp, sample_size, reference: (
    out_of_range("patterns_per_exp", patterns_per_exp, 1) or out_of_range("sample_size", sample_size, 1)
    or out_of_range("reference", reference, 0, 1_000_000)
)
agem.added_later = {"reference": 0}  # left out of a run's key at its default: the published A-GEM runs keep theirs
agem.apart_when = "reference"  # a truthy value: its memory samples are a reference pass, not part of the batch
