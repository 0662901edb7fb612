"""dqcl: continual-learning benchmarks for biomedical instance segmentation with Cellpose networks."""

from .core.version import __version__

_API = ("load_results", "load_curves", "run", "benchmark", "network", "loss", "scores", "evaluator")
__all__ = ["__version__", *_API]


def __getattr__(name: str):
    # the API pulls in torch and Avalanche: load it only when asked for
    if name in _API:
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module 'dqcl' has no attribute {name!r}")
