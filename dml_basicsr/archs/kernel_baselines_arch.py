import math

import torch
import torch.nn as nn
from basicsr.utils.registry import ARCH_REGISTRY

from dml_basicsr.ops import bicubic_kernel, gaussian_kernel, output_size
from dml_basicsr.ops.kernels import downsampling_offset
from .basis_degradation import BasisDegradationMixin
from dml_basicsr.utils.options import is_finite_number, is_int


class _SingleKernelNet(BasisDegradationMixin, nn.Module):
    """One kernel for every pixel, applied with the DML operator contract."""

    def kernel(self):
        raise NotImplementedError

    def basis_kernels(self):
        return self.kernel()[None]

    def predict_weights(self, hr):
        """(B, 1, H, W) ones: the single kernel is used at every pixel (DMLNet's interface, for DMLDegradation)."""
        b, _, h, w = hr.shape
        return hr.new_ones(b, 1, h, w)

    def predict_sampled_weights(self, hr, tile_of=None):
        """(B, 1, ceil(H/s), ceil(W/s)) ones: the weights the operator reads (DMLNet's interface; a tile's are
        ones too)."""
        b, _, h, w = hr.shape
        return hr.new_ones(b, 1, output_size(h, self.scale), output_size(w, self.scale))

    def kernels_at(self, hr, points):
        return self.kernel().to(hr).expand(hr.shape[0], len(points), -1, -1)


@ARCH_REGISTRY.register()
class UniformKernelNet(_SingleKernelNet):
    """Baseline: one learned K x K kernel for all pixels (spatially invariant); its sum (gain) is learned.

    Shape:
        (B, C, H, W) -> (B, C, ceil(H/s), ceil(W/s))
    """

    def __init__(self, num_in_ch=1, kernel_size=15, scale=1):
        super().__init__()
        self.num_in_ch = num_in_ch
        self.scale = scale
        self.weight = nn.Parameter(torch.full((kernel_size, kernel_size), 1.0 / kernel_size**2))

    def kernel(self):
        return self.weight


def check_fixed_kernel_options(num_in_ch, scale, kernel, sigma, kernel_size):
    """ValueError naming the first FixedKernelNet option that cannot make a kernel."""
    if num_in_ch not in (1, 3) or not is_int(num_in_ch):
        raise ValueError(f'FixedKernelNet: num_in_ch must be 1 or 3, got {num_in_ch!r}')
    if scale not in (1, 2, 3, 4) or not is_int(scale):
        raise ValueError(f'FixedKernelNet: scale must be 1, 2, 3 or 4, got {scale!r}')
    if kernel == 'gaussian' and not (is_finite_number(sigma) and sigma > 0):
        raise ValueError(f'FixedKernelNet: sigma must be a finite number > 0 (pixels), got {sigma!r}')
    if kernel_size is not None and not (is_int(kernel_size) and kernel_size >= 1 and kernel_size % 2):
        raise ValueError(f'FixedKernelNet: kernel_size must be an odd integer >= 1 or null, got {kernel_size!r}')


@ARCH_REGISTRY.register()
class FixedKernelNet(_SingleKernelNet):
    """Non-learned baseline: bicubic (MATLAB imresize, antialiased) or Gaussian blur + subsampling,
    or no blur at all (``identity``: the HR pixel itself, i.e. plain subsampling).

    Bicubic and Gaussian kernels are centred on the LR pixel's centre, ``(s-1)/2`` HR pixels right/below the
    pixel the operator samples at (:func:`~dml_basicsr.ops.kernels.downsampling_offset`); at scale 1 that is the
    pixel itself.

    Has no trainable parameters: evaluate it with ``basicsr test`` and ``model_type: DMLModel``.

    Args:
        kernel: 'bicubic', 'gaussian' or 'identity'.
        sigma: Gaussian standard deviation (pixels).
        kernel_size: K (default: bicubic's support, or 2*ceil(3*sigma + (s-1)/2)+1).
    """

    def __init__(self, num_in_ch=1, scale=1, kernel='bicubic', sigma=1.0, kernel_size=None):
        super().__init__()
        check_fixed_kernel_options(num_in_ch, scale, kernel, sigma, kernel_size)
        self.num_in_ch = num_in_ch
        self.scale = scale
        if kernel == 'bicubic':
            k = bicubic_kernel(scale, kernel_size)
        elif kernel == 'gaussian':  # centred on the LR pixel's centre, as bicubic is
            offset = downsampling_offset(scale)
            k = gaussian_kernel(kernel_size or 2 * math.ceil(3 * sigma + offset) + 1, sigma, offset=offset)
        elif kernel == 'identity':
            k = torch.ones(1, 1)
        else:
            raise ValueError(f"FixedKernelNet: kernel must be 'bicubic', 'gaussian' or 'identity', got {kernel!r}")
        self.register_buffer('fixed_kernel', k)

    def kernel(self):
        return self.fixed_kernel
