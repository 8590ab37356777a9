"""The "no learning" row of an SR table: MATLAB bicubic upsampling of the real LR, scored like the SR networks.

Reads the pairs of an option file's test/val dataset (as `basicsr test` would), upsamples each LR by the scale with
BasicSR's MATLAB-style ``imresize``, and writes the per-image metrics of that option file's ``val.metrics`` to
``results/<name>/metrics_<dataset>.csv`` (the file `basicsr report` reads):

    python scripts/bicubic_upsampling_reference.py --opt options/test_srx4_realsr_manifest.yml \
        --name BicubicUp_RealSRcrops_x4
"""
import argparse
import os

import torch

import dml_basicsr  # noqa: F401,I001  (first: its compatibility fixes let basicsr import; registers the datasets)
from basicsr.utils import tensor2img
from basicsr.utils.matlab_functions import imresize
from basicsr.utils.registry import DATASET_REGISTRY
from dml_basicsr.models.per_image_metrics import append_metrics_csv, image_metrics
from dml_basicsr.utils.options import load_options


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--opt', required=True, help='an option file with datasets.test_1 (or val) and val.metrics')
    parser.add_argument('--name', required=True, help='the results folder: results/<name>/')
    args = parser.parse_args()
    opt = load_options(args.opt)
    scale = int(opt['scale'])
    datasets = opt['datasets']
    dataset_opt = dict(datasets.get('test_1') or datasets['val'], phase='val', scale=scale)
    dataset = DATASET_REGISTRY.get(dataset_opt['type'])(dataset_opt)
    out = os.path.join('results', args.name, f'metrics_{dataset_opt["name"]}.csv')
    if os.path.exists(out):
        raise SystemExit(f'{out} exists: remove it to measure again')
    rows = []
    for item in dataset:
        lq = item['lq'].permute(1, 2, 0).numpy()
        up = torch.from_numpy(imresize(lq, scale)).permute(2, 0, 1).clamp(0, 1)
        image = os.path.splitext(os.path.basename(item['lq_path']))[0]
        metrics = image_metrics(tensor2img([up[None]]), tensor2img([item['gt'][None]]), opt['val']['metrics'])
        rows.append(dict(iter=args.name, image=image, **metrics))
    append_metrics_csv(out, rows)
    means = {k: round(sum(r[k] for r in rows) / len(rows), 4) for k in rows[0] if k not in ('iter', 'image')}
    print(f'{out}: {len(rows)} images, mean {means}')


if __name__ == '__main__':
    main()
