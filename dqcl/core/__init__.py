"""The bottom layer: registries, atomic writes, provenance and versions, validation helpers.

Nothing here imports torch, Avalanche or Cellpose, or any other dqcl subpackage.
"""
