"""DSGAN (Fritsche, Gu, Timofte, "Frequency Separation for Real-World Super-Resolution", ICCVW 2019): a generator
that turns the bicubic downscale of an HR image into an LR image of the target domain, and a discriminator that sees
only the high frequencies."""
import torch
import torch.nn as nn
from basicsr.utils.registry import ARCH_REGISTRY

from dml_basicsr.ops.frequency_split import box_highpass
from .kernel_baselines_arch import FixedKernelNet


class _ResidualBlock(nn.Module):
    def __init__(self, num_feat):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(num_feat, num_feat, 3, padding=1), nn.PReLU(),
                                  nn.Conv2d(num_feat, num_feat, 3, padding=1))

    def forward(self, x):
        return x + self.body(x)


@ARCH_REGISTRY.register()
class DSGANGenerator(nn.Module):
    """(B, C, h, w) bicubic-downscaled HR in [0, 1] -> (B, C, h, w) LR in (0, 1): a 3x3 convolution with PReLU,
    ``num_block`` residual blocks (conv-PReLU-conv, no normalisation), a 3x3 convolution and a sigmoid.
    The paper's: 64 features, 8 blocks (about 0.6 M parameters)."""

    def __init__(self, num_in_ch=3, num_feat=64, num_block=8):
        super().__init__()
        self.conv_first = nn.Sequential(nn.Conv2d(num_in_ch, num_feat, 3, padding=1), nn.PReLU())
        self.body = nn.Sequential(*[_ResidualBlock(num_feat) for _ in range(num_block)])
        self.conv_last = nn.Conv2d(num_feat, num_in_ch, 3, padding=1)

    def forward(self, x):
        return torch.sigmoid(self.conv_last(self.body(self.conv_first(x))))


@ARCH_REGISTRY.register()
class DSGANDiscriminator(nn.Module):
    """(B, C, h, w) LR -> (B, 1, h, w) per-pixel probability that it is a real LR image, from its high frequencies
    only: the input is ``0.5 + 0.5 * (x - box_lowpass(x))`` (``box_size`` x ``box_size``), then 5x5 convolutions
    ``num_feat``, 2 ``num_feat`` and 4 ``num_feat`` wide (batch norm after the last two, LeakyReLU 0.2), a 1x1
    convolution and a sigmoid."""

    def __init__(self, num_in_ch=3, num_feat=64, box_size=5):
        super().__init__()
        self.box_size = box_size
        self.net = nn.Sequential(
            nn.Conv2d(num_in_ch, num_feat, 5, padding=2), nn.LeakyReLU(0.2),
            nn.Conv2d(num_feat, 2 * num_feat, 5, padding=2), nn.BatchNorm2d(2 * num_feat), nn.LeakyReLU(0.2),
            nn.Conv2d(2 * num_feat, 4 * num_feat, 5, padding=2), nn.BatchNorm2d(4 * num_feat), nn.LeakyReLU(0.2),
            nn.Conv2d(4 * num_feat, 1, 1))

    def high_frequencies(self, x):
        """What the discriminator sees of ``x``: its high frequencies around 0.5."""
        return 0.5 + 0.5 * box_highpass(x, self.box_size)

    def forward(self, x):
        return torch.sigmoid(self.net(self.high_frequencies(x)))


@ARCH_REGISTRY.register()
class DSGANDegradation(nn.Module):
    """HR -> LR as DSGAN makes it: the MATLAB-bicubic downscale by ``scale`` (:class:`FixedKernelNet`, no parameters),
    then the :class:`DSGANGenerator`. (B, C, H, W) in [0, 1] -> (B, C, ceil(H/s), ceil(W/s)): the interface of the
    DML networks, so that ``DMLModel``'s validation (synthetic vs real LR) and the degradation sources take it."""

    def __init__(self, num_in_ch=3, scale=4, num_feat=64, num_block=8):
        super().__init__()
        self.num_in_ch, self.scale = num_in_ch, scale
        self.downscale = FixedKernelNet(num_in_ch=num_in_ch, scale=scale, kernel='bicubic')
        self.generator = DSGANGenerator(num_in_ch, num_feat, num_block)

    def forward(self, hr):
        return self.generator(self.downscale(hr))
