"""The fitted noise of the shipped DML models, and how well it matches the real LR noise (docs/noise.md).

    python scripts/noise_fit_results.py --fit       # fit the three shipped models on their training pairs (Y and
                                                    # RGB) and write the noise: entries of pretrained/models.yml
    python scripts/noise_fit_results.py             # measure on the validation pairs: docs/pictures/noise_level_*.png

Run from the project root with the real data in datasets/ (bash scripts/link_datasets.sh links it; see docs/datasets.md). Inference only (CPU is fine).

The measure, per model on its validation pairs (City100 031-040 at x1 with city100-nikon-x1; RealSR crops 031-035 of
both cameras at x4 with realsr-x4), RGB: the noise-level function (binned robust std of the high-passed residual on
flat pixels against the clean DML LR intensity, 0-255, per channel; :func:`dml_basicsr.ops.noise_model.
noise_level_function`) of the real residual ``real LR - DML(HR)`` and of the synthetic ``DML(HR) + noise - DML(HR)``
(clamped to [0, 1], not rounded: as in training) for AWGN sigma 5 and for the fitted noise (seed 0); the gap is the
mean absolute difference of the curves over the bins and channels where both have >= 500 pixels.
"""
import argparse
import math
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from dml_basicsr.commands.prepare import build_source  # noqa: E402
from dml_basicsr.degradation import DMLDegradation  # noqa: E402
from dml_basicsr.degradation.noise_fit import MODEL, dataset_pairs, fit_noise, residual_pairs  # noqa: E402
from dml_basicsr.degradation.pretrained_models import MANIFEST, _folder, pretrained_path  # noqa: E402
from dml_basicsr.ops.frequency_split import box_highpass  # noqa: E402
from dml_basicsr.ops.noise_model import (flat_mask, highpass_gain, lag1_autocorrelation,  # noqa: E402
                                         noise_level_function)
from dml_basicsr.utils.options import load_options  # noqa: E402
from dml_basicsr.utils.safe_yaml import dump_yaml, read_yaml  # noqa: E402
from dml_basicsr.utils.output_folder import OutputFolder  # noqa: E402
from dml_basicsr.visualization.noise_plots import CHANNEL_NAMES, line_plot_panels  # noqa: E402

CITY100 = 'options/train_dml_city100.yml'
REALSR = 'options/train_dml_realsr_crops_x4.yml'
# Each shipped model: its training option file and the --force_yml that made its pairs (models.yml's command).
TRAINING = {
    'city100-nikon-x1': (CITY100, []),
    'city100-nikon-x2': (CITY100, ['scale=2', 'datasets:train:lr_downscale=2']),
    'realsr-x4': (REALSR, []),
}
VALIDATION = {'city100-nikon-x1': CITY100, 'realsr-x4': REALSR}
COLOR_FORCE = {'y': 'datasets:{key}:color=y', 'rgb': 'datasets:{key}:color=~'}
MIN_COUNT = 500


def pairs_of(opt_path, key, force_yml):
    opt = load_options(opt_path, force_yml)
    return dataset_pairs(build_source(opt, key, opt_path, phase='val', command='noise_fit_results'))


def fit_noise_command(name, opt_path, force):
    """The ``basicsr fit-noise`` command that makes the same fit (the Y one; the RGB one with color=~)."""
    force_yml = ' '.join(force + [COLOR_FORCE['y'].format(key='train')])
    return (f'basicsr fit-noise -opt {opt_path} --checkpoint {name} --output DIR --force_yml {force_yml} '
            '(RGB: datasets:train:color=~)')


def fit_shipped():
    """Fit each shipped model on its training pairs (Y and RGB) and write the noise: entries into models.yml."""
    path = str(_folder() / MANIFEST)
    manifest = read_yaml(path)
    for name, (opt_path, force) in TRAINING.items():
        deg = DMLDegradation.from_checkpoint(pretrained_path(name), noise_sigma=0)
        noise = dict(model=MODEL, scale='[0, 1]: var = a * I + b, I the clean LR intensity in [0, 1]')
        for color in ('y', 'rgb'):
            force_yml = force + [COLOR_FORCE[color].format(key='train')]
            entry = fit_noise(deg, pairs_of(opt_path, 'train', force_yml))
            entry = {k: v for k, v in entry.items() if k not in ('bins',)}
            entry['data'] = f'{opt_path} datasets.train, whole images, --force_yml {" ".join(force_yml)}'
            noise[color] = entry
            print(f'{name} {color}: a={entry["a"]} b={entry["b"]} lag1={entry["lag1"]} '
                  f'filter={"yes" if entry["filter_v"] else "no"}', flush=True)
        noise['command'] = fit_noise_command(name, opt_path, force)
        manifest[name]['noise'] = noise
    with open(path, 'w', encoding='utf-8') as f:
        f.write(dump_yaml(manifest, width=120))
    print(f'wrote the noise: entries of {path}')


