"""How close a degradation's LR comes to a camera's real LR: Table 1's protocol (Y, 8-bit, a 7-pixel LR border left
out), on whole pairs or on a band of columns of them; and the closed-form reference, the least-squares kernel.

    rows = lr_fidelity(DMLDegradation(net, noise_sigma=0), [(pair, (0.0, 1.0))])
    rows['psnr'], rows['ssim'], rows['images']   # the means, and [{image, psnr, ssim}]
"""
import torch
from basicsr.utils import tensor2img

from dml_basicsr.archs import FixedKernelNet, UniformKernelNet
from dml_basicsr.data.adaptation_pairs_dataset import column_slice
from dml_basicsr.models.per_image_metrics import image_metrics
from dml_basicsr.ops import rgb_to_y
from dml_basicsr.ops.kernel_fit import KernelFit
from .dml_degradation import DMLDegradation

LR_BORDER = 7
METRICS = {'psnr': dict(type='calculate_psnr', crop_border=LR_BORDER, test_y_channel=True),
           'ssim': dict(type='calculate_ssim', crop_border=LR_BORDER, test_y_channel=True)}


def lr_band(lr, columns):
    """The columns (fractions ``columns``) of an LR (..., h, w)."""
    return lr[..., column_slice(lr.shape[-1], columns)]


def hr_band(hr, columns, scale):
    """The HR columns of the LR band ``columns``: s times its LR columns."""
    cols = column_slice(hr.shape[-1] // scale, columns)
    return hr[..., cols.start * scale:cols.stop * scale]


def lr_fidelity(degradation, items):
    """Mean PSNR/SSIM of ``degradation``'s LR of each HR band against the real LR band, over ``items``
    ``[(pair, columns)]`` (as DMLModel validates an AdaptationPairsDataset with these columns); returns
    {'psnr', 'ssim', 'images': [{image, psnr, ssim}]}."""
    images = []
    with torch.no_grad():
        for pair, columns in items:
            fake = degradation(hr_band(pair.hr, columns, degradation.scale))
            real = lr_band(pair.lr, columns)
            row = image_metrics(tensor2img([fake]), tensor2img([real]), METRICS)
            images.append(dict(image=pair.name, **{k: round(v, 4) for k, v in row.items()}))
    return mean_fidelity(images)


def mean_fidelity(images):
    """{'psnr', 'ssim', 'images'} of the per-image rows ``images`` [{image, psnr, ssim}] (e.g. pooled from the
    folds of a leave-one-out)."""
    return dict(**{k: round(sum(r[k] for r in images) / len(images), 4) for k in METRICS}, images=images)


def _luma(x):
    return x if x.shape[1] == 1 else rgb_to_y(x)


def least_squares_degradation(items, scale, kernel_size=15):
    """A noise-free degradation with the least-squares ``kernel_size`` kernel of the bands ``items``
    ``[(pair, columns)]`` (fitted on Y in closed form, applied to every channel)."""
    fit = KernelFit(kernel_size, scale)
    for pair, columns in items:
        fit.add(_luma(hr_band(pair.hr, columns, scale)), _luma(lr_band(pair.lr, columns)))
    kernel, _ = fit.solve()
    net = UniformKernelNet(kernel_size=kernel_size, scale=scale)
    with torch.no_grad():
        net.weight.copy_(kernel.float())
    return DMLDegradation(net, noise_sigma=0)


def bicubic_degradation(scale):
    """MATLAB's bicubic /s (antialiased), noise-free: the degradation most SR work assumes."""
    return DMLDegradation(FixedKernelNet(scale=scale, kernel='bicubic'), noise_sigma=0)
