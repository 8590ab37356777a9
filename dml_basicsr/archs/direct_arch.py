import torch.nn as nn
from basicsr.utils.registry import ARCH_REGISTRY

from .encoder_decoder import EncoderDecoder


@ARCH_REGISTRY.register()
class DirectNet(nn.Module):
    """Ablation: the DML backbone maps HR to LR directly (no kernels), with a global residual.

    ``LR = (HR + F(HR))`` sampled at HR pixels (s*i, s*j), the operator's top-left convention.

    Shape:
        (B, C, H, W) -> (B, C, ceil(H/s), ceil(W/s))
    """

    def __init__(self, num_in_ch=1, scale=1, num_feat=32):
        super().__init__()
        self.num_in_ch = num_in_ch
        self.scale = scale
        self.body = EncoderDecoder(num_in_ch, num_in_ch, num_feat, last_kernel_size=7)

    def forward(self, hr):
        return (hr + self.body(hr))[:, :, ::self.scale, ::self.scale]
