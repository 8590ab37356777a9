"""Spatially varying blur as a per-pixel mixture of basis kernels (the DML degradation operator).

The per-pixel kernel of HR pixel (y, x) is ``k_yx = sum_m weights[:, m, y, x] * basis[m]``.
Output pixel (i, j) is the inner product of k at HR pixel (s*i, s*j) with the HR window centred
there (reflect padding by K//2; top-left sampling, as SRMD/MANet). ``s = 1`` keeps the HR grid.

Per-pixel kernels are never materialised: the image is correlated with each of the M basis
kernels only at the output positions (stride s), then the M responses are weighted and summed.
"""
import torch
import torch.nn.functional as F


def _check_inputs(img, basis, weights, scale):
    if img.dim() != 4:
        raise ValueError(f'img must be (B, C, H, W), got shape {tuple(img.shape)}')
    if basis.dim() != 3 or basis.shape[1] != basis.shape[2] or basis.shape[1] % 2 == 0:
        raise ValueError(f'basis must be (M, K, K) with K odd, got shape {tuple(basis.shape)}')
    b, _, h, w = img.shape
    m, k, _ = basis.shape
    if weights.shape != (b, m, h, w):
        raise ValueError(f'weights must be (B, M, H, W) = {(b, m, h, w)}, got shape {tuple(weights.shape)}')
    if not isinstance(scale, int) or scale < 1:
        raise ValueError(f'scale must be a positive integer, got {scale!r}')
    if min(h, w) <= k // 2:
        raise ValueError(f'image {h}x{w} is too small for reflect padding by {k // 2} (kernel size {k}); '
                         f'both sides must exceed {k // 2}')


def output_size(size, scale):
    """LR size for an HR side of ``size`` pixels: ``ceil(size / scale)``."""
    return -(-size // scale)


def basis_responses(img, basis, scale=1):
    """Correlate every channel with every basis kernel at the output positions.

    Args:
        img: (B, C, H, W) image.
        basis: (M, K, K) kernels, K odd.
        scale: int stride s.

    Returns:
        (B, C, M, ceil(H/s), ceil(W/s)) responses.
    """
    b, c, h, w = img.shape
    m, k, _ = basis.shape
    pad = k // 2
    padded = F.pad(img.reshape(b * c, 1, h, w), (pad, pad, pad, pad), mode='reflect')
    resp = F.conv2d(padded, basis.unsqueeze(1).to(img.dtype), stride=scale)
    return resp.reshape(b, c, m, resp.shape[-2], resp.shape[-1])


def apply_basis_kernels(img, basis, weights, scale=1):
    """Apply per-pixel kernels ``k_ij = sum_m weights[:, m, i, j] * basis[m]`` to ``img``.

    Args:
        img: (B, C, H, W) image; every channel uses the same kernels.
        basis: (M, K, K) basis kernels, K odd.
        weights: (B, M, H, W) mixing weights on the HR grid.
        scale: int s >= 1; the output is sampled at HR pixels (s*i, s*j).

    Returns:
        (B, C, ceil(H/s), ceil(W/s)) degraded image.
    """
    _check_inputs(img, basis, weights, scale)
    resp = basis_responses(img, basis, scale)
    w = weights[:, :, ::scale, ::scale].to(resp.dtype)
    return torch.einsum('bcmhw,bmhw->bchw', resp, w)


def pixel_kernels(basis, weights):
    """Materialise per-pixel kernels (for inspection only; memory grows with H*W*K*K).

    Args:
        basis: (M, K, K) basis kernels.
        weights: (B, M, H, W) mixing weights.

    Returns:
        (B, H, W, K, K) kernels.
    """
    return torch.einsum('bmhw,mxy->bhwxy', weights, basis.to(weights.dtype))
