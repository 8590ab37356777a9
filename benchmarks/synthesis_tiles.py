"""Offline synthesis of one photo by tile size: what ``basicsr synthesize --tile`` costs, and what 'auto' picks.

    .venv/bin/python benchmarks/synthesis_tiles.py [--image PATH] [--model realsr-x4] [--device cpu] [--repeat 1]

Prints a Markdown table: seconds of ``degrade_tiled`` on the image for each tile (0 = the whole image at once, the
API's ``DMLDegradation.degrade_clean``), and the tile ``auto_tile`` chooses with this machine's free memory.
"""
import argparse
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from timing import seconds  # noqa: E402

from dml_basicsr.data.image_io import read_image  # noqa: E402
from dml_basicsr.degradation import DMLDegradation  # noqa: E402
from dml_basicsr.degradation.tiled import auto_tile, degrade_tiled  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--image', help='a photo (default: a made 1024x644 one)')
    p.add_argument('--model', default='realsr-x4')
    p.add_argument('--device', default='cpu')
    p.add_argument('--repeat', type=int, default=1)
    args = p.parse_args()
    device = torch.device(args.device)
    img = read_image(args.image) if args.image else np.random.default_rng(0).random((644, 1024, 3), np.float32)
    hr = torch.from_numpy(np.ascontiguousarray(img[:, :, ::-1].transpose(2, 0, 1)))[None].to(device)
    deg = DMLDegradation.pretrained(args.model)
    deg.degrade_clean(hr[:, :, :64, :64])  # warm-up
    h, w = hr.shape[-2:]
    print(f'| tile (HR px) | seconds, {w}x{h} x{deg.scale}, {args.device}, {torch.get_num_threads()} threads |')
    print('| ---: | ---: |')
    for tile in (0, 256, 512, 1024):
        best = min(seconds(lambda: degrade_tiled(deg, hr, tile, 64, device), device) for _ in range(args.repeat))
        print(f'| {tile or "0 (whole)"} | {best:.2f} |')
    print(f'\nauto_tile picks {auto_tile(deg.net, h, w, device)} (0: the whole image) with this machine\'s free memory')


if __name__ == '__main__':
    main()
