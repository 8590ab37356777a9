"""The adaptation study of docs/adapt.md: `basicsr adapt` of a one-camera DML model with k pairs of the other camera,
tested on that camera's unseen scenes, against MATLAB bicubic, the least-squares kernel of the same k pairs and the
unadapted model (RealSR V3 x4 crops: Canon and Nikon, scenes 001-035).

    # the curve against k (docs/adapt.md, Tables A1/A2)
    python scripts/adapt_study.py --source experiments/DML_RealSRcrops_x4_Canononly/models/net_g_4000.pth \
        --camera Nikon --ks 1 2 5 10 --pool 1 30 --test 31 35 --out results/adapt_study/canon_to_nikon
    # how the defaults were chosen: variants at k=5 on development scenes (no test scene)
    python scripts/adapt_study.py --source ... --camera Nikon --ks 5 --pool 1 20 --test 21 30 \
        --variant all:5e-5 --variant basis:1e-3 ... --iters 800 --val-freq 100 --out results/adapt_study/dev

Each run is `basicsr adapt` in its own process (JOBS at a time); the pairs of a run are the first k of one draw from
the pool with --seed (so the pairs of a smaller k are among those of a larger one), laid out as HR/ + LR/ links in
OUT/pairs_k<k>/. Writes OUT/study.yml (every number), OUT/study.md (the tables), OUT/least_squares_k<k>.pth (the
least-squares kernel of the k pairs as a DMLNet checkpoint, for Syn training) and, with several k, OUT/curve.png
(test PSNR against k).
"""
import argparse
import concurrent.futures
import math
import os
import random
import subprocess
import sys

import matplotlib
import torch

from dml_basicsr.archs import DMLNet
from dml_basicsr.archs.network_loading import load_dmlnet
from dml_basicsr.commands.adapt import DEFAULTS
from dml_basicsr.degradation import DMLDegradation
from dml_basicsr.degradation.camera_pairs import read_pair
from dml_basicsr.degradation.lr_fidelity import bicubic_degradation, least_squares_degradation, lr_fidelity
from dml_basicsr.utils.checkpoint import numbered_files
from dml_basicsr.utils.safe_yaml import dump_yaml

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402

WHOLE = (0.0, 1.0)


def scene_files(root, camera, number):
    folder = os.path.join(root, camera, 'Train', '4')
    stem = os.path.join(folder, f'{camera}_{number:03d}')
    return f'{stem}_HR.png', f'{stem}_LR4.png'


def camera_pairs(root, camera, numbers):
    return [read_pair(f'{camera}_{n:03d}', *scene_files(root, camera, n), scale=4, channels=1) for n in numbers]


def link_pairs(folder, root, camera, numbers):
    for kind in ('HR', 'LR'):
        os.makedirs(os.path.join(folder, kind), exist_ok=True)
    for n in numbers:
        for kind, path in zip(('HR', 'LR'), scene_files(root, camera, n)):
            link = os.path.join(folder, kind, f'{camera}_{n:03d}.png')
            if not os.path.lexists(link):
                os.symlink(os.path.abspath(path), link)


def parse_variant(text):
    """'TRAIN:LR[:gt=N][:aug=flip]' -> (train, lr, {adapt flag: value}) (the extras: --gt-size, --augment)."""
    train, lr, *extras = text.split(':')
    flags = {'gt': '--gt-size', 'aug': '--augment'}
    options = {}
    for extra in extras:
        key, _, value = extra.partition('=')
        if key not in flags or not value:
            raise SystemExit(f'--variant {text}: {extra!r} is not gt=N or aug=VALUE')
        options[flags[key]] = value
    return train, lr, options


def variant_name(train, lr, options):
    extras = ''.join(f'_{flag.lstrip("-").split("-")[-1]}{value}' for flag, value in options.items())
    return f'{train}_{lr}{extras}'


def adapt(args, run_dir, pairs_dir, train, lr, options):
    command = [sys.executable, '-m', 'dml_basicsr', 'adapt', '--checkpoint', args.source, '--pairs', pairs_dir,
               '--output', run_dir, '--iters', str(args.iters), '--val-freq', str(args.val_freq), '--lr', str(lr),
               '--train', train, '--seed', str(args.seed), '--device', 'cpu']
    for flag, value in options.items():
        command += [flag, value]
    if os.path.isfile(os.path.join(run_dir, 'adapt.yml')):
        return 0
    if os.path.isdir(run_dir):
        command.append('--auto_resume')
    with open(run_dir.rstrip('/') + '.log', 'w') as log:
        return subprocess.run(command, stdout=log, stderr=subprocess.STDOUT,
                              env=dict(os.environ, OMP_NUM_THREADS='1')).returncode


