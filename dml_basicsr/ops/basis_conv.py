"""Spatially varying blur as a per-pixel mixture of basis kernels (the DML degradation operator).

The per-pixel kernel of HR pixel (y, x) is ``k_yx = sum_m weights[:, m, y, x] * basis[m]``.
Output pixel (i, j) is the inner product of k at HR pixel (s*i, s*j) with the HR window centred
there (reflect padding by K//2; top-left sampling, as SRMD/MANet). ``s = 1`` keeps the HR grid.
Only the weights at those HR pixels are read: a caller may pass just them (``sampled=True``,
(B, M, ceil(H/s), ceil(W/s)), see :func:`sample_weights`) and predict no others.

Per-pixel kernels are never materialised: the image is correlated with each of the M basis
kernels only at the output positions (stride s), then the M responses are weighted and summed.
The correlations are evaluated in one of two ways (same values and gradients up to rounding),
chosen by :func:`select_method`:

* ``direct``: ``conv2d`` (strided; as s*s polyphase components when the basis or image needs a
  gradient), differentiated by autograd. Any device and dtype; the only path on CUDA.
* ``fft``: through the FFT with a hand-written backward (:mod:`.basis_fft`), on the CPU in
  float32/float64 where it is cheaper: large kernels, small strides, few kernels.
"""
import math

import torch
import torch.nn.functional as F

from .basis_fft import apply_basis_kernels_fft, geometry, polyphase, sample_weights
from .basis_fft import check_inputs as _check_inputs


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


def _polyphase_responses(img, basis, scale):
    """:func:`basis_responses` as a stride-1 convolution of the s*s polyphase components
    (``pixel_unshuffle``) with the split kernels: same values, a faster kernel gradient for s > 1."""
    b, c, h, w = img.shape
    m, k, _ = basis.shape
    pad = k // 2
    kp, hq, wq = geometry(k, output_size(h, scale), output_size(w, scale), scale)[:3]
    padded = F.pad(img.reshape(b * c, 1, h, w), (pad, pad, pad, pad), mode='reflect')
    kernels = polyphase(basis.unsqueeze(1).to(img.dtype), scale, kp, kp)  # (M, s*s, kp, kp)
    resp = F.conv2d(polyphase(padded, scale, hq, wq), kernels)
    return resp.reshape(b, c, m, resp.shape[-2], resp.shape[-1])


def apply_basis_kernels_direct(img, basis, weights, scale=1, sampled=False):
    """:func:`apply_basis_kernels` by direct correlation (``conv2d``), differentiated by autograd.

    The responses come from a strided ``conv2d`` (:func:`basis_responses`); when the image or the
    basis needs a gradient and s > 1, from the polyphase form instead, whose kernel gradient is faster.
    Works for every dtype and device ``conv2d`` supports. Shapes as :func:`apply_basis_kernels`.
    """
    _check_inputs(img, basis, weights, scale, sampled)
    conv_grad = torch.is_grad_enabled() and (img.requires_grad or basis.requires_grad)
    if scale > 1 and conv_grad:
        resp = _polyphase_responses(img, basis, scale)
    else:
        resp = basis_responses(img, basis, scale)
    w = (weights if sampled else sample_weights(weights, scale)).to(resp.dtype)
    return (resp * w.unsqueeze(1)).sum(2)


# Cost model for choosing the path, fitted to single-thread CPU times (benchmarks/operator.py and
# sweeps over M = 1, 8, 25, 81, 225; K = 3..21; s = 1..4; 64..192 pixels), in nanoseconds.
FFT_MAX_KERNELS = 16  # with more kernels (output channels) conv2d gets efficient: direct won by 2-27x


def estimated_costs(img_shape, num_kernels, kernel_size, scale, conv_grad, weights_grad):
    """Rough CPU times (ns) of the FFT and the direct path, forward plus the backward asked for.

    Args:
        img_shape: (B, C, H, W).
        conv_grad: the image or the basis needs a gradient; weights_grad: the weights do.

    Returns:
        dict with keys 'fft' and 'direct'.
    """
    b, c, h, w = img_shape
    m, k, s = num_kernels, kernel_size, scale
    ho, wo = output_size(h, s), output_size(w, s)
    n1, n2 = geometry(k, ho, wo, s)[3:]
    # FFT: one inverse transform per (plane pair, kernel), s*s phase products per frequency
    fft = 3.5e5 + -(-b * c // 2) * m * n1 * n2 * (0.44 * math.log2(n1 * n2) + 3.0 * s * s)
    # direct: multiply-adds, cheaper per MAC the more kernels (output channels) conv2d has
    direct = 1e5 + b * c * ho * wo * m * k * k * (0.03 + 0.43 / m**1.2) * (1 + 0.1 * (s - 1))
    if conv_grad:
        fft, direct = 2 * fft, 3 * direct
    elif weights_grad:
        fft, direct = 1.3 * fft, 1.3 * direct
    return {'fft': fft, 'direct': direct}


def select_method(img, basis, weights, scale=1):
    """The evaluation :func:`apply_basis_kernels` uses for these inputs: ``'fft'`` or ``'direct'``.

    The FFT path only on the CPU, in float32 or float64, with at most ``FFT_MAX_KERNELS`` kernels,
    where :func:`estimated_costs` says it is faster (e.g. DML's M = 8, K = 15 at s = 1 and 2, and
    at s = 3 with gradients). CUDA (not measured here: ``benchmarks/operator.py --device cuda``
    times both) and other dtypes use the direct path.
    """
    if (img.device.type != 'cpu' or img.dtype not in (torch.float32, torch.float64)
            or basis.shape[0] > FFT_MAX_KERNELS):
        return 'direct'
    grad = torch.is_grad_enabled()
    costs = estimated_costs(img.shape, basis.shape[0], basis.shape[-1], scale,
                            conv_grad=grad and (img.requires_grad or basis.requires_grad),
                            weights_grad=grad and weights.requires_grad)
    return 'fft' if costs['fft'] < costs['direct'] else 'direct'


def apply_basis_kernels(img, basis, weights, scale=1, sampled=False):
    """Apply per-pixel kernels ``k_ij = sum_m weights[:, m, i, j] * basis[m]`` to ``img``.

    Args:
        img: (B, C, H, W) image; every channel uses the same kernels.
        basis: (M, K, K) basis kernels, K odd.
        weights: (B, M, H, W) mixing weights on the HR grid; only those at HR pixels (s*i, s*j) are read.
            ``sampled``: just those, (B, M, ceil(H/s), ceil(W/s)) = :func:`sample_weights` of the full ones
            (a weight network need then predict only them; same result).
        scale: int s >= 1; the output is sampled at HR pixels (s*i, s*j).

    Returns:
        (B, C, ceil(H/s), ceil(W/s)) degraded image, in img's dtype.

    Evaluated through the FFT or by direct correlation, whichever :func:`select_method` picks;
    both give the same values and gradients up to rounding.
    """
    _check_inputs(img, basis, weights, scale, sampled)
    if select_method(img, basis, weights, scale) == 'fft':
        return apply_basis_kernels_fft(img, basis, weights, scale, sampled)
    return apply_basis_kernels_direct(img, basis, weights, scale, sampled)


def pixel_kernels(basis, weights):
    """Materialise per-pixel kernels (for inspection only; memory grows with H*W*K*K).

    Args:
        basis: (M, K, K) basis kernels.
        weights: (B, M, H, W) mixing weights.

    Returns:
        (B, H, W, K, K) kernels.
    """
    return torch.einsum('bmhw,mxy->bhwxy', weights, basis.to(weights.dtype))
