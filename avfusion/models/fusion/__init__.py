"""Fusion heads: one class per file, one YAML per class in conf/fusion/; the contract is in base.py."""

from avfusion.models.fusion.base import FusionHead

__all__ = ["FusionHead"]
