"""Where HR images become realistic LR ones with a trained DML model.

* :class:`DMLDegradation` (``dml_degradation.py``): the online batch transform, for any training code;
* :func:`degrade_tiled` (``tiled.py``): the same LR for images of any size, computed in exact tiles;
* :func:`synthesize_folder` (``folder_synthesis.py``): an offline Syn-DML dataset (``basicsr synthesize``).
"""
from .dml_degradation import DMLDegradation
from .folder_synthesis import synthesize_folder, synthesize_image
from .tiled import degrade_tiled, min_tile_overlap, tile_alignment

__all__ = ['DMLDegradation', 'degrade_tiled', 'min_tile_overlap', 'synthesize_folder', 'synthesize_image',
           'tile_alignment']
