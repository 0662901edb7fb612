from avalanche.benchmarks.utils.data_loader import GroupBalancedInfiniteDataLoader
from avalanche.training import Naive
from avalanche.training.plugins import AGEMPlugin

from dqcl.core.validation import out_of_range
from dqcl.train import Base, register_strategy


class ResumableAGEM(AGEMPlugin):
    """Avalanche's A-GEM plugin, resumable from a checkpoint.

    A-GEM samples its memory through an infinite data loader; a checkpoint keeps the memory
    and this plugin makes the loader again as `update_memory` does.
    """

    checkpoint_transient = ("buffer_dataloader", "buffer_dliter")

    def after_restore(self) -> None:
        if not self.buffers:
            return
        self.buffer_dataloader = GroupBalancedInfiniteDataLoader(
            self.buffers, batch_size=self.sample_size // len(self.buffers), num_workers=0,
            pin_memory=False, persistent_workers=False,
        )
        self.buffer_dliter = iter(self.buffer_dataloader)


@register_strategy(
    "agem",
    description="averaged GEM: project the gradient so the loss on a memory sample of past domains does not rise",
    reference="Chaudhry et al. 2019, ICLR",
)
def agem(base: Base, *, patterns_per_exp: int = 16, sample_size: int = 16) -> Naive:
    # Avalanche's AGEM template is this template with the plugin appended
    return Naive(**base.kwargs(ResumableAGEM(patterns_per_exp, sample_size)))


agem.check = lambda patterns_per_exp, sample_size: (
    out_of_range("patterns_per_exp", patterns_per_exp, 1) or out_of_range("sample_size", sample_size, 1)
)
