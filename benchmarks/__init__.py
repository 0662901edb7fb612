"""The benchmark specs shipped with dqcl (installed as the package ``dqcl.specs``)."""
