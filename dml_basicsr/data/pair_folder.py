"""The aligned HR-LR pairs of one folder, in any of the layouts a user's own pairs come in.

* ``DIR/HR/`` and ``DIR/LR/`` with the same file names (BasicSR's paired-folder convention);
* RealSR's names in one folder: ``<Cam>_<NNN>_HR.png`` beside ``<Cam>_<NNN>_LR<s>.png``;
* City100's names in one folder: ``NNNH.PNG`` beside ``NNNL.PNG``.
"""
import os

from .city100_dataset import CITY100_NAME
from .errors import DatasetError, DatasetNotFoundError
from .image_io import index_images, list_images
from .paired_base import pair_paths
from .realsr_dataset import REALSR_NAME

LAYOUTS = ('HR/ + LR/ with the same file names, RealSR\'s <Cam>_<NNN>_HR.png + _LR<s>.png, or City100\'s NNNH.PNG + '
           'NNNL.PNG')


def _folder_pairs(root):
    hr = {name: os.path.join(root, 'HR', name) for name in list_images(os.path.join(root, 'HR'))}
    lr = {name: os.path.join(root, 'LR', name) for name in list_images(os.path.join(root, 'LR'))}
    return [(os.path.basename(h), h, l) for h, l in pair_paths(hr, lr, root, 'HR/ + LR/')]


def _realsr_pairs(root):
    def key_of(kind):
        return lambda m: (m['cam'], int(m['id'])) if m['kind'].startswith(kind) else None

    hr = index_images(root, REALSR_NAME, key_of('HR'), root, 'the HR of {key}')
    lr = index_images(root, REALSR_NAME, key_of('LR'), root, 'the LR of {key} (one scale per folder)')
    return [(os.path.basename(h), h, l) for h, l in pair_paths(hr, lr, root, 'HR/LR')]


def _city100_pairs(root):
    def key_of(kind):
        return lambda m: int(m['id']) if m['kind'].upper() == kind else None

    hr = index_images(root, CITY100_NAME, key_of('H'), root, 'the HR of scene {key}')
    lr = index_images(root, CITY100_NAME, key_of('L'), root, 'the LR of scene {key}')
    return [(os.path.basename(h), h, l) for h, l in pair_paths(hr, lr, root, 'H/L')]


def find_pairs(root):
    """``[(name, hr_path, lr_path)]`` of the pairs in ``root`` (see the module), sorted; DatasetError naming the
    folder if it holds none, or a file without its partner."""
    if not os.path.isdir(root):
        raise DatasetNotFoundError(f'{root}: folder not found')
    if os.path.isdir(os.path.join(root, 'HR')) or os.path.isdir(os.path.join(root, 'LR')):
        pairs = _folder_pairs(root)
    else:
        names = list_images(root)
        realsr = [n for n in names if REALSR_NAME.match(n)]
        pairs = _realsr_pairs(root) if realsr else _city100_pairs(root) if names else []
    if not pairs:
        raise DatasetError(f'{root}: no HR-LR pairs (expected {LAYOUTS})')
    for name, *paths in pairs:
        for path in paths:
            if not os.path.isfile(path):
                raise DatasetError(f'{path}: not a regular file')
    return pairs
