"""The encoder-decoder backbone shared by DML's weight-prediction CNN and its ablations."""
import torch
import torch.nn as nn
import torch.nn.functional as F


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
        (B, num_in_ch, H, W) -> (B, num_out_ch, H, W)
    """

    def __init__(self, num_in_ch, num_out_ch, num_feat=32, last_kernel_size=7):
        super().__init__()
        self.enc1 = _conv_block(num_in_ch, num_feat)
        self.enc2 = _conv_block(num_feat, num_feat * 2)
        self.enc3 = _conv_block(num_feat * 2, num_feat * 4)
        self.dec2 = _conv_block(num_feat * 4 + num_feat * 2, num_feat * 2)
        self.dec1 = _conv_block(num_feat * 2 + num_feat, num_feat)
        self.conv_last = nn.Conv2d(num_feat, num_out_ch, last_kernel_size, 1, last_kernel_size // 2)

    @staticmethod
    def _up_cat(x, skip):
        x = F.interpolate(x, size=skip.shape[-2:], mode='bilinear', align_corners=False)
        return torch.cat([x, skip], dim=1)

    def forward(self, x):
        if min(x.shape[-2:]) < 4:
            raise ValueError(f'EncoderDecoder needs inputs of at least 4x4 pixels, got {tuple(x.shape)}')
        x1 = self.enc1(x)
        x2 = self.enc2(F.max_pool2d(x1, 2))
        x3 = self.enc3(F.max_pool2d(x2, 2))
        d2 = self.dec2(self._up_cat(x3, x2))
        d1 = self.dec1(self._up_cat(d2, x1))
        return self.conv_last(d1)
