"""Training items per second of the paired datasets, per DataLoader worker, with and without the fast path.

Prints two Markdown tables:

1. samples/s of RealSRDataset, City100Dataset and DRealSRDataset with the training options of the shipped
   option files (options/train_dml_x4.yml for RealSR and, lacking a DRealSR file, for DRealSR too;
   options/train_dml_city100.yml for City100), on RealSR-sized pairs (--size, HR 1500x1100) made in a
   temporary folder, one process (num_workers 0), for each way of reading:
   - full image (before): the path before the fast path, decode the whole pair to float, align, convert, crop;
   - plain: io_backend disk, crop before the float and colour conversion;
   - cache: plain plus ``cache: true`` (decoded once when the dataset is built: the 'setup' column);
   - lmdb: sub-images cut by ``basicsr prepare`` (480/240, the setup), ``io_backend: {type: lmdb}``.
2. One City100 training item as options/train_dml_city100.yml configures it against a bare cv2.imread of
   its two files, on datasets/City100_NikonD5500 if present, else on made 1218x870 pairs.
   Target (issue 9): the item costs at most a quarter of that imread.

    python benchmarks/data_loading.py [--pairs 4] [--size 1100 1500] [--seconds 5]
"""
import argparse
import os
import random
import statistics
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import yaml

import dml_basicsr  # noqa: F401  (first: applies the basicsr 1.4.2 fixes, registers the datasets)
from basicsr.utils.registry import DATASET_REGISTRY
from dml_basicsr.data.image_io import convert_color, read_image
from dml_basicsr.data.pair_transforms import pair_to_tensors, train_augment
from dml_basicsr.data.prepared_lmdb import write_prepared

ROOT = Path(__file__).resolve().parents[1]
SHARED_CITY100 = ROOT.parent / 'shared' / 'data' / 'City100_NikonD5500'


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--pairs', type=int, default=4, help='made pairs per dataset')
    parser.add_argument('--size', type=int, nargs=2, default=(1100, 1500), metavar=('H', 'W'), help='HR size')
    parser.add_argument('--seconds', type=float, default=5, help='timing per table part (at least 5 rounds)')
    return parser.parse_args()


# ------------------------------------------------------------------------------------------------ data


