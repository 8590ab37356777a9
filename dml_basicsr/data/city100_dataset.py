import os
import re

import cv2
from basicsr.utils.registry import DATASET_REGISTRY

from .dataset_checks import check_range
from .errors import DatasetError, DatasetNotFoundError
from .image_io import index_images
from .paired_base import PairedImageFolder, pair_paths

# NNNH.PNG (HR) and NNNL.PNG (LR), e.g. 001H.PNG and 001L.PNG; case-insensitive.
CITY100_NAME = re.compile(r'^(?P<id>\d+)(?P<kind>[HL])\.(png|jpg|jpeg|bmp|tif|tiff|webp)$', re.IGNORECASE)


@DATASET_REGISTRY.register()
class City100Dataset(PairedImageFolder):
    """Real HR-LR pairs of City100 (Chen et al., "Camera Lens Super-Resolution", CVPR 2019).

    Layout: one folder with ``NNNH.PNG`` (HR, long focal length) and ``NNNL.PNG`` (LR, short
    focal length, interpolated onto the HR grid and aligned to it), paired by the number NNN.

    With ``lr_downscale: 1`` the pair is at scale 1 (LR on the HR grid). With ``lr_downscale: d``
    the HR is cropped top-left to a multiple of d and the LR is downscaled by d (cv2.INTER_AREA)
    to 1/d of it: a real-world x d pair (City100's native LR is a zoom of about x2.9).

    Options:
        dataroot (str): the folder of NNNH / NNNL images.
        id_range (list[int]): [first, last] scene numbers to use, inclusive (default: all).
        lr_downscale (int): d >= 1 (default 1); when d > 1 it must equal ``scale``.
        scale (int): set by BasicSR from the top-level ``scale``; only checked against d.
        color (str): 'y' for the Y channel, or null for RGB (default).
        gt_size (int): HR training patch side, a multiple of d (train).
        use_hflip, use_rot (bool): flip/rotate training patches (default false: they would also
            flip/rotate the real degradation that DML learns).
        io_backend (dict): {type: disk} (default), or {type: lmdb} with ``dataroot`` a folder made by
            ``basicsr prepare`` (sub-images of these pairs; id_range is then not used).
        cache (bool), cache_max_gb (number): keep the decoded images in memory, bounded (default false, 4 GB;
            scenes 001-030 need 0.19 GB); see :class:`~dml_basicsr.data.paired_base.PairedImageFolder`.
    """

    OPTIONS = PairedImageFolder.OPTIONS | {'id_range', 'lr_downscale'}

    def __init__(self, opt):
        super().__init__(opt)
        self.downscale = int(opt.get('lr_downscale', 1))
        self.crop_scale, self.lr_ratio = self.downscale, 1
        if self.downscale < 1:
            raise DatasetError(f'City100Dataset: lr_downscale must be an integer >= 1, got {self.downscale}')
        if self.downscale > 1 and opt.get('scale', self.downscale) != self.downscale:
            raise DatasetError(f"City100Dataset '{opt.get('name')}': lr_downscale {self.downscale} makes a "
                               f"x{self.downscale} pair, but scale is {opt['scale']}; set them equal")
        self.set_pairs(lambda: self._find_pairs(opt['dataroot'], opt.get('id_range')))

    @staticmethod
    def _images(root, kind, id_range):
        """{number: path} of the images of ``kind`` ('H' or 'L') with numbers in ``id_range`` (or any)."""
        first, last = id_range if id_range is not None else (0, float('inf'))

        def key_of(match):
            number = int(match['id'])
            return number if match['kind'].upper() == kind and first <= number <= last else None

        return index_images(root, CITY100_NAME, key_of, 'City100')

    @classmethod
    def _find_pairs(cls, root, id_range):
        """[(hr_path, lr_path)] sorted by scene number, limited to ``id_range``."""
        if not os.path.isdir(root):
            raise DatasetNotFoundError(f'City100 folder not found: {root}. Expected one folder of HR/LR pairs, '
                                       f'e.g. {root}/001H.PNG beside {root}/001L.PNG')
        check_range(id_range, 'City100: id_range')
        pairs = pair_paths(cls._images(root, 'H', id_range), cls._images(root, 'L', id_range), 'City100', 'H/L')
        if not pairs:
            where = f' with numbers in {list(id_range)}' if id_range is not None else ''
            raise DatasetError(f'City100: no NNNH / NNNL image pairs{where} in {root}')
        return pairs

    def aligned_size(self, gt_shape, lq_shape, gt_path, lq_path):
        """Check that LR is on the HR grid; the HR size cropped to a multiple of d (the LR keeps the same)."""
        if gt_shape[:2] != lq_shape[:2]:
            raise DatasetError(f'City100: LR {lq_path} is {lq_shape[0]}x{lq_shape[1]}, but it must have the size of '
                               f'HR {gt_path}, {gt_shape[0]}x{gt_shape[1]} (City100 LR is on the HR grid)')
        d = self.downscale
        return gt_shape[0] // d * d, gt_shape[1] // d * d

    def resize_lr(self, lq):
        """Downscale the LR (float, on the HR grid, sides multiples of d) by d with cv2.INTER_AREA.

        For the integer factor d this is a block average, so resizing a d-aligned crop gives the crop
        of the resized image, to the bit."""
        if self.downscale == 1:
            return lq
        return cv2.resize(lq, (lq.shape[1] // self.downscale, lq.shape[0] // self.downscale),
                          interpolation=cv2.INTER_AREA)
