"""Low and high frequencies of an image by a box filter: what DSGAN's losses and discriminator split (Fritsche et al.,
ICCVW 2019) and the high-pass the noise fit measures the residual's noise on."""
import torch.nn.functional as F

BORDERS = ('inside', 'reflect')


def box_lowpass(x, size=5, border='inside'):
    """(B, C, H, W) -> (B, C, H, W): the mean over the ``size`` x ``size`` window around each pixel. ``border``:
    'inside' counts only the pixels inside the image (DSGAN's); 'reflect' pads by reflection (the noise fit's)."""
    if border == 'inside':
        return F.avg_pool2d(x, size, stride=1, padding=size // 2, count_include_pad=False)
    if border == 'reflect':
        pad = size // 2
        return F.avg_pool2d(F.pad(x, (pad, pad, pad, pad), mode='reflect'), size, stride=1)
    raise ValueError(f'border must be one of {BORDERS}, got {border!r}')


def box_highpass(x, size=5, border='inside'):
    """(B, C, H, W) -> (B, C, H, W): ``x`` minus :func:`box_lowpass` of it (zero on flat regions)."""
    return x - box_lowpass(x, size, border)
