from avalanche.training import EWC

from dqcl.strategy import Base, register_strategy


@register_strategy(
    "ewc",
    description="elastic weight consolidation: a quadratic penalty on weights important (Fisher) to past domains",
    reference="Kirkpatrick et al. 2017, PNAS",
)
def ewc(base: Base, *, ewc_lambda: float = 100.0, mode: str = "separate", decay_factor: float = 0.0) -> EWC:
    return EWC(ewc_lambda=ewc_lambda, mode=mode, decay_factor=decay_factor if mode == "online" else None, **base.kwargs())


def _check(ewc_lambda: float, mode: str, decay_factor: float) -> str | None:
    if ewc_lambda < 0:
        return f"ewc_lambda must be >= 0, got {ewc_lambda}"
    if mode not in ("separate", "online"):
        return f"mode must be 'separate' or 'online', got '{mode}'"
    if mode == "online" and not 0.0 < decay_factor <= 1.0:
        return f"mode 'online' needs decay_factor in (0, 1], got {decay_factor}"
    return None


ewc.check = _check
