"""Option checks and message helpers shared by the paired datasets."""
from .errors import DatasetError

MAX_LISTED = 5


def check_disk_backend(opt, dataset):
    """Accept ``io_backend: {type: disk}`` (or no ``io_backend``); anything else is a clear error."""
    backend = (opt.get('io_backend') or {}).get('type', 'disk')
    if backend != 'disk':
        raise DatasetError(f"{dataset} '{opt.get('name')}': io_backend type {backend!r} is not supported; "
                           "use io_backend: {type: disk}")


def check_gt_size(opt, dataset):
    """Training crops need ``gt_size``."""
    if opt['phase'] == 'train' and not opt.get('gt_size'):
        raise DatasetError(f"{dataset} '{opt.get('name')}': option 'gt_size' (training patch side) is missing")


def listed(names):
    """The first few names, and how many more there are."""
    more = f' (and {len(names) - MAX_LISTED} more)' if len(names) > MAX_LISTED else ''
    return ', '.join(names[:MAX_LISTED]) + more