def curves(cleans, residuals, masks, gain):
    return noise_level_function(cleans, residuals, masks, size=5, gain=gain, min_count=MIN_COUNT)


def gap(real, syn):
    """Mean |std_real - std_syn| on the 0-255 scale over the bins and channels where both have enough pixels."""
    diffs = [abs(r - s) * 255. for (_, rs, rc), (_, ss, sc) in zip(real, syn) for r, s, n, m in zip(rs, ss, rc, sc)
             if n >= MIN_COUNT and m >= MIN_COUNT and not (math.isnan(r) or math.isnan(s))]
    return sum(diffs) / len(diffs) if diffs else math.nan


def lag1(residuals, masks):
    """(v, h) lag-1 autocorrelation of the high-passed residual over flat pixels, mean over images and channels."""
    vs, hs, ns = [], [], []
    for r, m in zip(residuals, masks):
        v, h = lag1_autocorrelation(box_highpass(r.float(), 5, border='reflect'), m)
        vs.append(float(torch.nan_to_num(v).mean()))
        hs.append(float(torch.nan_to_num(h).mean()))
        ns.append(float(m.sum()))
    total = sum(ns) or 1
    return sum(v * n for v, n in zip(vs, ns)) / total, sum(h * n for h, n in zip(hs, ns)) / total


def measure(name, opt_path, color='rgb', out_dir='docs/pictures'):
    """The noise-level functions of the real residual and of AWGN / fitted synthetic noise on the validation pairs;
    writes the picture, returns a dict of the numbers."""
    deg = DMLDegradation.pretrained(name, noise_sigma=0)
    cleans, residuals, masks = [], [], []
    with torch.no_grad():
        for _, clean, residual in residual_pairs(deg, pairs_of(opt_path, 'val', [COLOR_FORCE[color].format(key='val')])):
            cleans.append(clean)
            residuals.append(residual)
            masks.append(flat_mask(clean))
    white = highpass_gain(5)
    real = curves(cleans, residuals, masks, white)
    results = dict(model=name, color=color, pairs=len(cleans), lag1_real=lag1(residuals, masks))
    series = {}
    for label, make in (('AWGN sigma 5', lambda: DMLDegradation.pretrained(name, seed=0)),
                        ('fitted', lambda: DMLDegradation.pretrained(name, noise='fitted', seed=0))):
        syn_deg = make()
        syn = [syn_deg.add_noise(clean) - clean for clean in cleans]
        curve = curves(cleans, syn, masks, white)
        series[label] = curve
        results[f'gap_{label}'] = gap(real, curve)
        results[f'lag1_{label}'] = lag1(syn, masks)
    panels = []
    for ch, channel in enumerate(CHANNEL_NAMES[color]):
        panel = [('real LR residual', [x * 255 for x in real[ch][0]], [s * 255 for s in real[ch][1]], 'points')]
        for label, curve in series.items():
            panel.append((f'synthetic, {label} (gap {results["gap_" + label]:.2f})', [x * 255 for x in curve[ch][0]],
                          [s * 255 for s in curve[ch][1]], 'line'))
        panels.append((f'channel {channel}', panel))
    picture = line_plot_panels(panels, f'{name}: validation pairs ({len(cleans)}), {color.upper()}')
    OutputFolder(out_dir).write_png(f'noise_level_{name}.png', picture)
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--fit', action='store_true', help='fit the shipped models and write models.yml first')
    parser.add_argument('--out-dir', default='docs/pictures')
    args = parser.parse_args()
    torch.manual_seed(0)
    if args.fit:
        fit_shipped()
    print('| model | validation pairs | gap AWGN sigma 5 | gap fitted | lag-1 (v, h) real | AWGN | fitted |')
    print('|---|---|---|---|---|---|---|')
    for name, opt_path in VALIDATION.items():
        r = measure(name, opt_path, out_dir=args.out_dir)
        fmt = lambda pair: f'{pair[0]:.2f}, {pair[1]:.2f}'  # noqa: E731
        print(f'| {name} | {r["pairs"]} | {r["gap_AWGN sigma 5"]:.2f} | {r["gap_fitted"]:.2f} | '
              f'{fmt(r["lag1_real"])} | {fmt(r["lag1_AWGN sigma 5"])} | {fmt(r["lag1_fitted"])} |', flush=True)


if __name__ == '__main__':
    main()
