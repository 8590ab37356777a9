"""Train a small SR network in plain PyTorch on photographs degraded online by a learned DML model.

    .venv/bin/python examples/train_plain_pytorch.py --out /tmp/dml_plain [--pretrained city100-nikon-x2 |
        --checkpoint my_camera_x4/model.pth] [--iters 400] [--device cpu]

Each step crops HR patches from the photographs shipped with scikit-image (dml_basicsr.data.embedded), makes
their LR with a DML model plus AWGN (DMLDegradation, on the batch's device; default the shipped model of a Nikon
D5500 zoom lens at x2, or any shipped name, or your own checkpoint such as basicsr adapt's OUT/model.pth) and trains
a 6-layer VDSR on the pair: no BasicSR trainer. At the end it prints the PSNR of the network and of bicubic on a
held-out photograph degraded the same way, and saves the weights to <out>/vdsr_x<scale>.pth.
"""
import argparse
import math
import os
import sys

import torch
import torch.nn.functional as F

from dml_basicsr import DMLDegradation
from dml_basicsr.archs import VDSR
from dml_basicsr.data.embedded import load_embedded

TRAIN_PHOTOS = ('astronaut', 'brick', 'camera', 'chelsea', 'grass', 'gravel', 'rocket')
HELD_OUT = 'coffee'


def photo(name, device):
    """A shipped photograph as a (1, 3, H, W) RGB tensor in [0, 1] (load_embedded gives BGR HWC)."""
    return torch.from_numpy(load_embedded(name)[:, :, ::-1].copy()).permute(2, 0, 1).unsqueeze(0).to(device)


def random_crops(photos, batch_size, patch, generator):
    """(batch_size, 3, patch, patch) crops at random places of randomly chosen photos."""
    crops = []
    for _ in range(batch_size):
        img = photos[int(torch.randint(len(photos), (1,), generator=generator))]
        top = int(torch.randint(img.shape[-2] - patch + 1, (1,), generator=generator))
        left = int(torch.randint(img.shape[-1] - patch + 1, (1,), generator=generator))
        crops.append(img[..., top:top + patch, left:left + patch])
    return torch.cat(crops)


def psnr(output, target):
    return float(10 * torch.log10(1 / F.mse_loss(output.clamp(0, 1), target)))


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--out', required=True, help='folder for the trained weights (the only thing written)')
    source = parser.add_mutually_exclusive_group()
    source.add_argument('--pretrained', default='city100-nikon-x2', help='a shipped DML model (default: %(default)s)')
    source.add_argument('--checkpoint', help='a DMLNet checkpoint of your own (e.g. basicsr adapt\'s OUT/model.pth)')
    parser.add_argument('--iters', type=int, default=400)
    parser.add_argument('--batch-size', type=int, default=8)
    parser.add_argument('--patch', type=int, default=48, help='HR patch side')
    parser.add_argument('--lr', type=float, default=1e-3)
    parser.add_argument('--noise-sigma', type=float, default=5.0, help='AWGN sigma, 0-255 scale')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args(argv)
    for name, value, minimum in (('--iters', args.iters, 1), ('--batch-size', args.batch_size, 1),
                                 ('--patch', args.patch, 2), ('--seed', args.seed, 0)):
        if value < minimum:
            parser.error(f'{name} must be >= {minimum}, got {value}')
    if not math.isfinite(args.lr) or args.lr <= 0:
        parser.error(f'--lr must be a finite number > 0, got {args.lr}')
    if not math.isfinite(args.noise_sigma) or args.noise_sigma < 0:
        parser.error(f'--noise-sigma must be a finite number >= 0, got {args.noise_sigma}')
    return args


def main(argv=None):
    args = parse_args(argv)
    torch.manual_seed(args.seed)
    # The learned degradation, moved to the batch's device on the first call.
    if args.checkpoint:
        degradation = DMLDegradation.from_checkpoint(args.checkpoint, noise_sigma=args.noise_sigma, seed=args.seed)
    else:
        degradation = DMLDegradation.pretrained(args.pretrained, noise_sigma=args.noise_sigma, seed=args.seed)
    if args.patch % degradation.scale:
        print(f'train_plain_pytorch.py: error: --patch must be a multiple of the model\'s scale {degradation.scale}, '
              f'got {args.patch}', file=sys.stderr)
        raise SystemExit(2)
    net = VDSR(num_in_ch=3, num_out_ch=3, num_feat=32, num_conv=6, upscale=degradation.scale).to(args.device)
    optimizer = torch.optim.Adam(net.parameters(), lr=args.lr)
    photos = [photo(name, args.device) for name in TRAIN_PHOTOS]
    generator = torch.Generator().manual_seed(args.seed)
    for it in range(1, args.iters + 1):
        hr = random_crops(photos, args.batch_size, args.patch, generator)
        lr = degradation(hr)  # (B, 3, patch, patch) -> (B, 3, patch / s, patch / s), no gradient
        loss = F.l1_loss(net(lr), hr)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if it % 50 == 0 or it == args.iters:
            print(f'iter {it:5d}  l1 {loss.item():.4f}', flush=True)

    side = 256 // degradation.scale * degradation.scale
    hr = photo(HELD_OUT, args.device)[..., :side, :side]
    lr = degradation(hr)
    with torch.no_grad():
        sr_psnr = psnr(net(lr), hr)
    bicubic_psnr = psnr(F.interpolate(lr, scale_factor=degradation.scale, mode='bicubic', align_corners=False), hr)
    print(f'held-out {HELD_OUT} ({side}x{side}, same DML degradation): PSNR network {sr_psnr:.2f} dB, '
          f'bicubic {bicubic_psnr:.2f} dB')
    os.makedirs(args.out, exist_ok=True)
    torch.save(net.state_dict(), os.path.join(args.out, f'vdsr_x{degradation.scale}.pth'))
    return {'psnr': sr_psnr, 'psnr_bicubic': bicubic_psnr, 'loss': loss.item()}


if __name__ == '__main__':
    main()
