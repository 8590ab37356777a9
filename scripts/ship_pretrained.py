"""Copy a trained DML model into the package as a pretrained model, with its provenance and validation figures.

    .venv/bin/python scripts/ship_pretrained.py --name city100-nikon-x1 \
        --experiment experiments/DMLship_City100_x1 --dataset City100_val --command "basicsr train -opt ..."

writes ``dml_basicsr/degradation/pretrained/<name>.pth`` (the weights only) and its entry in ``models.yml``:
the file's sha256, the scale, the data and its licence, the command, the validation curve (mean PSNR/SSIM of
every validation) and the per-image figures of the last one, read from the experiment's metrics CSV; or, with
``--curve ITER=RESULTS_DIR`` (repeated), from the per-image CSVs of ``basicsr test`` runs of its checkpoints
(e.g. on whole images when the training validated on crops), the last one giving the per-image figures.
"""
import argparse
import csv
import os
import sys
from collections import defaultdict
from pathlib import Path

import torch
import yaml

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_ROOT))

from dml_basicsr.archs.network_loading import latest_weights, load_dmlnet  # noqa: E402
from dml_basicsr.utils.checkpoint import file_sha256  # noqa: E402

PRETRAINED = PROJECT_ROOT / 'dml_basicsr' / 'degradation' / 'pretrained'
CITY100 = ('City100 NikonD5500 scenes 001-030 (Chen et al., "Camera Lens Super-Resolution", CVPR 2019; '
           'repository ngchc/CameraSR)')
CITY100_LICENSE = 'MIT, Copyright (c) 2019 Chang Chen'


def validation_figures(csv_path):
    """(curve {iter: {metric: mean}}, {image: {metric: value}} of the last validation) of a metrics CSV."""
    by_iter = defaultdict(dict)
    with open(csv_path, newline='') as f:
        for row in csv.DictReader(f):
            values = {k: float(v) for k, v in row.items() if k not in ('iter', 'image')}
            by_iter[int(row['iter'])][row['image']] = values
    return summarise(by_iter)


def test_run_figures(curve_entries, dataset):
    """As :func:`validation_figures`, from ``ITER=RESULTS_DIR`` entries: each a ``basicsr test`` run's CSV."""
    by_iter = {}
    for entry in curve_entries:
        iteration, _, folder = entry.partition('=')
        with open(Path(folder) / f'metrics_{dataset}.csv', newline='') as f:
            by_iter[int(iteration)] = {row['image']: {k: float(v) for k, v in row.items() if k not in ('iter', 'image')}
                                       for row in csv.DictReader(f)}
    return summarise(by_iter)


def summarise(by_iter):
    """(curve {iter: {metric: mean}}, per-image figures of the last iteration) of {iter: {image: {metric: value}}}."""
    curve = {it: {m: round(sum(r[m] for r in rows.values()) / len(rows), 4) for m in next(iter(rows.values()))}
             for it, rows in sorted(by_iter.items())}
    last = by_iter[max(by_iter)]
    return curve, {image: {m: round(v, 4) for m, v in values.items()} for image, values in sorted(last.items())}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--name', required=True)
    parser.add_argument('--experiment', required=True, type=Path)
    parser.add_argument('--dataset', default='City100_val', help='validation set whose metrics CSV is recorded')
    parser.add_argument('--command', required=True, help='the command that trained it, as run')
    parser.add_argument('--data', default=CITY100)
    parser.add_argument('--license', default=CITY100_LICENSE)
    parser.add_argument('--notes', default='')
    parser.add_argument('--curve', action='append', default=[], metavar='ITER=RESULTS_DIR',
                        help="a basicsr test run of the checkpoint of iteration ITER (repeat; instead of the "
                             "experiment's own validation CSV)")
    args = parser.parse_args()

    source = latest_weights(str(args.experiment / 'models'))
    net = load_dmlnet(source)
    file_name = f'{args.name.replace("-", "_")}.pth'
    target = PRETRAINED / file_name
    PRETRAINED.mkdir(parents=True, exist_ok=True)
    torch.save({'params': {k: v.contiguous() for k, v in net.state_dict().items()}}, target)
    if args.curve:
        curve, per_image = test_run_figures(args.curve, args.dataset)
    else:
        curve, per_image = validation_figures(args.experiment / f'metrics_{args.dataset}.csv')
    manifest_path = PRETRAINED / 'models.yml'
    manifest = yaml.safe_load(manifest_path.read_text()) if manifest_path.exists() else {}
    manifest[args.name] = dict(
        file=file_name,
        sha256=file_sha256(target),
        bytes=os.path.getsize(target),
        scale=net.scale,
        num_in_ch=net.num_in_ch,
        num_basis=net.num_basis,
        kernel_size=net.kernel_size,
        data=args.data,
        license=args.license,
        command=args.command,
        notes=args.notes,
        validation=dict(dataset=args.dataset, curve=curve, last=dict(per_image=per_image)),
    )
    manifest_path.write_text(yaml.safe_dump(manifest, sort_keys=False, width=120))
    print(f'{target} ({os.path.getsize(target)} bytes) from {source}; last validation {curve[max(curve)]}')


if __name__ == '__main__':
    main()