def kernel_checkpoint(kernel, scale, path):
    """Save one (K, K) kernel as a DMLNet checkpoint that applies exactly it at every pixel (so that `degradation:
    {checkpoint: ...}` trains SR on it): two identical basis kernels, the kernel normalised to sum 1, and constant
    weights of half its sum (the weight CNN's last convolution zero, its bias the logit of that half)."""
    gain = float(kernel.sum())
    if not 0 < gain < 2:
        raise ValueError(f'kernel sum {gain} cannot be a DMLNet gain')
    net = DMLNet(num_in_ch=1, num_basis=2, kernel_size=kernel.shape[-1], scale=scale)
    state = net.state_dict()
    state['basis'] = (kernel / gain).float().expand(2, -1, -1).clone()
    state['weight_net.conv_last.weight'].zero_()
    state['weight_net.conv_last.bias'].fill_(math.log(gain / 2 / (1 - gain / 2)))
    torch.save({'params': state}, path)


def checkpoint_curve(run_dir, test_items):
    """{iteration: test PSNR/SSIM} of every checkpoint of the run (iteration 0: the source)."""
    models = os.path.join(run_dir, 'experiments', 'adapt', 'models')
    curve = {}
    for iteration, path in numbered_files(models, r'net_g_(\d+)\.pth'):
        r = lr_fidelity(DMLDegradation(load_dmlnet(path), noise_sigma=0), test_items)
        curve[iteration] = dict(psnr=r['psnr'], ssim=r['ssim'])
    return curve


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--source', required=True, help='the one-camera DMLNet checkpoint')
    parser.add_argument('--camera', required=True, choices=('Canon', 'Nikon'), help='the new camera')
    parser.add_argument('--root', default='datasets/RealSR_V3_x4_crops')
    parser.add_argument('--ks', type=int, nargs='+', default=[1, 2, 5, 10])
    parser.add_argument('--pool', type=int, nargs=2, default=[1, 30], metavar=('FIRST', 'LAST'))
    parser.add_argument('--test', type=int, nargs=2, default=[31, 35], metavar=('FIRST', 'LAST'))
    parser.add_argument('--variant', action='append', metavar='TRAIN:LR[:gt=N][:aug=flip]',
                        help='what to train, the learning rate, and optionally the patch size and augmentation '
                             '(default: the command\'s defaults)')
    parser.add_argument('--iters', type=int, default=DEFAULTS['iterations'])
    parser.add_argument('--val-freq', type=int, default=DEFAULTS['val_freq'])
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--jobs', type=int, default=int(os.environ.get('JOBS', 2)))
    parser.add_argument('--out', required=True)
    args = parser.parse_args()
    torch.set_num_threads(1)
    default = f'{DEFAULTS["train"]}:{DEFAULTS["lr"]:g}'
    variants = [parse_variant(v) for v in (args.variant or [default])]
    os.makedirs(args.out, exist_ok=True)
    pool = list(range(args.pool[0], args.pool[1] + 1))
    order = random.Random(args.seed).sample(pool, len(pool))
    draws = {k: sorted(order[:k]) for k in args.ks}  # nested: the k pairs are among the next k's
    runs = []
    for k, numbers in draws.items():
        pairs_dir = os.path.join(args.out, f'pairs_k{k}')
        link_pairs(pairs_dir, args.root, args.camera, numbers)
        for train, lr, options in variants:
            name = variant_name(train, lr, options)
            runs.append((k, train, lr, os.path.join(args.out, f'run_k{k}_{name}'), pairs_dir, options))
    with concurrent.futures.ThreadPoolExecutor(args.jobs) as ex:
        codes = list(ex.map(lambda r: adapt(args, r[3], r[4], r[1], float(r[2]), r[5]), runs))
    for run, code in zip(runs, codes):
        if code:
            print(f'{run[3]}: basicsr adapt exited {code} (see {run[3]}.log)', file=sys.stderr)
    test_items = [(p, WHOLE) for p in camera_pairs(args.root, args.camera, range(args.test[0], args.test[1] + 1))]
    source = DMLDegradation(load_dmlnet(args.source), noise_sigma=0)
    fixed = dict(bicubic=lr_fidelity(bicubic_degradation(4), test_items),
                 unadapted=lr_fidelity(source, test_items))
    results = dict(source=args.source, camera=args.camera, pool=args.pool, test=args.test, seed=args.seed,
                   iters=args.iters, draws=draws, bicubic=fixed['bicubic'], unadapted=fixed['unadapted'], runs=[])
    for (k, train, lr, run_dir, _, options), code in zip(runs, codes):
        if code:
            continue
        k_items = [(p, WHOLE) for p in camera_pairs(args.root, args.camera, draws[k])]
        ls_degradation = least_squares_degradation(k_items, 4)
        least_squares = lr_fidelity(ls_degradation, test_items)
        kernel_checkpoint(ls_degradation.net.weight.detach().double(), 4,
                          os.path.join(args.out, f'least_squares_k{k}.pth'))
        adapted = lr_fidelity(DMLDegradation(load_dmlnet(os.path.join(run_dir, 'model.pth')), noise_sigma=0),
                              test_items)
        results['runs'].append(dict(k=k, train=train, lr=float(lr), options=options or None,
                                    least_squares=least_squares, adapted=adapted,
                                    curve=checkpoint_curve(run_dir, test_items), run=run_dir))
    with open(os.path.join(args.out, 'study.yml'), 'w') as f:
        dump_yaml(results, f, default_flow_style=None, width=120)
    text = study_tables(results)
    with open(os.path.join(args.out, 'study.md'), 'w') as f:
        f.write(text)
    print(text)
    if len(args.ks) > 1:
        plot_curve(results, os.path.join(args.out, 'curve.png'))


