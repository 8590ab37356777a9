import os
import re

from basicsr.utils.registry import DATASET_REGISTRY

from .dataset_checks import check_disk_backend, check_gt_size, listed
from .errors import DatasetError, DatasetNotFoundError
from .image_io import list_images
from .pair_transforms import crop_pair_to_scale
from .paired_base import PairedImageFolder

# <Cam>_<NNN>_HR.png or <Cam>_<NNN>_LR<s>.png, e.g. Canon_001_HR.png and Canon_001_LR4.png.
REALSR_NAME = re.compile(r'^(?P<cam>[A-Za-z0-9]+)_(?P<id>\d+)_(?P<kind>HR|LR(?P<s>\d))'
                         r'\.(?i:png|jpg|jpeg|bmp|tif|tiff|webp)$')
LR_GRIDS = ('lr', 'hr')
@DATASET_REGISTRY.register()
class RealSRDataset(PairedImageFolder):
    """Real HR-LR pairs of the RealSR dataset (Cai et al., ICCV 2019), Canon and Nikon cameras.

    Layout: ``<dataroot>/<Cam>/<split>/<scale>/<Cam>_<NNN>_HR.png`` beside ``<Cam>_<NNN>_LR<scale>.png``.
    HR and LR are paired by parsing the file names (same camera, same number, LR scale equal to
    ``scale``); image files with other names, and LR files of other scales, are ignored.

    RealSR V3 stores the LR at 1/s of the HR size (``lr_grid: lr``); V2 stores it interpolated
    back onto the HR grid (``lr_grid: hr``), and then the pair is at scale 1. The sizes are checked
    against the declared grid when a pair is read. With ``lr_grid: lr`` the pair is cropped
    top-left to LR (H // s, W // s) and HR s times that, so the two always match exactly.

    Options:
        dataroot (str): the RealSR root folder, holding Canon/ and Nikon/.
        split (str): 'Train' or 'Test' (default 'Train' in the train phase, 'Test' otherwise).
        scale (int): 2, 3 or 4 (set by BasicSR from the top-level ``scale``).
        cameras (list[str]): camera folders to use (default [Canon, Nikon]).
        lr_grid (str): 'lr' (V3, default) or 'hr' (V2).
        color (str): 'y' for the Y channel, or null for RGB (default).
        gt_size (int): HR training patch side, a multiple of ``scale`` when ``lr_grid: lr`` (train).
        use_hflip, use_rot (bool): flip/rotate training patches (default false: they would also
            flip/rotate the real degradation that DML learns).
        io_backend (dict): only {type: disk}.
    """

    def __init__(self, opt):
        super().__init__()
        self.opt = opt
        check_disk_backend(opt, 'RealSRDataset')
        check_gt_size(opt, 'RealSRDataset')
        self.is_train = opt['phase'] == 'train'
        if 'scale' not in opt:
            raise DatasetError(f"RealSRDataset '{opt.get('name')}': option 'scale' is missing (2, 3 or 4)")
        self.scale = int(opt['scale'])
        self.lr_grid = opt.get('lr_grid', 'lr')
        if self.lr_grid not in LR_GRIDS:
            raise DatasetError(f"RealSRDataset: lr_grid must be 'lr' (V3) or 'hr' (V2), got {self.lr_grid!r}")
        self.crop_scale = self.scale if self.lr_grid == 'lr' else 1
        split = opt.get('split', 'Train' if self.is_train else 'Test')
        if split not in ('Train', 'Test'):
            raise DatasetError(f"RealSRDataset: split must be 'Train' or 'Test', got {split!r}")
        self.pairs = self._find_pairs(opt['dataroot'], split, opt.get('cameras', ['Canon', 'Nikon']))

    def _folders(self, root, split, cameras):
        folders = [os.path.join(root, cam, split, str(self.scale)) for cam in cameras]
        missing = [f for f in folders if not os.path.isdir(f)]
        if missing:
            raise DatasetNotFoundError(
                f'RealSR folder(s) not found: {", ".join(os.path.abspath(f) for f in missing)}. Expected the layout '
                f'<dataroot>/<Cam>/<Train|Test>/<scale>/, e.g. {root}/Canon/Train/4/Canon_001_HR.png '
                'beside Canon_001_LR4.png')
        return folders

    def _find_pairs(self, root, split, cameras):
        """[(hr_path, lr_path)] of every camera folder, sorted by file name."""
        pairs, unpaired = [], []
        for folder in self._folders(root, split, cameras):
            hr, lr = {}, {}
            for name in list_images(folder):
                match = REALSR_NAME.match(name)
                if match is None or (match['s'] and int(match['s']) != self.scale):
                    continue
                files = hr if match['kind'] == 'HR' else lr
                key = (match['cam'], int(match['id']))
                if key in files:
                    raise DatasetError(f'RealSR: two files for the same image in {folder}: {files[key]} and {name}')
                files[key] = name
            for files, other in ((hr, lr), (lr, hr)):
                unpaired += [os.path.join(folder, files[k]) for k in sorted(files.keys() - other.keys())]
            pairs += [(os.path.join(folder, hr[k]), os.path.join(folder, lr[k])) for k in sorted(hr.keys() & lr.keys())]
        if unpaired:
            raise DatasetError(f'RealSR: {len(unpaired)} file(s) without their HR/LR{self.scale} partner: '
                             f'{listed(unpaired)}')
        if not pairs:
            raise DatasetError(f'RealSR: no <Cam>_<NNN>_HR / _LR{self.scale} pairs in {root} '
                             f'(split {split}, cameras {cameras})')
        return pairs

    def align(self, gt, lq, gt_path, lq_path):
        """Check the sizes against ``lr_grid``; crop so that LR (i, j) is HR (s*i, s*j)."""
        return crop_pair_to_scale(gt, lq, self.crop_scale, gt_path, lq_path, f'RealSR lr_grid {self.lr_grid!r}',
                                  ' (V3 data: lr_grid lr; V2 data: lr_grid hr)')
