import os
import re

from basicsr.utils.registry import DATASET_REGISTRY

from .dataset_checks import check_disk_backend, check_gt_size, listed
from .errors import DatasetError, DatasetNotFoundError
from .image_io import list_images
from .lr_folder_dataset import check_color
from .pair_transforms import crop_pair_to_scale
from .paired_base import PairedImageFolder

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
        io_backend (dict): only {type: disk}.
    """

    def __init__(self, opt):
        super().__init__()
        self.opt = opt
        check_disk_backend(opt, 'DRealSRDataset')
        check_gt_size(opt, 'DRealSRDataset')
        check_color(opt, 'DRealSRDataset')
        self.is_train = opt['phase'] == 'train'
        if 'scale' not in opt:
            raise DatasetError(f"DRealSRDataset '{opt.get('name')}': option 'scale' is missing (2, 3 or 4)")
        self.scale = self.crop_scale = int(opt['scale'])
        if self.scale < 2:
            raise DatasetError(f"DRealSRDataset '{opt.get('name')}': scale must be 2, 3 or 4, got {self.scale}")
        if not opt.get('dataroot'):
            raise DatasetError(f"DRealSRDataset '{opt.get('name')}': option 'dataroot' is missing")
        split = opt.get('split', 'test')
        if split not in ('test', 'train'):
            raise DatasetError(f"DRealSRDataset: split must be 'test' or 'train', got {split!r}")
        self.pairs = self._find_pairs(opt['dataroot'], split)

    def _folders(self, root, split):
        folders = [os.path.join(root, f'{split}_{kind}') for kind in ('HR', 'LR')]
        missing = [f for f in folders if not os.path.isdir(f)]
        if missing:
            raise DatasetNotFoundError(
                f'DRealSR folder(s) not found: {", ".join(os.path.abspath(f) for f in missing)}. Expected the layout '
                f'<dataroot>/{split}_HR/<image>_x{self.scale}.png beside <dataroot>/{split}_LR/<image>_x1.png, '
                f'e.g. {root}/{split}_HR/DSC_1454_x{self.scale}.png and {root}/{split}_LR/DSC_1454_x1.png')
        return folders

    def _parse(self, folder, wanted_scale):
        """{(image, patch): file name} of the files of ``folder`` named with scale ``wanted_scale``."""
        files = {}
        for name in list_images(folder):
            match = DREALSR_NAME.match(name)
            if match is None or int(match['s']) != wanted_scale:
                continue
            key = (match['image'], match['patch'] or '')
            if key in files:
                raise DatasetError(f'DRealSR: two files for the same image in {folder}: {files[key]} and {name}')
            files[key] = name
        return files

    def _find_pairs(self, root, split):
        """[(hr_path, lr_path)] sorted by HR file name."""
        hr_folder, lr_folder = self._folders(root, split)
        hr, lr = self._parse(hr_folder, self.scale), self._parse(lr_folder, 1)
        if not hr:
            scales = sorted({int(m['s']) for m in map(DREALSR_NAME.match, list_images(hr_folder)) if m})
            found = f" (it has {', '.join(f'_x{s}' for s in scales)} files: set scale to match)" if scales else ''
            raise DatasetError(f'DRealSR: no HR files named <image>_x{self.scale}.png in {hr_folder}{found}')
        unpaired = [os.path.join(hr_folder, hr[k]) for k in sorted(hr.keys() - lr.keys())]
        unpaired += [os.path.join(lr_folder, lr[k]) for k in sorted(lr.keys() - hr.keys())]
        if unpaired:
            raise DatasetError(f'DRealSR: {len(unpaired)} file(s) without their _x{self.scale} (HR) / _x1 (LR) '
                               f'partner: {listed(unpaired)}')
        keys = sorted(hr, key=lambda k: hr[k])
        return [(os.path.join(hr_folder, hr[k]), os.path.join(lr_folder, lr[k])) for k in keys]

    def align(self, gt, lq, gt_path, lq_path):
        """Check that LR is 1/s of HR; crop so that LR (i, j) is HR (s*i, s*j)."""
        return crop_pair_to_scale(gt, lq, self.scale, gt_path, lq_path, 'DRealSR', f' (the LR must be 1/{self.scale})')
