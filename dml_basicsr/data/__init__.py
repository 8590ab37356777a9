"""Datasets, registered in BasicSR's DATASET_REGISTRY on import."""
from .city100_dataset import City100Dataset
from .realsr_dataset import RealSRDataset
from .syn_dml_dataset import SynDMLDataset
from .synthetic_lens_dataset import SyntheticLensDataset

__all__ = ['City100Dataset', 'RealSRDataset', 'SynDMLDataset', 'SyntheticLensDataset']
