"""Option checks and message helpers shared by the datasets."""
import os

from dml_basicsr.utils.options import is_int
from .errors import DatasetError, DatasetNotFoundError

MAX_LISTED = 5
COLORS = (None, 'rgb', 'y')
# The keys of a dataset section that BasicSR itself reads or sets (basicsr/train.py, data/__init__.py,
# utils/options.py) or that its option files carry (use_shuffle); a dataset's own keys are its OPTIONS.
BASICSR_DATASET_KEYS = frozenset({
    'name', 'type', 'phase', 'scale', 'num_worker_per_gpu', 'batch_size_per_gpu', 'dataset_enlarge_ratio',
    'prefetch_mode', 'num_prefetch_queue', 'pin_memory', 'persistent_workers', 'use_shuffle'})


def check_io_backend(opt, dataset, allowed=('disk',)):
    """The ``io_backend`` type (default disk) if it is one of ``allowed``; anything else is a clear error."""
    backend = (opt.get('io_backend') or {}).get('type', 'disk')
    if backend not in allowed:
        use = ' or '.join(f'{{type: {b}}}' for b in allowed)
        raise DatasetError(f"{dataset} '{opt.get('name')}': io_backend type {backend!r} is not supported; "
                           f'use io_backend: {use}')
    return backend


def check_gt_size(opt, dataset):
    """Training crops need ``gt_size``."""
    if opt['phase'] == 'train' and not opt.get('gt_size'):
        raise DatasetError(f"{dataset} '{opt.get('name')}': option 'gt_size' (training patch side) is missing")


def check_color(opt, dataset):
    """``color``: 'y', 'rgb' or null."""
    if opt.get('color') not in COLORS:
        raise DatasetError(f"{dataset} '{opt.get('name')}': color must be 'y', 'rgb' or null, got {opt['color']!r}")


def require_scale(opt, dataset):
    """The SR ``scale`` of a real pair dataset (BasicSR sets it from the top-level ``scale``)."""
    if 'scale' not in opt:
        raise DatasetError(f"{dataset} '{opt.get('name')}': option 'scale' is missing (2, 3 or 4)")
    return int(opt['scale'])


def is_positive_int(value):
    """An int >= 1, and not a bool (YAML's true is an int to Python)."""
    return is_int(value) and value >= 1


def check_max_size(opt, dataset):
    """``max_size``: null (no crop) or a positive integer; returns it."""
    max_size = opt.get('max_size')
    if max_size is not None and not is_positive_int(max_size):
        raise DatasetError(f"{dataset} '{opt.get('name')}': max_size must be a positive integer or null, "
                           f'got {max_size!r}')
    return max_size


def check_range(id_range, what):
    """A ``[first, last]`` option (or null); ``what`` starts the message, e.g. 'City100: id_range'."""
    if id_range is None:
        return
    if not isinstance(id_range, (list, tuple)) or len(id_range) != 2 or id_range[0] > id_range[1]:
        raise DatasetError(f'{what} must be [first, last] with first <= last, got {id_range}')


def check_folders(folders, dataset, expected):
    """Return ``folders``; DatasetNotFoundError naming the missing ones, then ``expected`` (the layout)."""
    missing = [f for f in folders if not os.path.isdir(f)]
    if missing:
        raise DatasetNotFoundError(f'{dataset} folder(s) not found: {", ".join(os.path.abspath(f) for f in missing)}. '
                                   f'{expected}')
    return folders


def listed(names):
    """The first few names, and how many more there are."""
    more = f' (and {len(names) - MAX_LISTED} more)' if len(names) > MAX_LISTED else ''
    return ', '.join(names[:MAX_LISTED]) + more
