"""The real LR of one RealSR scene beside the LR that MATLAB bicubic, DML (realsr-x4, without noise and as Syn-DML
with AWGN sigma 5) and DSGAN make of its HR, for docs/results.md (Table 1 at x4). Each LR's Y PSNR against the real
LR (whole image, 7-pixel crop, Table 1's protocol) is printed.

    .venv/bin/python scripts/lr_comparison_picture.py --hr datasets/RealSR_V3_x4_crops/Canon/Train/4/Canon_031_HR.png \
        --dsgan model_zoo/realsr_x4_degradation/dsgan_realsrcrops_x4.pth --crop 40 40 48 \
        --output docs/pictures/realsr_x4_lr_comparison.png
"""
import argparse

import cv2
import numpy as np
import torch

import dml_basicsr  # noqa: F401 (first: the torchvision alias basicsr 1.4.2 needs to import)
from basicsr.metrics import calculate_psnr
from basicsr.utils import tensor2img
from dml_basicsr.data.pair_transforms import image_to_tensor
from dml_basicsr.degradation import DMLDegradation
from dml_basicsr.degradation.dsgan_degradation import DSGANSynthesis
from dml_basicsr.utils.atomic_write import write_bytes_atomic
from dml_basicsr.visualization.paper_figures import lr_comparison_figure


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--hr', required=True, help="a RealSR V3 x4 HR crop; its real LR is the '_LR4' beside it")
    parser.add_argument('--dsgan', required=True, help='the net_g of a DSGANModel training at x4')
    parser.add_argument('--crop', type=int, nargs=3, default=(40, 40, 48), metavar=('Y', 'X', 'SIZE'),
                        help='the LR crop shown (LR pixels)')
    parser.add_argument('--output', required=True)
    args = parser.parse_args()
    hr = cv2.imread(args.hr)
    real = cv2.imread(args.hr.replace('_HR.png', '_LR4.png'))
    hr_tensor = image_to_tensor(hr.astype(np.float32) / 255.)[None]
    degradations = [('bicubic /4', DMLDegradation.fixed_kernel(kernel='bicubic', scale=4, noise_sigma=0)),
                    ('DML, no noise', DMLDegradation.pretrained('realsr-x4', noise_sigma=0)),
                    ('Syn-DML (AWGN 5)', DMLDegradation.pretrained('realsr-x4', noise_sigma=5.0, seed=0)),
                    ('DSGAN', DSGANSynthesis.from_checkpoint(args.dsgan, 4))]
    synthetic = []
    for name, deg in degradations:
        with torch.no_grad():
            lr = tensor2img(deg(hr_tensor)[0])
        print(f'{name}: {calculate_psnr(lr, real, crop_border=7, test_y_channel=True):.2f} dB (Y, vs real LR)')
        synthetic.append((name, lr))
    figure = lr_comparison_figure(synthetic, hr, real, tuple(args.crop))
    write_bytes_atomic(args.output, cv2.imencode('.png', figure)[1].tobytes())
    print(f'written: {args.output}')


if __name__ == '__main__':
    main()
