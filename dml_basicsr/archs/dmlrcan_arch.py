"""RCAN (Zhang et al., ECCV 2018) as used by the DML paper's code, for Y or RGB and scales 1-4."""
import torch
import torch.nn as nn
from basicsr.archs.arch_util import Upsample, make_layer
from basicsr.archs.rcan_arch import ResidualGroup
from basicsr.utils.registry import ARCH_REGISTRY

DIV2K_RGB_MEAN = (0.4488, 0.4371, 0.4040)


def _default_mean(num_ch):
    return DIV2K_RGB_MEAN if num_ch == 3 else (0.5, ) * num_ch


@ARCH_REGISTRY.register()
class DMLRCAN(nn.Module):
    """Residual Channel Attention Network with the DML code's defaults (5 groups x 10 RCABs).

    Same layout (and state-dict keys) as BasicSR's ``RCAN``: ``conv_first`` -> ``body``
    (``num_group`` :class:`basicsr.archs.rcan_arch.ResidualGroup` of ``num_block`` RCABs) ->
    ``conv_after_body`` + long skip -> ``upsample`` -> ``conv_last``, with mean shift and
    ``img_range`` scaling around it. Differences from BasicSR's ``RCAN``:

    * any channel count (1 for Y works), and ``upscale`` 1: no upsampler, the output stays on
      the input grid (RealSR V2 / the official DML code, where LR is on the HR grid);
    * ``rgb_mean=None`` picks the DIV2K RGB mean (0.4488, 0.4371, 0.4040) for 3 channels and 0.5
      per channel otherwise (e.g. Y). A length-1 mean is broadcast to all channels. The mean is a
      non-persistent buffer, so it moves with ``.to()`` and is not part of the state dict.

    Args:
        num_in_ch: input channels. Default: 3.
        num_out_ch: output channels. Default: 3.
        num_feat: features. Default: 64.
        num_group: residual groups. Default: 5.
        num_block: RCABs per group. Default: 10.
        squeeze_factor: channel-attention squeeze factor. Default: 16.
        upscale: 1, 3 or a power of 2 (pixel-shuffle upsampling for s > 1). Default: 1.
        res_scale: residual scale in the RCABs. Default: 1.
        img_range: the network sees ``(x - mean) * img_range``. Default: 255.
        rgb_mean: per-channel mean (see above). Default: None.

    Shape:
        (B, num_in_ch, H, W) -> (B, num_out_ch, s*H, s*W)
    """

    def __init__(self,
                 num_in_ch=3,
                 num_out_ch=3,
                 num_feat=64,
                 num_group=5,
                 num_block=10,
                 squeeze_factor=16,
                 upscale=1,
                 res_scale=1,
                 img_range=255.,
                 rgb_mean=None):
        super().__init__()
        if int(upscale) != upscale or upscale < 1 or (upscale != 3 and (int(upscale) & (int(upscale) - 1)) != 0):
            raise ValueError(f'DMLRCAN: upscale must be 1, 3 or a power of 2, got {upscale!r}')
        if num_feat // squeeze_factor < 1:
            raise ValueError(f'DMLRCAN: num_feat ({num_feat}) must be >= squeeze_factor ({squeeze_factor})')
        self.upscale = int(upscale)
        self.img_range = img_range
        self.register_buffer('mean_in', self._mean(rgb_mean, num_in_ch), persistent=False)
        self.register_buffer('mean_out', self._mean(rgb_mean, num_out_ch), persistent=False)

        self.conv_first = nn.Conv2d(num_in_ch, num_feat, 3, 1, 1)
        self.body = make_layer(
            ResidualGroup,
            num_group,
            num_feat=num_feat,
            num_block=num_block,
            squeeze_factor=squeeze_factor,
            res_scale=res_scale)
        self.conv_after_body = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
        self.upsample = Upsample(self.upscale, num_feat) if self.upscale > 1 else nn.Identity()
        self.conv_last = nn.Conv2d(num_feat, num_out_ch, 3, 1, 1)

    @staticmethod
    def _mean(rgb_mean, num_ch):
        mean = _default_mean(num_ch) if rgb_mean is None else tuple(float(m) for m in rgb_mean)
        if len(mean) == 1:
            mean = mean * num_ch
        if len(mean) != num_ch:
            raise ValueError(f'DMLRCAN: rgb_mean has {len(mean)} values for {num_ch} channels')
        return torch.tensor(mean, dtype=torch.float32).view(1, num_ch, 1, 1)

    def forward(self, x):
        x = (x - self.mean_in.type_as(x)) * self.img_range
        x = self.conv_first(x)
        res = self.conv_after_body(self.body(x)) + x
        x = self.conv_last(self.upsample(res))
        return x / self.img_range + self.mean_out.type_as(x)
