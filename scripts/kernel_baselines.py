"""Closed-form rows of Table 1 on real pairs: the least-squares K x K kernel fitted to the training scenes (one
kernel for every pixel: the best any spatially invariant linear blur can do on them) and the Gaussian sigma that
fits them best. Fitted on the Y channel of whole images as the datasets read them (City100: scale 1, or a real x2
with lr_downscale 2; RealSR V3: x4, both cameras), away from an 8-pixel LR border; written as checkpoints that
`basicsr test` evaluates.

    python scripts/kernel_baselines.py --scale 1 --out experiments/City100_KernelFit_x1
    python scripts/kernel_baselines.py --dataset realsr --dataroot datasets/RealSR_V3_x4_crops --scale 4 \
        --out experiments/RealSRx4_KernelFit

writes OUT/net_g_leastsquares.pth (a UniformKernelNet checkpoint: network_g type UniformKernelNet, kernel_size K)
and OUT/fit.yml (the training-set PSNR of the least-squares kernel and of every Gaussian sigma tried, the best one).
"""
import argparse
import os

import torch
import yaml

from dml_basicsr.data import City100Dataset, RealSRDataset
from dml_basicsr.ops import gaussian_kernel
from dml_basicsr.ops.kernels import downsampling_offset
from dml_basicsr.ops.kernel_fit import FIT_BORDER, KernelFit

BORDER = FIT_BORDER  # LR pixels left out of the fit (reflect padding at the image edge)


DATASETS = {'city100': (City100Dataset, lambda scale: dict(lr_downscale=scale)),
            'realsr': (RealSRDataset, lambda scale: dict(split='Train', lr_grid='lr'))}
DEFAULT_ROOTS = {'city100': 'datasets/City100_NikonD5500', 'realsr': 'datasets/RealSR_V3_x4_crops'}


def training_pairs(dataset_kind, dataroot, first, last, scale):
    """(HR, LR) of the scenes as the dataset gives them to validation: whole aligned images, Y, (1, 1, H, W)."""
    cls, own_options = DATASETS[dataset_kind]
    dataset = cls(dict(name='fit', type=cls.__name__, dataroot=dataroot, id_range=[first, last], color='y',
                       phase='val', scale=scale, **own_options(scale)))
    for index in range(len(dataset)):
        item = dataset[index]
        yield item['gt'][None].double(), item['lq'][None].double()


def fit(dataset_kind, dataroot, first, last, scale, kernel_size, sigmas):
    """(least-squares kernel, its MSE, the MSE of each Gaussian sigma) on the training scenes."""
    # Gaussians centred on the LR pixel's centre, as FixedKernelNet (the baseline that `basicsr test` evaluates).
    offset = downsampling_offset(scale)
    gaussians = torch.stack([gaussian_kernel(kernel_size, s, dtype=torch.float64, offset=offset).reshape(-1)
                             for s in sigmas])
    kernel_fit = KernelFit(kernel_size, scale, BORDER)
    sq_err = torch.zeros(len(sigmas), dtype=torch.float64)
    for hr, lr in training_pairs(dataset_kind, dataroot, first, last, scale):
        design, target = kernel_fit.add(hr, lr)
        sq_err += ((gaussians @ design - target) ** 2).sum(1)
    kernel, kernel_mse = kernel_fit.solve()
    return kernel, torch.tensor(kernel_mse), sq_err / kernel_fit.count


def psnr(mse):
    return float(10 * torch.log10(1 / mse))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--dataset', choices=sorted(DATASETS), default='city100')
    parser.add_argument('--dataroot', help='default: datasets/<the dataset\'s folder>')
    parser.add_argument('--ids', type=int, nargs=2, default=[1, 30], metavar=('FIRST', 'LAST'))
    parser.add_argument('--scale', type=int, default=1,
                        help='City100: 1 (LR on the HR grid) or 2 (lr_downscale 2); RealSR: its scale (4)')
    parser.add_argument('--kernel-size', type=int, default=15)
    parser.add_argument('--out', required=True)
    args = parser.parse_args()
    sigmas = [round(0.5 + 0.1 * i, 1) for i in range(21 if args.scale < 4 else 36)]  # 0.5 .. 2.5 (x4: .. 4.0)
    dataroot = args.dataroot or DEFAULT_ROOTS[args.dataset]
    kernel, kernel_mse, gaussian_mse = fit(args.dataset, dataroot, *args.ids, args.scale, args.kernel_size, sigmas)
    best = min(range(len(sigmas)), key=lambda i: float(gaussian_mse[i]))
    os.makedirs(args.out, exist_ok=True)
    torch.save({'params': {'weight': kernel.float()}}, os.path.join(args.out, 'net_g_leastsquares.pth'))
    record = dict(dataset=args.dataset, scenes=list(args.ids), scale=args.scale, kernel_size=args.kernel_size, border=BORDER,
                  least_squares=dict(train_psnr=round(psnr(kernel_mse), 3),
                                     kernel_sum=round(float(kernel.sum()), 4)),
                  gaussian=dict(best_sigma=sigmas[best], train_psnr=round(psnr(gaussian_mse[best]), 3),
                                sweep={s: round(psnr(m), 3) for s, m in zip(sigmas, gaussian_mse)}))
    with open(os.path.join(args.out, 'fit.yml'), 'w') as f:
        yaml.safe_dump(record, f, sort_keys=False)
    print(yaml.safe_dump(record, sort_keys=False))


if __name__ == '__main__':
    main()
