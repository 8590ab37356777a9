"""The encoder-decoder backbone shared by DML's weight-prediction CNN and its ablations."""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from dml_basicsr.ops.resize import upsample_crop_bilinear


def _conv_block(in_ch, out_ch):
    return nn.Sequential(
        nn.Conv2d(in_ch, out_ch, 3, 1, 1), nn.ReLU(inplace=True),
        nn.Conv2d(out_ch, out_ch, 3, 1, 1), nn.ReLU(inplace=True))


class EncoderDecoder(nn.Module):
    """Two-level U-Net: 3x3 conv + ReLU blocks, max-pool down, bilinear up, skip concatenation.

    Works on any input of at least 4x4 pixels (upsampling targets the skip's exact size).

    Args:
        num_in_ch: input channels.
        num_out_ch: output channels (no activation on the output).
        num_feat: features of the first level (doubled at each level down).
        last_kernel_size: size of the output convolution (7 in the official DML code).

    Shape:
        (B, num_in_ch, H, W) -> (B, num_out_ch, H, W); with ``stride`` s, only the outputs at (s*i, s*j):
        (B, num_out_ch, ceil(H/s), ceil(W/s)).
    """

    def __init__(self, num_in_ch, num_out_ch, num_feat=32, last_kernel_size=7):
        super().__init__()
        self.enc1 = _conv_block(num_in_ch, num_feat)
        self.enc2 = _conv_block(num_feat, num_feat * 2)
        self.enc3 = _conv_block(num_feat * 2, num_feat * 4)
        self.dec2 = _conv_block(num_feat * 4 + num_feat * 2, num_feat * 2)
        self.dec1 = _conv_block(num_feat * 2 + num_feat, num_feat)
        self.conv_last = nn.Conv2d(num_feat, num_out_ch, last_kernel_size, 1, last_kernel_size // 2)

    def _encode(self, x):
        if min(x.shape[-2:]) < 4:
            raise ValueError(f'EncoderDecoder needs inputs of at least 4x4 pixels, got {tuple(x.shape)}')
        x1 = self.enc1(x)
        x2 = self.enc2(F.max_pool2d(x1, 2))
        x3 = self.enc3(F.max_pool2d(x2, 2))
        return x1, x2, x3

    @staticmethod
    def _upsample_to(coarse, skip):
        return F.interpolate(coarse, size=skip.shape[-2:], mode='bilinear', align_corners=False)

    def _output(self, d1, stride):
        """``conv_last(d1)[..., ::stride, ::stride]``, evaluated only there: the same convolution with stride s
        (its zero padding keeps output (i, j) centred on input (s*i, s*j)), 1/s^2 of the work."""
        if stride == 1:
            return self.conv_last(d1)
        if int(stride) != stride or stride < 1:
            raise ValueError(f'EncoderDecoder: stride must be a positive integer, got {stride!r}')
        conv = self.conv_last
        return F.conv2d(d1, conv.weight, conv.bias, stride=int(stride), padding=conv.padding,
                        dilation=conv.dilation, groups=conv.groups)

    def forward(self, x, stride=1):
        """The output map; with ``stride`` s, ``forward(x)[..., ::s, ::s]`` (the last convolution computed only
        there; equal within float rounding, gradients too)."""
        x1, x2, x3 = self._encode(x)
        d2 = self.dec2(torch.cat([self._upsample_to(x3, x2), x2], dim=1))
        d1 = self.dec1(torch.cat([self._upsample_to(d2, x1), x1], dim=1))
        return self._output(d1, stride)

    def forward_crop(self, x, origin, full_size, stride=1):
        """``forward`` of the whole image, on a crop of it at ``origin`` (y, x), multiples of 4.

        Equal to the whole image's output on the crop, except within :meth:`receptive_radius` of
        the crop sides that are inside the image (zero padding there stands in for the missing
        context). The decoder's upsampling uses the whole image's coordinate mapping.

        Args:
            x: (B, num_in_ch, h, w) crop of an image of ``full_size`` (H, W).
            stride: s: only the crop's outputs at (s*i, s*j), as :meth:`forward` (on the whole image's grid
                of every s-th pixel when ``origin`` is a multiple of s too).
        """
        (h1, w1), (oy, ox) = full_size, origin
        h2, w2 = h1 // 2, w1 // 2
        h3, w3 = h2 // 2, w2 // 2
        x1, x2, x3 = self._encode(x)
        up2 = upsample_crop_bilinear(x3, (oy // 2, ox // 2), x2.shape[-2:], (h2, w2), (h3, w3))
        d2 = self.dec2(torch.cat([up2, x2], dim=1))
        up1 = upsample_crop_bilinear(d2, (oy, ox), x1.shape[-2:], (h1, w1), (h2, w2))
        d1 = self.dec1(torch.cat([up1, x1], dim=1))
        return self._output(d1, stride)

    def receptive_radius(self):
        """A bound on the one-sided receptive field of an output pixel, in input pixels.

        Walks back from the output: a 3x3 conv adds 1 pixel at its level; going from a fine level
        back to a coarse one through the bilinear upsampling needs ``ceil(r/2) + 2`` coarse pixels
        (half the reach, the second interpolation tap, and up to half a pixel of drift when the
        image side is not a multiple of 4); a max-pool by 2 maps a coarse reach r to ``2r + 1``.
        """
        r1 = self.conv_last.kernel_size[0] // 2 + 2         # conv_last, dec1 (level 1)
        via_x1 = r1 + 2                                     # enc1
        r2 = math.ceil(r1 / 2) + 2 + 2                      # up from level 2, dec2
        via_x2 = 2 * (r2 + 2) + 1 + 2                       # enc2, pool, enc1
        r3 = math.ceil(r2 / 2) + 2 + 2                      # up from level 3, enc3
        via_x3 = 2 * (2 * r3 + 1 + 2) + 1 + 2               # pool, enc2, pool, enc1
        return max(via_x1, via_x2, via_x3)
