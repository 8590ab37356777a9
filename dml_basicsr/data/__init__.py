"""Datasets, registered in BasicSR's DATASET_REGISTRY on import."""
from .adaptation_pairs_dataset import AdaptationPairsDataset
from .city100_dataset import City100Dataset
from .drealsr_dataset import DRealSRDataset
from .lr_folder_dataset import LRFolderDataset
from .realsr_dataset import RealSRDataset
from .srrgb_dataset import SRRGBDataset
from .online_synthesis_dataset import OnlineSynthesisDataset, SynDMLDataset
from .synthetic_lens_dataset import SyntheticLensDataset

__all__ = ['City100Dataset', 'RealSRDataset', 'OnlineSynthesisDataset', 'SyntheticLensDataset']
__all__ += ['SynDMLDataset']  # the earlier name of OnlineSynthesisDataset
__all__ += ['AdaptationPairsDataset', 'DRealSRDataset', 'LRFolderDataset', 'SRRGBDataset']
