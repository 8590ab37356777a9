"""Blur-kernel helpers: Gaussian kernels, basis initialisation and normalisation."""
import math

import torch


def normalize_kernels(kernels, eps=1e-8):
    """Scale each kernel to sum 1.

    Args:
        kernels: (M, K, K).

    Returns:
        (M, K, K) kernels whose entries sum to 1 per kernel. The sign of the sum is kept away
        from zero by ``eps`` so the division never explodes.
    """
    sums = kernels.sum(dim=(-2, -1), keepdim=True)
    sums = torch.where(sums >= 0, sums.clamp(min=eps), sums.clamp(max=-eps))
    return kernels / sums


def gaussian_kernel(kernel_size, sigma_x, sigma_y=None, theta=0.0, dtype=torch.float32, offset=0.0):
    """Anisotropic Gaussian kernel normalised to sum 1.

    Args:
        kernel_size: odd int K.
        sigma_x, sigma_y: standard deviations (pixels) along the rotated axes.
        theta: rotation in radians.
        offset: the centre's shift right and down from the middle of the K x K grid, in pixels (e.g. ``(s-1)/2``
            for a downsampling kernel at the operator's top-left sampling: see :func:`downsampling_offset`).

    Returns:
        (K, K) kernel.
    """
    if kernel_size % 2 == 0:
        raise ValueError(f'kernel_size must be odd, got {kernel_size}')
    sigma_y = sigma_x if sigma_y is None else sigma_y
    r = torch.arange(kernel_size, dtype=torch.float64) - kernel_size // 2 - offset
    yy, xx = torch.meshgrid(r, r, indexing='ij')
    c, s = math.cos(theta), math.sin(theta)
    u = c * xx + s * yy
    v = -s * xx + c * yy
    k = torch.exp(-0.5 * ((u / sigma_x)**2 + (v / sigma_y)**2))
    return (k / k.sum()).to(dtype)


def _cubic(x):
    """Keys' cubic convolution kernel with a = -0.5 (MATLAB's imresize)."""
    ax = x.abs()
    return ((1.5 * ax**3 - 2.5 * ax**2 + 1) * (ax <= 1) + (-0.5 * ax**3 + 2.5 * ax**2 - 4 * ax + 2) *
            ((ax > 1) & (ax <= 2)))


def downsampling_offset(scale):
    """Where a /``scale`` LR pixel's centre lies right/below the HR pixel the operator samples it at: the operator
    reads the window at HR ``(s*i, s*j)``, while the LR pixel (i, j) covers HR ``s*i .. s*i+s-1`` (MATLAB's and every
    area-preserving resize's convention), centred at ``s*i + (s-1)/2``."""
    return (scale - 1) / 2


def bicubic_kernel(scale, kernel_size=None, dtype=torch.float32):
    """MATLAB-style antialiased bicubic downsampling by ``scale`` as one (K, K) kernel.

    Written for the operator's top-left sampling: MATLAB's output pixel j is centred at HR
    coordinate ``s*j + (s-1)/2``, so the kernel is centred (s-1)/2 pixels right/below its middle.
    Default K is the smallest odd size holding the 4s-wide support.
    """
    offset = downsampling_offset(scale)
    if kernel_size is None:
        kernel_size = 2 * int(math.ceil(2 * scale + offset)) + 1
    r = torch.arange(kernel_size, dtype=torch.float64) - kernel_size // 2
    w = _cubic((r - offset) / scale)
    w = w / w.sum()
    return torch.outer(w, w).to(dtype)


def gaussian_basis(num_basis, kernel_size):
    """A family of ``num_basis`` Gaussians: isotropic of growing width, then rotated anisotropic ones."""
    kernels = []
    n_iso = max(1, (num_basis + 1) // 2)
    for i in range(n_iso):
        sigma = 0.4 + 2.6 * i / max(1, n_iso - 1)
        kernels.append(gaussian_kernel(kernel_size, sigma))
    n_aniso = num_basis - n_iso
    for i in range(n_aniso):
        kernels.append(gaussian_kernel(kernel_size, 2.5, 0.8, theta=math.pi * i / max(1, n_aniso)))
    return torch.stack(kernels)


def init_basis(num_basis, kernel_size, method='random', generator=None):
    """Initial basis kernels, each summing to 1.

    Args:
        method: ``'random'`` (uniform [0, 1) entries normalised to sum 1, as in the paper) or
            ``'gaussian'`` (a fixed Gaussian family, see :func:`gaussian_basis`).

    Returns:
        (num_basis, kernel_size, kernel_size) tensor.
    """
    if kernel_size % 2 == 0 or kernel_size < 1:
        raise ValueError(f'kernel_size must be a positive odd int, got {kernel_size}')
    if num_basis < 1:
        raise ValueError(f'num_basis must be >= 1, got {num_basis}')
    if method == 'random':
        return normalize_kernels(torch.rand(num_basis, kernel_size, kernel_size, generator=generator))
    if method == 'gaussian':
        return gaussian_basis(num_basis, kernel_size)
    raise ValueError(f"basis_init must be 'random' or 'gaussian', got {method!r}")


def center_pad(kernels, size):
    """Zero-pad (..., K, K) kernels symmetrically to (..., size, size); size >= K, same parity."""
    pad = (size - kernels.shape[-1]) // 2
    if pad < 0 or (size - kernels.shape[-1]) % 2:
        raise ValueError(f'cannot centre-pad {kernels.shape[-1]}x{kernels.shape[-1]} kernels to {size}x{size}')
    return torch.nn.functional.pad(kernels, (pad, pad, pad, pad))


def relative_kernel_error(learned, true):
    """Mean over kernels of ``||learned - true||_2 / ||true||_2``; inputs (..., K, K).

    Kernels of different odd sizes are compared after centre-padding the smaller to the larger.
    """
    size = max(learned.shape[-1], true.shape[-1])
    learned, true = center_pad(learned, size), center_pad(true, size)
    diff = (learned - true).flatten(-2).norm(dim=-1)
    return (diff / true.flatten(-2).norm(dim=-1)).mean()
