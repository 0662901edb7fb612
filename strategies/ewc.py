from avalanche.training import EWC

from dqcl.core.validation import out_of_range
from dqcl.train import Base, register_strategy


@register_strategy(
    "ewc",
    description="elastic weight consolidation: a quadratic penalty on weights important (Fisher) to past domains",
    reference="Kirkpatrick et al. 2017, PNAS",
)
def ewc(base: Base, *, ewc_lambda: float = 100.0, mode: str = "separate", decay_factor: float = 0.0) -> EWC:
    return EWC(ewc_lambda=ewc_lambda, mode=mode, decay_factor=decay_factor if mode == "online" else None, **base.kwargs())


def _check(ewc_lambda: float, mode: str, decay_factor: float) -> str | None:
    if mode not in ("separate", "online"):
        return f"mode must be 'separate' or 'online', got '{mode}'"
    decay = out_of_range("decay_factor", decay_factor, 0, 1, lo_open=True) if mode == "online" else None
    return out_of_range("ewc_lambda", ewc_lambda, 0) or (f"mode 'online' needs {decay}" if decay else None)


ewc.check = _check
