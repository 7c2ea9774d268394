"""Hydra entry points. Configs live in the repository's top-level conf/ (the package is installed editable)."""

from avfusion.configs import CONFIG_DIR

__all__ = ["CONFIG_DIR"]
