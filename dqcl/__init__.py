"""dqcl: continual-learning benchmarks for biomedical instance segmentation with Cellpose networks."""

from .core.version import __version__

__all__ = ["__version__", "load_results", "load_curves", "run"]


def __getattr__(name: str):
    # the API pulls in torch and Avalanche: load it only when asked for
    if name in ("load_results", "load_curves", "run"):
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module 'dqcl' has no attribute {name!r}")
