"""VDSR (Kim, Lee, Lee, CVPR 2016): a very deep plain CNN with a global residual on the HR grid."""
import torch.nn as nn
import torch.nn.functional as F
from basicsr.archs.arch_util import default_init_weights
from basicsr.utils.registry import ARCH_REGISTRY


@ARCH_REGISTRY.register()
class VDSR(nn.Module):
    """VDSR: ``num_conv`` 3x3 convolutions with ReLU between them and a global residual.

    VDSR works on the HR grid. With ``upscale`` s > 1 the LR input is first upsampled by bicubic
    interpolation (``F.interpolate(mode='bicubic', align_corners=False, scale_factor=s)``); with
    s = 1 the input is taken to be on the HR grid already (RealSR V2, the official DML code). The
    output is ``x_hr + body(x_hr)``, not clamped (bicubic may overshoot [0, 1]).

    Init: Kaiming normal (He et al., as in VDSR) with zero biases; the last convolution is scaled
    by ``last_scale`` (0.1) so that an untrained network starts close to the identity/bicubic map.

    Args:
        num_in_ch: input channels (1 for Y, 3 for RGB).
        num_out_ch: output channels; must equal ``num_in_ch`` (global residual).
        num_feat: features of the hidden layers. Default: 64.
        num_conv: number of conv layers, first and last included (>= 2). Default: 20.
        upscale: integer s >= 1; 1 means the input is already on the HR grid.

    Shape:
        (B, C, H, W) -> (B, C, s*H, s*W)
    """

    def __init__(self, num_in_ch=1, num_out_ch=1, num_feat=64, num_conv=20, upscale=1):
        super().__init__()
        if num_in_ch != num_out_ch:
            raise ValueError(f'VDSR: num_out_ch ({num_out_ch}) must equal num_in_ch ({num_in_ch}) '
                             'for the global residual')
        if int(num_conv) != num_conv or num_conv < 2:
            raise ValueError(f'VDSR: num_conv must be an integer >= 2, got {num_conv!r}')
        if int(upscale) != upscale or upscale < 1:
            raise ValueError(f'VDSR: upscale must be an integer >= 1, got {upscale!r}')
        self.upscale = int(upscale)

        layers = [nn.Conv2d(num_in_ch, num_feat, 3, 1, 1), nn.ReLU(inplace=True)]
        for _ in range(int(num_conv) - 2):
            layers += [nn.Conv2d(num_feat, num_feat, 3, 1, 1), nn.ReLU(inplace=True)]
        self.body = nn.Sequential(*layers)
        self.conv_last = nn.Conv2d(num_feat, num_out_ch, 3, 1, 1)

        default_init_weights([self.body], scale=1, bias_fill=0, nonlinearity='relu')
        default_init_weights([self.conv_last], scale=0.1, bias_fill=0, nonlinearity='relu')

    def forward(self, x):
        if self.upscale > 1:
            x = F.interpolate(x, scale_factor=self.upscale, mode='bicubic', align_corners=False)
        return x + self.conv_last(self.body(x))
