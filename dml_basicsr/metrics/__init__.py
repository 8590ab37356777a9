"""Metrics registered in BasicSR's METRIC_REGISTRY on import (``type: calculate_lpips``, ``better: lower``)."""
from .lpips_metric import calculate_lpips, get_lpips_model

__all__ = ['calculate_lpips', 'get_lpips_model']
