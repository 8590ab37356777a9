"""A known, spatially varying synthetic lens, for checking that DML recovers true kernels.

Its per-pixel kernel mixes a sharp and a wide anisotropic Gaussian,
``k_ij = (1 - t_ij) * sharp + t_ij * wide``, where ``t`` grows with the local brightness of the
HR image (highlights bloom, as with lens flare/halation). The blur therefore changes across
the image, and - unlike a purely position-dependent blur, which a CNN fed with random crops
cannot see - it is a function of image content, which DML's ``C = F(HR)`` can represent.
"""
import math

import torch

from .basis_conv import apply_basis_kernels
from .kernels import gaussian_kernel


class SyntheticLens:
    """Content-dependent blur with known per-pixel kernels.

    Args:
        kernel_size: K, odd.
        sharp_sigma: sigma of the sharp isotropic Gaussian (dark regions).
        wide_sigmas: (sigma_x, sigma_y) of the wide Gaussian (bright regions).
        wide_theta: rotation of the wide Gaussian, radians.
        mix_sigma: sigma of the Gaussian window measuring local brightness.
        mix_center, mix_slope: ``t = sigmoid(mix_slope * (local_mean - mix_center))``.
    """

    def __init__(self, kernel_size=15, sharp_sigma=0.7, wide_sigmas=(2.4, 1.0), wide_theta=math.pi / 6,
                 mix_sigma=4.0, mix_center=0.45, mix_slope=10.0):
        self.basis = torch.stack([
            gaussian_kernel(kernel_size, sharp_sigma),
            gaussian_kernel(kernel_size, wide_sigmas[0], wide_sigmas[1], wide_theta),
        ])
        self.window = gaussian_kernel(2 * int(3 * mix_sigma) + 1, mix_sigma)[None]
        self.mix_center = mix_center
        self.mix_slope = mix_slope

    def mix_weights(self, hr):
        """(B, C, H, W) HR -> (B, 2, H, W) weights of (sharp, wide); they sum to 1."""
        luminance = hr.mean(dim=1, keepdim=True)
        ones = torch.ones_like(luminance)
        local_mean = apply_basis_kernels(luminance, self.window.to(hr), ones)
        t = torch.sigmoid(self.mix_slope * (local_mean - self.mix_center))
        return torch.cat([1 - t, t], dim=1)

    def degrade(self, hr, scale=1):
        """(B, C, H, W) HR -> (B, C, ceil(H/s), ceil(W/s)) blurred and subsampled (noise-free)."""
        return apply_basis_kernels(hr, self.basis.to(hr), self.mix_weights(hr), scale)

    def kernels_at(self, hr, points):
        """True kernels (B, N, K, K) at HR pixels ``points`` (N, 2) of (y, x)."""
        weights = self.mix_weights(hr)[:, :, points[:, 0], points[:, 1]]
        return torch.einsum('bmn,mxy->bnxy', weights, self.basis.to(hr))
