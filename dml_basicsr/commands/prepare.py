"""``basicsr prepare``: paired sub-images of a paired dataset in LMDB (BasicSR's extract_subimages + create_lmdb).

    basicsr prepare -opt options/train_dml_x4.yml --output datasets/RealSRV3_x4_train_sub
                    [--dataset train] [--crop-size 480] [--step 240] [--thresh-size 0] [--compress-level 1]
                    [--force_yml key:sub=value ...] [--no-progress]
"""
import argparse

from basicsr.utils.registry import DATASET_REGISTRY
from tqdm import tqdm

from dml_basicsr.data.errors import DatasetError
from dml_basicsr.data.paired_base import PairedImageFolder
from dml_basicsr.data.prepared_lmdb import write_prepared
from dml_basicsr.utils.options import OptionError, load_options
from dml_basicsr.utils.output_folder import OutputFolderError
from . import fail

HELP = 'Cut the pairs of a paired dataset (as an option file configures it) into LMDB sub-images.'
DESCRIPTION = HELP + '''

The pairs are those of the section datasets.<--dataset> of the option file (RealSRDataset,
City100Dataset or DRealSRDataset, read from disk), aligned as the dataset aligns them; each is cut
into sub-images of --crop-size HR pixels every --step pixels (plus one flush with the border when
more than --thresh-size pixels are left), as BasicSR's extract_subimages.py does for DIV2K. OUTPUT
gets HR.lmdb and LR.lmdb (BasicSR's layout, meta_info.txt inside, the same keys <image>_s001 ...)
and prepared.yml. Read it with the same dataset section and

    dataroot: OUTPUT
    io_backend:
      type: lmdb

OUTPUT is written under a hidden temporary name beside it and renamed when complete: a killed run
leaves no half-made OUTPUT. An existing OUTPUT is an error.'''


def add_arguments(p):
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.description = DESCRIPTION
    p.add_argument('-opt', required=True, help='option YAML file whose dataset section gives the pairs')
    p.add_argument('--output', required=True, metavar='DIR', help='the prepared folder to make')
    p.add_argument('--dataset', default='train', metavar='KEY', help='the section datasets.KEY (default: train)')
    p.add_argument('--crop-size', type=int, default=480, metavar='PIXELS',
                   help='HR sub-image side, a multiple of the HR/LR ratio (default: 480)')
    p.add_argument('--step', type=int, default=240, metavar='PIXELS',
                   help='HR distance between sub-images, a multiple of the HR/LR ratio (default: 240)')
    p.add_argument('--thresh-size', type=int, default=0, metavar='PIXELS',
                   help='add a sub-image flush with the border when more than this is left over (default: 0)')
    p.add_argument('--compress-level', type=int, default=1, metavar='N', help='PNG compression 0-9 (default: 1)')
    p.add_argument('--force_yml', nargs='+', default=None, help='update the options, e.g. datasets:train:scale=2')
    p.add_argument('--no-progress', action='store_true', help='no progress bar')


# BasicSR's own dataset of HR/ + LR/ folders: whole pairs in its 'val' phase, which is all that fit-noise reads.
BASICSR_PAIRED = 'PairedImageDataset'


def paired_types(whole_images=False):
    """The registered dataset types whose pairs a command can read: this package's paired folders, and with
    ``whole_images`` (a command that reads each whole pair once) BasicSR's PairedImageDataset."""
    names = [name for name, cls in DATASET_REGISTRY if isinstance(cls, type) and issubclass(cls, PairedImageFolder)]
    return sorted(names) + ([BASICSR_PAIRED] if whole_images else [])


def build_source(opt, key, opt_path, phase=None, command='prepare'):
    """The paired dataset of ``datasets.<key>`` as BasicSR builds it (phase and scale set), read from disk;
    ``phase`` (e.g. 'val': whole images, no random crop) instead of the one the key names. With phase 'val',
    BasicSR's PairedImageDataset is read too."""
    section = (opt.get('datasets') or {}).get(key)
    if not isinstance(section, dict):
        raise OptionError(f'{opt_path}: no section datasets.{key} (it has: {", ".join(opt.get("datasets") or {})})')
    cls = DATASET_REGISTRY.get(section.get('type')) if section.get('type') in DATASET_REGISTRY else None
    whole_images = phase == 'val'
    if cls is None or not (issubclass(cls, PairedImageFolder) or
                           (whole_images and section.get('type') == BASICSR_PAIRED)):
        raise OptionError(f'{opt_path}: datasets.{key}.type {section.get("type")!r}: {command} reads the aligned '
                          f'pairs of {", ".join(paired_types(whole_images))}')
    if (section.get('io_backend') or {}).get('type', 'disk') != 'disk':
        raise OptionError(f'{opt_path}: datasets.{key} reads an LMDB already; {command} from its disk options '
                          '(io_backend: {type: disk}, dataroot: the original folder)')
    dataset_opt = dict(section, phase=phase or key.split('_')[0], cache=False)
    if 'scale' in opt:
        dataset_opt['scale'] = opt['scale']
    return cls(dataset_opt)


def dataset_roots(opt, key):
    """The folders the section datasets.<key> reads its pairs from."""
    section = (opt.get('datasets') or {}).get(key) or {}
    return [section[k] for k in ('dataroot', 'dataroot_gt', 'dataroot_lq') if isinstance(section.get(k), str)]


def prepare(args):
    """Build the source dataset of the arguments and write the prepared folder; dict(pairs, subimages)."""
    opt = load_options(args.opt, args.force_yml)
    dataset = build_source(opt, args.dataset, args.opt)
    gt_size = dataset.opt.get('gt_size') or 0
    if gt_size > args.crop_size:
        raise DatasetError(f'--crop-size {args.crop_size} is smaller than the training patch gt_size {gt_size}')
    progress = None if args.no_progress else (lambda pairs: tqdm(pairs, unit='pair', desc='prepare'))
    return write_prepared(dataset, args.output, args.crop_size, args.step, args.thresh_size, args.compress_level,
                          progress, inputs=[args.opt, *dataset_roots(opt, args.dataset)])


def run(args):
    try:
        done = prepare(args)
    except (DatasetError, OptionError, OutputFolderError) as e:
        return fail('prepare', e)
    print(f"basicsr prepare: {done['subimages']} sub-image pairs of {done['pairs']} pairs in {args.output}; read "
          f"them with dataroot: {args.output} and io_backend: {{type: lmdb}}")
    return 0
