"""Low and high frequencies of an image: what DSGAN's losses split (Fritsche et al., ICCVW 2019)."""
import torch.nn.functional as F


def box_lowpass(x, size=5):
    """(B, C, H, W) -> (B, C, H, W): the mean over the ``size`` x ``size`` window around each pixel, of the pixels
    inside the image only (no padding value counted at the borders)."""
    return F.avg_pool2d(x, size, stride=1, padding=size // 2, count_include_pad=False)


def box_highpass(x, size=5):
    """(B, C, H, W) -> (B, C, H, W): ``x`` minus :func:`box_lowpass` of it (zero on flat regions)."""
    return x - box_lowpass(x, size)