def photo_like(h, w, seed):
    """uint8 BGR (h, w, 3): smooth random shapes plus sensor-like noise (PNG-compresses like a photo)."""
    rng = np.random.default_rng(seed)
    img = cv2.resize(rng.uniform(0, 255, (h // 40 + 2, w // 40 + 2, 3)).astype(np.float32), (w, h),
                     interpolation=cv2.INTER_CUBIC)
    return np.clip(img + rng.normal(0, 3, img.shape), 0, 255).astype(np.uint8)


def lr_of(hr, scale):
    return cv2.resize(cv2.GaussianBlur(hr, (5, 5), 1.0), (hr.shape[1] // scale, hr.shape[0] // scale),
                      interpolation=cv2.INTER_AREA)


def write_pairs(pairs, size, scale, name_of, lr_on_hr_grid=False):
    """Write ``pairs`` HR/LR pairs; ``name_of(i)`` gives their (hr_path, lr_path)."""
    for i in range(pairs):
        hr = photo_like(*size, seed=i)
        lr = lr_of(hr, scale)
        if lr_on_hr_grid:
            lr = cv2.resize(lr, (size[1], size[0]), interpolation=cv2.INTER_CUBIC)
        hr_path, lr_path = name_of(i)
        os.makedirs(os.path.dirname(hr_path), exist_ok=True)
        os.makedirs(os.path.dirname(lr_path), exist_ok=True)
        cv2.imwrite(hr_path, hr)
        cv2.imwrite(lr_path, lr)


def make_realsr(root, pairs, size, scale=4):
    def name_of(i):
        folder = f"{root}/{('Canon', 'Nikon')[i % 2]}/Train/{scale}/{('Canon', 'Nikon')[i % 2]}_{i:03d}"
        return f'{folder}_HR.png', f'{folder}_LR{scale}.png'

    write_pairs(pairs, size, scale, name_of)


def make_city100(root, pairs, size):
    write_pairs(pairs, size, 3, lambda i: (f'{root}/{i + 1:03d}H.PNG', f'{root}/{i + 1:03d}L.PNG'), True)


def make_drealsr(root, pairs, size, scale=4):
    write_pairs(pairs, size, scale, lambda i: (f'{root}/test_HR/DSC_{i:04d}_x{scale}.png',
                                               f'{root}/test_LR/DSC_{i:04d}_x1.png'))


def train_options(option_file, **changes):
    """The train dataset section of a shipped option file, as BasicSR passes it (phase, scale), changed."""
    with open(ROOT / 'options' / option_file) as f:
        opt = yaml.safe_load(f)
    section = dict(opt['datasets']['train'], phase='train', scale=opt['scale'])
    section.update(changes)
    return section


# ---------------------------------------------------------------------------------------------- timing


def full_image_item(ds, index):
    """The item the way it was made before the fast path: whole pair to float, align, convert, crop."""
    gt_path, lq_path = ds.pairs[index]
    gt, lq = ds.align(read_image(gt_path), read_image(lq_path), gt_path, lq_path)
    gt, lq = convert_color(gt, ds.opt.get('color')), convert_color(lq, ds.opt.get('color'))
    gt, lq = train_augment(gt, lq, ds.opt, ds.crop_scale, gt_path, flip_default=False)
    return pair_to_tensors(gt, lq)


def median_seconds(fns, seconds, minimum=5):
    """{name: median seconds of fn()} of {name: fn}, called in turn (so that load drifts hit all alike) for
    at least ``minimum`` rounds and ``seconds`` seconds, after one warm-up round."""
    for fn in fns.values():
        fn()
    times, start = {name: [] for name in fns}, time.perf_counter()
    while len(times[next(iter(fns))]) < minimum or time.perf_counter() - start < seconds:
        for name, fn in fns.items():
            t = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t)
    return {name: statistics.median(t) for name, t in times.items()}


def timed_build(opt):
    start = time.perf_counter()
    ds = DATASET_REGISTRY.get(opt['type'])(opt)
    return ds, time.perf_counter() - start


def variants(opt, work):
    """({variant: item function}, {variant: setup seconds}) of one dataset section."""
    plain, _ = timed_build(opt)
    cached, cache_setup = timed_build(dict(opt, cache=True))
    start, sub = time.perf_counter(), f'{work}/sub_{opt["name"]}'
    write_prepared(plain, sub)
    prepared, lmdb_setup = timed_build(dict(opt, dataroot=sub, io_backend={'type': 'lmdb'}))
    lmdb_setup = time.perf_counter() - start

    def random_item(ds):
        return lambda: ds[random.randrange(len(ds))]

    items = {'full image (before)': lambda: full_image_item(plain, random.randrange(len(plain))),
             'plain (crop first)': random_item(plain), 'cache': random_item(cached), 'lmdb': random_item(prepared)}
    return items, {'cache': cache_setup, 'lmdb': lmdb_setup}


def dataset_table(args, work):
    size, n = tuple(args.size), args.pairs
    make_realsr(f'{work}/realsr', n, size)
    make_city100(f'{work}/city100', n, size)
    make_drealsr(f'{work}/drealsr', n, size)
    sections = {
        'RealSR x4 (train_dml_x4.yml)': train_options('train_dml_x4.yml', dataroot=f'{work}/realsr', cache=False),
        'City100 x1 (train_dml_city100.yml)': train_options('train_dml_city100.yml', dataroot=f'{work}/city100',
                                                            id_range=None, cache=False),
        'DRealSR x4 (train_dml_x4.yml options)': train_options('train_dml_x4.yml', type='DRealSRDataset',
                                                               name='DRealSR_train', dataroot=f'{work}/drealsr',
                                                               split='test', cache=False),
    }
    print(f'{n} made pairs per dataset, HR {size[1]}x{size[0]}, one process (num_workers 0), Y channel as '
          'configured; samples/s = 1 / median item time, variants timed in turn')
    print('| dataset | variant | samples/s | ms / item | setup s |')
    print('|---|---|---:|---:|---:|')
    for label, opt in sections.items():
        items, setup = variants(opt, work)
        for variant, t in median_seconds(items, args.seconds).items():
            print(f'| {label} | {variant} | {1 / t:.1f} | {t * 1e3:.2f} | {setup.get(variant, 0):.2f} |')


def city100_table(args, work):
    root = SHARED_CITY100
    if not root.is_dir():
        root = f'{work}/city100_real_size'
        make_city100(root, 2, (870, 1218))
    opt = train_options('train_dml_city100.yml', dataroot=str(root), id_range=[1, 2])
    configured, plain = timed_build(opt)[0], timed_build(dict(opt, cache=False))[0]
    random.seed(0)
    rows = median_seconds({'bare cv2.imread of its two files': lambda: [cv2.imread(p, cv2.IMREAD_UNCHANGED)
                                                                         for p in configured.pairs[0]],
                           'item, full image (before)': lambda: full_image_item(plain, 0),
                           'item, plain (crop first, no cache)': lambda: plain[0],
                           'item as configured (cache: true)': lambda: configured[0]}, args.seconds)
    bare = rows['bare cv2.imread of its two files']
    where = os.path.relpath(root, ROOT) if root == SHARED_CITY100 else f'made pairs in {root}'
    print(f'\nOne City100 training item of options/train_dml_city100.yml (gt_size {opt["gt_size"]}, Y) on {where}')
    print('| what | ms | / bare imread |')
    print('|---|---:|---:|')
    for what, t in rows.items():
        print(f'| {what} | {t * 1e3:.2f} | {t / bare:.3f} |')
    verdict = 'met' if rows['item as configured (cache: true)'] <= bare / 4 else 'NOT met'
    print(f'\nTarget, item <= 1/4 of the bare imread: {verdict}')


def main():
    args = parse_args()
    random.seed(0)
    with tempfile.TemporaryDirectory(prefix='dml_data_loading_') as work:
        dataset_table(args, work)
        city100_table(args, work)


if __name__ == '__main__':
    main()
