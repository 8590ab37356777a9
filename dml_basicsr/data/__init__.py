"""Datasets, registered in BasicSR's DATASET_REGISTRY on import."""
from .synthetic_lens_dataset import SyntheticLensDataset

__all__ = ['SyntheticLensDataset']
