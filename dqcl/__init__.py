"""dqcl: continual-learning benchmarks for biomedical instance segmentation with Cellpose networks."""

__version__ = "0.1.0"

__all__ = ["__version__"]
