"""Where HR images become realistic LR ones: with a trained DML model, or with Real-ESRGAN's degradation.

* :class:`DMLDegradation` (``dml_degradation.py``): the online batch transform, for any training code;
* :class:`RealESRGANDegradation` (``real_esrgan_degradation.py``): Real-ESRGAN's second-order degradation as
  BasicSR trains Real-ESRNet, the same call interface (Syn-Real-ESRGAN pairs);
* :func:`build_degradation` (``sources.py``): either, from an option file's ``degradation`` section;
* :func:`degrade_tiled` (``tiled.py``): the same LR for images of any size, computed in exact tiles;
* :func:`synthesize_folder` (``folder_synthesis.py``): an offline Syn-DML dataset (``basicsr synthesize``).
"""
from .dml_degradation import DMLDegradation
from .folder_synthesis import synthesize_folder, synthesize_image
from .real_esrgan_degradation import RealESRGANDegradation
from .sources import build_degradation
from .tiled import degrade_tiled, min_tile_overlap, tile_alignment

__all__ = ['DMLDegradation', 'RealESRGANDegradation', 'build_degradation', 'degrade_tiled', 'min_tile_overlap',
           'synthesize_folder', 'synthesize_image', 'tile_alignment']
