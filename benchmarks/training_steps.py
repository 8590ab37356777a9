"""Whole training steps: the DML step vs the bare weight network, precision variants, and ``basicsr train``.

Prints two Markdown tables:

1. one optimisation step (forward, L2 loss, backward, Adam) of DMLNet on (B, 1, P, P) patches, fp32 and
   the variants the issue asks about (bf16 autocast, channels_last), beside the bare weight network (the same
   encoder-decoder step without the basis-kernel operator); medians of interleaved repetitions;
2. ``basicsr train`` on an option file for a few iterations (a fresh process, data loading included):
   BasicSR's own average iteration and data times, against the bare DML step of the same batch.

    python benchmarks/training_steps.py                          # CPU, City100 option file if the data is there
    python benchmarks/training_steps.py --device cuda --batch 16 --patch 192
"""
import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
import torch.nn.functional as F
import yaml

from dml_basicsr import DMLNet
from timing import seconds

PROJECT_ROOT = Path(__file__).resolve().parents[1]
CITY100_OPTIONS = PROJECT_ROOT / 'options' / 'train_dml_city100.yml'
DEMO_OPTIONS = PROJECT_ROOT / 'options' / 'demo_dml_lens_x2.yml'
SHARED_CITY100 = PROJECT_ROOT.parent / 'shared' / 'data' / 'City100_NikonD5500'


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--batch', type=int, default=8)
    parser.add_argument('--patch', type=int, default=96, help='HR patch side')
    parser.add_argument('--scale', type=int, default=1)
    parser.add_argument('--steps', type=int, default=4, help='timed steps per variant')
    parser.add_argument('--options', default=None,
                        help='option file for the basicsr train row (default: the City100 one if its data is '
                        'present, else the embedded demo)')
    parser.add_argument('--train-iters', type=int, default=20, help='iterations of the basicsr train run (0: skip)')
    return parser.parse_args()


def step_variants(net, hr, lr, device):
    """{name: step function} of the DML step variants and the bare weight-network step."""
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-4)

    def step(forward, autocast=None, channels_last=False):
        x = hr.contiguous(memory_format=torch.channels_last) if channels_last else hr
        with torch.autocast(device.type, dtype=autocast or torch.float32, enabled=autocast is not None):
            out = forward(x)
        loss = F.mse_loss(out.float(), lr)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    def bare(x):  # the weight CNN's output reduced to an LR-shaped tensor, no basis kernels
        return net.weight_net(x).mean(1, keepdim=True)[:, :, ::net.scale, ::net.scale]

    low = torch.bfloat16 if device.type == 'cpu' else torch.float16
    return {
        'DML step, fp32': lambda: step(net),
        f'DML step, {str(low).split(".")[1]} autocast': lambda: step(net, autocast=low),
        'DML step, channels_last': lambda: step(net, channels_last=True),
        'bare weight network step, fp32': lambda: step(bare),
    }


def time_steps(variants, steps, device, rounds=2):
    """{name: median seconds}: each variant runs in blocks of one warm-up and ``steps`` timed steps
    (switching variants every step would time oneDNN's per-shape set-up), blocks alternating over ``rounds``."""
    times = {name: [] for name in variants}
    for _ in range(rounds):
        for name, fn in variants.items():
            for i in range(steps + 1):
                elapsed = seconds(fn, device)
                if i:
                    times[name].append(elapsed)
    return {name: statistics.median(t) for name, t in times.items()}


def _with_absolute_dataroots(options, folder):
    """A copy of the option file in ``folder`` whose relative ``dataroot*`` paths resolve from the project root."""
    with open(options) as f:
        opt = yaml.safe_load(f)
    for dataset in opt.get('datasets', {}).values():
        for key, value in dataset.items():
            if key.startswith('dataroot') and isinstance(value, str) and not os.path.isabs(value):
                dataset[key] = str(PROJECT_ROOT / value)
    path = Path(folder, Path(options).name)
    with open(path, 'w') as f:
        yaml.safe_dump(opt, f, sort_keys=False)
    return path


def basicsr_train_times(options, iters, batch, patch, device):
    """(iteration s, data s) that ``basicsr train`` logs as its running averages, in a fresh process."""
    with tempfile.TemporaryDirectory() as work:
        options = _with_absolute_dataroots(options, work)
        force = ['name=bench_steps', f'train:total_iter={iters}', 'val:val_freq=100000000',
                 f'logger:print_freq={iters}', 'logger:save_checkpoint_freq=100000000', 'logger:use_tb_logger=false',
                 f'datasets:train:batch_size_per_gpu={batch}', f'datasets:train:gt_size={patch}']
        env = dict(os.environ, PYTHONPATH=str(PROJECT_ROOT))
        if device.type == 'cpu':
            env['CUDA_VISIBLE_DEVICES'] = ''
        proc = subprocess.run([sys.executable, '-m', 'dml_basicsr', 'train', '-opt', str(options), '--force_yml',
                               *force], cwd=work, env=env, capture_output=True, text=True)
        logs = ''.join(p.read_text() for p in Path(work, 'experiments', 'bench_steps').glob('train_*.log'))
    found = re.findall(r'time \(data\): ([0-9.]+) \(([0-9.]+)\)', logs)
    if proc.returncode != 0 or not found:
        raise RuntimeError(f'basicsr train failed ({proc.returncode}): {proc.stderr[-2000:]}')
    return float(found[-1][0]), float(found[-1][1])


def main():
    args = parse_args()
    device = torch.device(args.device)
    torch.manual_seed(0)
    net = DMLNet(num_in_ch=1, scale=args.scale, basis_init='gaussian').to(device)
    hr = torch.rand(args.batch, 1, args.patch, args.patch, device=device)
    lr = torch.rand(args.batch, 1, -(-args.patch // args.scale), -(-args.patch // args.scale), device=device)
    med = time_steps(step_variants(net, hr, lr, device), args.steps, device)
    dml = med['DML step, fp32']
    print(f'device {device} ({torch.get_num_threads()} threads), batch {args.batch}, HR patch {args.patch}, '
          f'scale {args.scale}, M 8, K 15, median of 2 x {args.steps} steps')
    print('| step | ms | vs DML step, fp32 |')
    print('|---|---:|---:|')
    for name, t in med.items():
        print(f'| {name} | {t * 1e3:.1f} | {t / dml:.2f}x |')

    if args.train_iters:
        options = Path(args.options) if args.options else (CITY100_OPTIONS if SHARED_CITY100.is_dir()
                                                            else DEMO_OPTIONS)
        iter_s, data_s = basicsr_train_times(options, args.train_iters, args.batch, args.patch, device)
        print()
        print(f'`basicsr train -opt {options.relative_to(PROJECT_ROOT)}`, batch {args.batch}, patch {args.patch}, '
              f'{args.train_iters} iterations (BasicSR\'s running averages)')
        print('| | ms / iteration | vs DML step, fp32 |')
        print('|---|---:|---:|')
        print(f'| basicsr train iteration | {iter_s * 1e3:.1f} | {iter_s / dml:.2f}x |')
        print(f'| of which waiting for data | {data_s * 1e3:.1f} | {data_s / dml:.2f}x |')


if __name__ == '__main__':
    main()
