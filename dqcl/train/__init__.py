"""One run: a strategy built on a Cellpose network (`strategy`), the Avalanche plugins dqcl adds
(`plugins`, `fast`, `replay`), per-experience checkpoints (`checkpoint`) and the run itself (`run`).

A strategy file needs two names from here::

    from dqcl.train import Base, register_strategy
"""

from ..config.strategies import register_strategy
from .strategy import Base

__all__ = ["Base", "register_strategy"]
