"""Pure tensor operations (no BasicSR dependency)."""
from .basis_conv import apply_basis_kernels, basis_responses, output_size, pixel_kernels, sample_weights
from .color import rgb_to_y
from .kernels import bicubic_kernel, center_pad, gaussian_basis, gaussian_kernel, init_basis, normalize_kernels, relative_kernel_error
from .synthetic_lens import SyntheticLens

__all__ = [
    'apply_basis_kernels', 'basis_responses', 'output_size', 'pixel_kernels', 'sample_weights', 'rgb_to_y',
    'bicubic_kernel', 'center_pad', 'gaussian_basis',
    'gaussian_kernel', 'init_basis', 'normalize_kernels', 'relative_kernel_error',
    'SyntheticLens'
]
