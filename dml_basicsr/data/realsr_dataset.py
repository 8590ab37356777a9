import os
import re

from basicsr.utils.registry import DATASET_REGISTRY

from .dataset_checks import check_folders, check_range, require_scale
from .errors import DatasetError
from .image_io import index_images
from .pair_transforms import scaled_size
from .paired_base import PairedImageFolder, pair_paths

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
        id_range (list[int]): [first, last] scene numbers to use, inclusive, for every camera (default: all);
            e.g. [1, 30] to train and [31, 35] to validate from one folder.
        lr_grid (str): 'lr' (V3, default) or 'hr' (V2).
        color (str): 'y' for the Y channel, or null for RGB (default).
        gt_size (int): HR training patch side, a multiple of ``scale`` when ``lr_grid: lr`` (train).
        use_hflip, use_rot (bool): flip/rotate training patches (default false: they would also
            flip/rotate the real degradation that DML learns).
        io_backend (dict): {type: disk} (default), or {type: lmdb} with ``dataroot`` a folder made by
            ``basicsr prepare`` (sub-images of these pairs; cameras and split are then not used).
        cache (bool), cache_max_gb (number): keep the decoded images in memory, bounded (default false, 4 GB);
            see :class:`~dml_basicsr.data.paired_base.PairedImageFolder`.
    """

    OPTIONS = PairedImageFolder.OPTIONS | {'split', 'cameras', 'lr_grid', 'id_range'}

    def __init__(self, opt):
        super().__init__(opt)
        self.scale = require_scale(opt, 'RealSRDataset')
        self.lr_grid = opt.get('lr_grid', 'lr')
        if self.lr_grid not in LR_GRIDS:
            raise DatasetError(f"RealSRDataset: lr_grid must be 'lr' (V3) or 'hr' (V2), got {self.lr_grid!r}")
        self.crop_scale = self.lr_ratio = self.scale if self.lr_grid == 'lr' else 1
        split = opt.get('split', 'Train' if self.is_train else 'Test')
        if split not in ('Train', 'Test'):
            raise DatasetError(f"RealSRDataset: split must be 'Train' or 'Test', got {split!r}")
        id_range = opt.get('id_range')
        check_range(id_range, f"RealSRDataset '{opt.get('name')}': id_range")
        self.set_pairs(lambda: self._find_pairs(opt['dataroot'], split, opt.get('cameras', ['Canon', 'Nikon']),
                                                id_range))

    def _folders(self, root, split, cameras):
        folders = [os.path.join(root, cam, split, str(self.scale)) for cam in cameras]
        expected = ('Expected the layout <dataroot>/<Cam>/<Train|Test>/<scale>/, '
                    f'e.g. {root}/Canon/Train/4/Canon_001_HR.png beside Canon_001_LR4.png')
        return check_folders(folders, 'RealSR', expected)

    @staticmethod
    def _images(folder, kind, rank, id_range):
        """{(rank, camera, number): path} of the images of ``kind`` ('HR' or 'LR<s>') in a camera folder, with
        numbers in ``id_range`` (or any)."""
        first, last = id_range if id_range is not None else (0, float('inf'))

        def key_of(match):
            number = int(match['id'])
            return (rank, match['cam'], number) if match['kind'] == kind and first <= number <= last else None

        return index_images(folder, REALSR_NAME, key_of, 'RealSR')

    def _find_pairs(self, root, split, cameras, id_range):
        """[(hr_path, lr_path)] of every camera folder, in the order of ``cameras``, then by number."""
        hr, lr = {}, {}
        for rank, folder in enumerate(self._folders(root, split, cameras)):
            hr.update(self._images(folder, 'HR', rank, id_range))
            lr.update(self._images(folder, f'LR{self.scale}', rank, id_range))
        pairs = pair_paths(hr, lr, 'RealSR', f'HR/LR{self.scale}')
        if not pairs:
            where = f', numbers in {list(id_range)}' if id_range is not None else ''
            raise DatasetError(f'RealSR: no <Cam>_<NNN>_HR / _LR{self.scale} pairs in {root} '
                               f'(split {split}, cameras {cameras}{where})')
        return pairs

    def aligned_size(self, gt_shape, lq_shape, gt_path, lq_path):
        """Check the sizes against ``lr_grid``; the HR size to keep so that LR (i, j) is HR (s*i, s*j)."""
        return scaled_size(gt_shape, lq_shape, self.crop_scale, gt_path, lq_path, f'RealSR lr_grid {self.lr_grid!r}',
                           ' (V3 data: lr_grid lr; V2 data: lr_grid hr)')
