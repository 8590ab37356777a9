"""Evaluate trained City100 experiments on the WHOLE images of the held-out scenes (Y, 7-pixel crop), with
`basicsr test`: whatever data their validation used during training (e.g. central crops), the test reads
DATAROOT's full images. For a degradation model (DMLModel) the metrics compare its synthetic LR with the real
LR; for an SR model (OnlineSynthesisSRModel) its SR of the real LR with the HR, LPIPS included.

    python scripts/city100_evaluate.py experiments/City100GPU_DML_x1 [more experiment folders]
        [--checkpoint net_g_latest.pth] [--dataroot datasets/City100_NikonD5500] [--ids 31 40] [--prefix Full_]

Each writes results/<prefix><experiment name>/ (per-image CSV for `basicsr report`) and its test option file.
"""
import argparse
import glob
import os
import subprocess
import sys

import yaml

from dml_basicsr.utils.options import load_options, recorded_overrides

METRICS = dict(psnr=dict(type='calculate_psnr', crop_border=7, test_y_channel=True),
               ssim=dict(type='calculate_ssim', crop_border=7, test_y_channel=True))
LPIPS = dict(type='calculate_lpips', crop_border=7, better='lower')


def trained_options(experiment):
    """The option file an experiment was trained with, its recorded --force_yml entries applied."""
    copies = glob.glob(os.path.join(experiment, '*.yml'))
    if len(copies) != 1:
        raise SystemExit(f'{experiment}: expected one option file copy (*.yml), found {len(copies)}')
    return load_options(copies[0], recorded_overrides(copies[0]))


def checkpoint_path(experiment, checkpoint):
    models = os.path.join(experiment, 'models')
    if checkpoint != 'last':
        return os.path.join(models, checkpoint)
    if os.path.isfile(os.path.join(models, 'net_g_latest.pth')):
        return os.path.join(models, 'net_g_latest.pth')
    numbered = glob.glob(os.path.join(models, 'net_g_[0-9]*.pth'))
    if not numbered:
        raise SystemExit(f'{models}: no net_g_*.pth')
    return max(numbered, key=lambda p: int(os.path.basename(p)[6:-4]))


def test_options(experiment, checkpoint, dataroot, ids, name):
    opt = trained_options(experiment)
    scale = int(opt.get('scale', 1))
    is_sr = opt['model_type'] != 'DMLModel'
    dataset = dict(name='City100_val', type='City100Dataset', dataroot=dataroot, id_range=list(ids), color='y')
    if opt['model_type'] == 'DMLModel' and scale > 1:
        dataset['lr_downscale'] = scale
    metrics = dict(METRICS, lpips=LPIPS) if is_sr else dict(METRICS)
    return dict(name=name, model_type=opt['model_type'], scale=scale, num_gpu='auto', manual_seed=0,
                datasets=dict(test_1=dataset), network_g=dict(opt['network_g']),
                path=dict(pretrain_network_g=checkpoint_path(experiment, checkpoint), strict_load_g=True),
                val=dict(save_img=False, metrics=metrics))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('experiments', nargs='+')
    parser.add_argument('--checkpoint', default='last',
                        help="file under <experiment>/models/; 'last': net_g_latest.pth, else the highest net_g_N.pth")
    parser.add_argument('--dataroot', default='datasets/City100_NikonD5500')
    parser.add_argument('--ids', type=int, nargs=2, default=[31, 40])
    parser.add_argument('--prefix', default='Full_')
    parser.add_argument('--again', action='store_true', help='test runs whose results folder exists too')
    args = parser.parse_args()
    os.makedirs('results', exist_ok=True)
    for experiment in args.experiments:
        experiment = experiment.rstrip('/')
        name = args.prefix + os.path.basename(experiment)
        if os.path.isfile(os.path.join('results', name, 'metrics_City100_val.csv')) and not args.again:
            print(f'results/{name}: already tested, skipped (--again tests it anew)')
            continue
        opt_path = os.path.join('results', f'{name}.yml')
        with open(opt_path, 'w') as f:
            yaml.safe_dump(test_options(experiment, args.checkpoint, args.dataroot, args.ids, name), f,
                           sort_keys=False)
        basicsr = [sys.executable, '-m', 'dml_basicsr', 'test', '-opt', opt_path]
        if subprocess.call(basicsr) != 0:
            raise SystemExit(f'{experiment}: basicsr test failed ({" ".join(basicsr)})')


if __name__ == '__main__':
    main()
