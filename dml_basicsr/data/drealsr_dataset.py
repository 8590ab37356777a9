import os
import re

from basicsr.utils.registry import DATASET_REGISTRY

from .dataset_checks import check_folders, require_scale
from .errors import DatasetError
from .image_io import index_images, list_images
from .pair_transforms import scaled_size
from .paired_base import PairedImageFolder, pair_paths

# <image>_x<s>.png, optionally followed by a patch number: DSC_1454_x4.png, P1180183_x1.png, DSC_0001_x4_12.png.
DREALSR_NAME = re.compile(r'^(?P<image>.+?)_x(?P<s>\d+)(?P<patch>_\d+)?\.(?i:png|jpg|jpeg|bmp|tif|tiff|webp)$')


@DATASET_REGISTRY.register()
class DRealSRDataset(PairedImageFolder):
    """Real HR-LR pairs of DRealSR (Wei et al., "Component Divide-and-Conquer for Real-World Image
    Super-Resolution", ECCV 2020), five DSLR cameras.

    Layout: ``<dataroot>/<split>_HR/<image>_x<scale>.png`` beside ``<dataroot>/<split>_LR/<image>_x1.png``,
    e.g. ``Test_x4/test_HR/DSC_1454_x4.png`` and ``Test_x4/test_LR/DSC_1454_x1.png`` (dataroot Test_x4).
    HR and LR are paired by parsing the file names (same ``<image>`` and patch number, HR scale equal to
    ``scale``, LR scale 1); HR files of other scales and files with other names are ignored.

    The LR is stored at 1/scale of the HR size; the sizes are checked when a pair is read, and the
    pair is cropped top-left to LR (H // s, W // s) and HR s times that.

    Options:
        dataroot (str): the folder holding <split>_HR/ and <split>_LR/ (e.g. DRealSR/x4/Test_x4).
        split (str): folder prefix, 'test' (default) or 'train'.
        scale (int): 2, 3 or 4 (set by BasicSR from the top-level ``scale``).
        color (str): 'y' for the Y channel, or null for RGB (default).
        gt_size (int): HR training patch side, a multiple of ``scale`` (train phase only).
        use_hflip, use_rot (bool): flip/rotate training patches (default false).
        io_backend (dict): {type: disk} (default), or {type: lmdb} with ``dataroot`` a folder made by
            ``basicsr prepare`` (sub-images of these pairs; split is then not used).
        cache (bool), cache_max_gb (number): keep the decoded images in memory, bounded (default false, 4 GB);
            see :class:`~dml_basicsr.data.paired_base.PairedImageFolder`.
    """

    OPTIONS = PairedImageFolder.OPTIONS | {'split'}

    def __init__(self, opt):
        super().__init__(opt)
        self.scale = self.crop_scale = self.lr_ratio = require_scale(opt, 'DRealSRDataset')
        if self.scale < 2:
            raise DatasetError(f"DRealSRDataset '{opt.get('name')}': scale must be 2, 3 or 4, got {self.scale}")
        if not opt.get('dataroot'):
            raise DatasetError(f"DRealSRDataset '{opt.get('name')}': option 'dataroot' is missing")
        split = opt.get('split', 'test')
        if split not in ('test', 'train'):
            raise DatasetError(f"DRealSRDataset: split must be 'test' or 'train', got {split!r}")
        self.set_pairs(lambda: self._find_pairs(opt['dataroot'], split))

    def _folders(self, root, split):
        folders = [os.path.join(root, f'{split}_{kind}') for kind in ('HR', 'LR')]
        expected = (f'Expected the layout <dataroot>/{split}_HR/<image>_x{self.scale}.png beside '
                    f'<dataroot>/{split}_LR/<image>_x1.png, e.g. {root}/{split}_HR/DSC_1454_x{self.scale}.png and '
                    f'{root}/{split}_LR/DSC_1454_x1.png')
        return check_folders(folders, 'DRealSR', expected)

    @staticmethod
    def _images(folder, wanted_scale):
        """{(image, patch): path} of the files of ``folder`` named with scale ``wanted_scale``."""

        def key_of(match):
            return (match['image'], match['patch'] or '') if int(match['s']) == wanted_scale else None

        return index_images(folder, DREALSR_NAME, key_of, 'DRealSR')

    def _find_pairs(self, root, split):
        """[(hr_path, lr_path)] sorted by HR file name."""
        hr_folder, lr_folder = self._folders(root, split)
        hr, lr = self._images(hr_folder, self.scale), self._images(lr_folder, 1)
        if not hr:
            scales = sorted({int(m['s']) for m in map(DREALSR_NAME.match, list_images(hr_folder)) if m})
            found = f" (it has {', '.join(f'_x{s}' for s in scales)} files: set scale to match)" if scales else ''
            raise DatasetError(f'DRealSR: no HR files named <image>_x{self.scale}.png in {hr_folder}{found}')
        return sorted(pair_paths(hr, lr, 'DRealSR', f'_x{self.scale} (HR) / _x1 (LR)'))

    def aligned_size(self, gt_shape, lq_shape, gt_path, lq_path):
        """Check that LR is 1/s of HR; the HR size to keep so that LR (i, j) is HR (s*i, s*j)."""
        hint = f' (the LR must be 1/{self.scale})'
        return scaled_size(gt_shape, lq_shape, self.scale, gt_path, lq_path, 'DRealSR', hint)
