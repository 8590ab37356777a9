import torch
import torch.nn as nn
from basicsr.utils.registry import ARCH_REGISTRY

from dml_basicsr.ops import apply_basis_kernels
from .encoder_decoder import EncoderDecoder


@ARCH_REGISTRY.register()
class DirectKPN(nn.Module):
    """Ablation: the DML backbone predicts a full K x K kernel per pixel (K*K output channels).

    Applied with the same operator contract as DML: the "basis" is the K*K one-hot kernels and
    the predicted channels are their weights, so pixel (y, x)'s kernel is the channel vector at
    (y, x) reshaped to K x K. Kernels are not normalised; they start as a box filter (sum 1).

    Shape:
        (B, C, H, W) -> (B, C, ceil(H/s), ceil(W/s))
    """

    def __init__(self, num_in_ch=1, kernel_size=15, scale=1, num_feat=32):
        super().__init__()
        if kernel_size % 2 == 0:
            raise ValueError(f'DirectKPN: kernel_size must be odd, got {kernel_size}')
        self.num_in_ch = num_in_ch
        self.kernel_size = kernel_size
        self.scale = scale
        k2 = kernel_size * kernel_size
        self.kernel_net = EncoderDecoder(num_in_ch, k2, num_feat, last_kernel_size=7)
        self.register_buffer('one_hot', torch.eye(k2).view(k2, kernel_size, kernel_size), persistent=False)
        with torch.no_grad():
            self.kernel_net.conv_last.weight.mul_(0.01)
            self.kernel_net.conv_last.bias.fill_(1.0 / k2)

    def predict_kernels(self, hr):
        """(B, K*K, H, W): every HR pixel's kernel, flattened row-major."""
        return self.kernel_net(hr)

    def forward(self, hr):
        # only the kernels the operator reads, at HR pixels (s*i, s*j): the last convolution at stride s
        kernels = self.kernel_net(hr, stride=self.scale)
        return apply_basis_kernels(hr, self.one_hot, kernels, self.scale, sampled=True)

    def kernels_at(self, hr, points):
        """(B, N, K, K) kernels at HR pixels ``points`` (N, 2) of (y, x)."""
        k = self.predict_kernels(hr)[:, :, points[:, 0], points[:, 1]]
        return k.permute(0, 2, 1).reshape(k.shape[0], -1, self.kernel_size, self.kernel_size)
