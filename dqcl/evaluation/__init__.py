"""Evaluation: per-image segmentation metrics (`metrics`), the Avalanche scoring plugin (`scores`),
and `dqcl score` over folders of masks (`score_folders`)."""