def study_tables(results):
    test = f'{results["camera"]} {results["test"][0]:03d}-{results["test"][1]:03d}'
    lines = [f'LR generation on {test} (Y, 7-pixel border), source {results["source"]}', '',
             '| k | pairs | what | lr | patches | MATLAB bicubic | least squares (k pairs) | unadapted | adapted (model.pth) | '
             'best checkpoint (iteration) |', '| ---: | --- | --- | ---: | --- | ---: | ---: | ---: | ---: | ---: |']
    for r in results['runs']:
        best = max(r['curve'].items(), key=lambda kv: kv[1]['psnr'])
        fmt = lambda m: f'{m["psnr"]:.2f} / {m["ssim"]:.4f}'  # noqa: E731
        options = dict(r.get('options') or {})
        patches = f'{options.get("--gt-size", "default")}, {options.get("--augment", "default")}'
        lines.append(f'| {r["k"]} | {", ".join(f"{n:03d}" for n in results["draws"][r["k"]])} | {r["train"]} | '
                     f'{r["lr"]:g} | {patches} | {fmt(results["bicubic"])} | {fmt(r["least_squares"])} | '
                     f'{fmt(results["unadapted"])} | {fmt(r["adapted"])} | {best[1]["psnr"]:.2f} ({best[0]}) |')
    return '\n'.join(lines) + '\n'


def plot_curve(results, path):
    runs = sorted(results['runs'], key=lambda r: r['k'])
    ks = [r['k'] for r in runs]
    fig, ax = plt.subplots(figsize=(5.2, 3.4), dpi=100)
    ax.plot(ks, [r['adapted']['psnr'] for r in runs], marker='o', label='adapted (basicsr adapt)')
    ax.plot(ks, [r['least_squares']['psnr'] for r in runs], marker='s', label='least-squares kernel of the k pairs')
    ax.axhline(results['unadapted']['psnr'], color='gray', linestyle='--', label='unadapted')
    ax.axhline(results['bicubic']['psnr'], color='gray', linestyle=':', label='MATLAB bicubic')
    ax.set_xscale('log')
    ax.minorticks_off()
    ax.set_xticks(ks)
    ax.set_xticklabels([str(k) for k in ks])
    ax.set_xlabel(f'pairs of the new camera ({results["camera"]})')
    ax.set_ylabel('PSNR of the LR (dB)')
    source = os.path.basename(os.path.dirname(os.path.dirname(os.path.abspath(results['source']))))
    ax.set_title(f'{source} adapted to {results["camera"]}\ntest: {results["camera"]} {results["test"][0]:03d}-'
                 f'{results["test"][1]:03d}, Y, 7-px border', fontsize=8)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)


if __name__ == '__main__':
    main()
