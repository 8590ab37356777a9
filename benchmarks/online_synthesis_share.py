"""Share of online DML synthesis in a VDSR training step.

Times, in one run and interleaved, (a) a VDSR training step on precomputed LR (the reference),
(b) the same step with the LR synthesised online by DMLDegradation first, and prints a table.
Target: synthesis share = (b - a) / b under 10%.

    python benchmarks/online_synthesis_share.py                 # CPU-sized default
    python benchmarks/online_synthesis_share.py --device cuda --batch 16 --patch 192   # paper setting
"""
import argparse
import statistics

import torch

import dml_basicsr  # noqa: F401
from dml_basicsr import DMLDegradation, DMLNet
from dml_basicsr.archs import VDSR
from timing import seconds


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--batch', type=int, default=4)
    parser.add_argument('--patch', type=int, default=96, help='HR patch side')
    parser.add_argument('--scale', type=int, default=4)
    parser.add_argument('--steps', type=int, default=5, help='timed steps per variant')
    parser.add_argument('--warmup', type=int, default=2)
    return parser.parse_args()


def main():
    args = parse_args()
    device = torch.device(args.device)
    torch.manual_seed(0)
    deg = DMLDegradation(DMLNet(num_in_ch=1, scale=args.scale), noise_sigma=5.0, seed=0).to(device)
    vdsr = VDSR(num_in_ch=1, num_out_ch=1, upscale=args.scale).to(device)
    optimizer = torch.optim.Adam(vdsr.parameters(), lr=1e-4)
    hr = torch.rand(args.batch, 1, args.patch, args.patch, device=device)
    precomputed_lr = deg(hr)

    def train_step(lr):
        loss = torch.nn.functional.mse_loss(vdsr(lr), hr)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    variants = {'precomputed LR (reference)': lambda: train_step(precomputed_lr),
                'online DML synthesis + step': lambda: train_step(deg(hr)),
                'DML synthesis alone': lambda: deg(hr)}
    times = {name: [] for name in variants}
    for i in range(args.warmup + args.steps):
        for name, fn in variants.items():  # interleaved, so drifts hit every variant alike
            elapsed = seconds(fn, device)
            if i >= args.warmup:
                times[name].append(elapsed)

    med = {name: statistics.median(t) for name, t in times.items()}
    ref, online = med['precomputed LR (reference)'], med['online DML synthesis + step']
    print(f'device {device}, batch {args.batch}, HR patch {args.patch}, scale {args.scale}, '
          f'median of {args.steps} steps')
    print('| variant | ms / step |')
    print('|---|---|')
    for name, t in med.items():
        print(f'| {name} | {t * 1e3:.1f} |')
    print(f'| synthesis share of the online step, (online - reference) / online | {100 * (online - ref) / online:.1f}% |')


if __name__ == '__main__':
    main()
