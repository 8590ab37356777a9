from basicsr.utils.registry import DATASET_REGISTRY

from .dataset_checks import require_scale
from .errors import DatasetError
from .pair_transforms import scaled_size
from .paired_base import PairedImageFolder


def column_range(columns, where):
    """``(a, b)`` of a ``columns`` option, 0 <= a < b <= 1; DatasetError otherwise."""
    ok = (isinstance(columns, (list, tuple)) and len(columns) == 2
          and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in columns)
          and 0 <= columns[0] < columns[1] <= 1)
    if not ok:
        raise DatasetError(f'{where}: columns must be [a, b] with 0 <= a < b <= 1 (fractions of the width), got '
                           f'{columns!r}')
    return float(columns[0]), float(columns[1])


def column_slice(width, columns):
    """The slice of ``width`` columns that the fractions ``columns`` = (a, b) select (at least one)."""
    start = int(round(columns[0] * width))
    return slice(start, max(int(round(columns[1] * width)), start + 1))


@DATASET_REGISTRY.register()
class AdaptationPairsDataset(PairedImageFolder):
    """Listed aligned HR-LR pairs at 1/s (e.g. a user's own camera pairs, as ``basicsr adapt`` trains on them),
    optionally only a band of columns of each pair (to hold the rest out).

    Options:
        pairs (list): [[hr_path, lr_path], ...]; the LR is 1/scale of the HR (rounded down or up).
        scale (int): set by BasicSR from the top-level ``scale``.
        columns (list): [a, b], the fractions of the LR width to use (default [0, 1]: whole pairs); cut at whole LR
            pixels, the HR at s times them.
        color, gt_size, use_hflip, use_rot, cache, cache_max_gb: as every paired dataset
            (:class:`~dml_basicsr.data.paired_base.PairedImageFolder`).
    """

    IO_BACKENDS = ('disk',)
    OPTIONS = PairedImageFolder.OPTIONS | {'pairs', 'columns'}

    def __init__(self, opt):
        super().__init__(opt)
        self.scale = require_scale(opt, 'AdaptationPairsDataset')
        self.crop_scale = self.lr_ratio = self.scale
        where = f"AdaptationPairsDataset '{opt.get('name')}'"
        self.columns = column_range(opt.get('columns', [0, 1]), where)
        pairs = opt.get('pairs')
        if not isinstance(pairs, (list, tuple)) or not pairs or not all(
                isinstance(p, (list, tuple)) and len(p) == 2 and all(isinstance(x, str) for x in p) for p in pairs):
            raise DatasetError(f'{where}: pairs must be a non-empty list of [hr_path, lr_path], got {pairs!r}')
        self.set_pairs(lambda: [tuple(p) for p in pairs])

    def aligned_size(self, gt_shape, lq_shape, gt_path, lq_path):
        return scaled_size(gt_shape, lq_shape, self.scale, gt_path, lq_path, 'AdaptationPairsDataset')

    def aligned_region(self, gt, lq, gt_path, lq_path):
        gt, lq = super().aligned_region(gt, lq, gt_path, lq_path)
        cols, s = column_slice(lq.shape[1], self.columns), self.scale
        return gt[:, cols.start * s:cols.stop * s], lq[:, cols]

    def check_patches_fit(self):
        if self.columns == (0., 1.):
            super().check_patches_fit()
