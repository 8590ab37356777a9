"""Signal-dependent Gaussian noise: its robust measurement on a residual, its fit and its sampling (pure tensor math).

The model, per channel c, for a clean (noise-free) LR intensity I in [0, 1]::

    noise = sqrt(max(a_c * I + b_c, 0)) * (f_v (x) f_h  *  white)         # variance a_c * I + b_c

``white`` is unit Gaussian noise, ``f_v (x) f_h`` an optional separable 3x3 filter of unit energy (the spatial
correlation; it keeps the variance). Variances are on the [0, 1] scale (``a`` per unit of intensity).

Measurement, robust to the degradation model's own error on edges (:func:`noise_level_function`): the residual
``real - clean`` is high-passed (minus its ``size`` x ``size`` local mean, which removes slowly varying colour and
brightness errors), only *flat* pixels are kept (the clean LR's Sobel gradient, max-pooled over the same window, below
a threshold: the window reads no edge), and per intensity bin the standard deviation is the MAD estimate
``1.4826 * median(|x - median(x)|)`` divided by the high-pass gain (:func:`highpass_gain`). :func:`fit_variance_line`
then fits ``var = a * I + b`` by least squares weighted by the bins' counts over their variance squared (the variance
of a variance estimate), with ``a, b >= 0``.
"""
import math

import torch
import torch.nn.functional as F

from .frequency_split import box_highpass

MAD_TO_STD = 1.4826  # 1 / Phi^-1(3/4): the MAD of a Gaussian times this is its standard deviation


def separable_filter(filter_v, filter_h, dtype=torch.float64):
    """(3,) vertical and (3,) horizontal taps -> (3, 3) filter ``outer(filter_v, filter_h)``."""
    return torch.outer(torch.as_tensor(filter_v, dtype=dtype), torch.as_tensor(filter_h, dtype=dtype))


def _highpassed_kernel(size, filter_v=None, filter_h=None):
    """The (size + 2, size + 2) kernel that :func:`box_highpass` of ``filter_v (x) filter_h`` filtered white noise
    applies to the white noise (float64)."""
    kernel = -torch.full((size, size), 1. / size ** 2, dtype=torch.float64)
    kernel[size // 2, size // 2] += 1
    f = separable_filter(filter_v, filter_h) if filter_v is not None else separable_filter([0, 1, 0], [0, 1, 0])
    return F.conv2d(F.pad(kernel[None, None], (2, 2, 2, 2)), f.flip(0, 1)[None, None])[0, 0]


def highpass_gain(size=5, filter_v=None, filter_h=None):
    """The standard deviation of :func:`box_highpass` of unit-variance noise (white, or filtered by the separable
    unit-energy ``filter_v (x) filter_h``): the factor the measured deviation is divided by. White: sqrt(1 - 1/size^2)."""
    return float(_highpassed_kernel(size, filter_v, filter_h).square().sum().sqrt())


def highpassed_lag1(size=5, filter_v=None, filter_h=None):
    """``(vertical, horizontal)`` lag-1 autocorrelation of :func:`box_highpass` of the noise of
    :func:`correlated_white_noise` with these taps: what :func:`lag1_autocorrelation` measures on high-passed
    noise (smaller than the noise's own lag-1 autocorrelation)."""
    k = _highpassed_kernel(size, filter_v, filter_h)
    energy = k.square().sum()
    return float((k[:-1] * k[1:]).sum() / energy), float((k[:, :-1] * k[:, 1:]).sum() / energy)


def fit_correlation_taps(measured_v, measured_h, size=5, iterations=60):
    """The taps ``(filter_v, filter_h)`` (:func:`symmetric_taps`) whose high-passed noise has the measured lag-1
    autocorrelations (:func:`highpassed_lag1`), by a fixed-point iteration on the noise's own lag-1
    autocorrelations ``(rho_v, rho_h)``; returns ``(filter_v, filter_h, rho_v, rho_h)``. Deterministic."""
    rho_v, rho_h = float(measured_v), float(measured_h)
    for _ in range(iterations):
        pv, ph = highpassed_lag1(size, symmetric_taps(rho_v), symmetric_taps(rho_h))
        rho_v = max(min(rho_v + (measured_v - pv), 0.7071), -0.7071)
        rho_h = max(min(rho_h + (measured_h - ph), 0.7071), -0.7071)
    return symmetric_taps(rho_v), symmetric_taps(rho_h), rho_v, rho_h


def sobel_magnitude(x):
    """Per-channel Sobel gradient magnitude (normalised: a unit ramp per pixel gives 1). (B, C, H, W) -> same."""
    kx = torch.tensor([[-1., 0., 1.], [-2., 0., 2.], [-1., 0., 1.]], dtype=x.dtype, device=x.device) / 8.
    kernels = torch.stack([kx, kx.t()])[:, None].repeat(x.shape[1], 1, 1, 1)  # (2C, 1, 3, 3)
    g = F.conv2d(F.pad(x, (1, 1, 1, 1), mode='replicate'), kernels, groups=x.shape[1])
    return g.view(x.shape[0], x.shape[1], 2, *x.shape[2:]).square().sum(2).sqrt()


def flat_mask(clean, threshold=0.004, size=5, border=8):
    """Pixels whose ``size`` x ``size`` neighbourhood of the clean LR has no gradient above ``threshold`` (Sobel
    magnitude, [0, 1] per pixel; 0.004 is about one 8-bit level per pixel), ``border`` pixels from the edge excluded.

    Shape: (B, C, H, W) -> (B, C, H, W) bool, per channel."""
    grad = F.max_pool2d(sobel_magnitude(clean), size, stride=1, padding=size // 2)
    mask = grad < threshold
    if border:
        edge = torch.zeros_like(mask)
        edge[..., border:-border, border:-border] = True
        mask &= edge
    return mask


def robust_std(values):
    """MAD standard deviation of a 1-D tensor: ``1.4826 * median(|x - median(x)|)``."""
    med = values.median()
    return MAD_TO_STD * float((values - med).abs().median())


def binned_robust_std(intensity, values, bins=16, min_count=500):
    """Per intensity bin of [0, 1] (``bins`` equal bins), of the 1-D ``values`` at the 1-D ``intensity``:
    ``(mean intensity, robust std, count)``, three lists of ``bins`` floats (NaN mean/std where fewer than
    ``min_count`` values)."""
    index = (intensity * bins).floor().clamp(0, bins - 1).long()
    order = torch.argsort(index, stable=True)
    index, intensity, values = index[order], intensity[order], values[order]
    counts = torch.bincount(index, minlength=bins)
    means, stds = [], []
    start = 0
    for count in counts.tolist():
        part = slice(start, start + count)
        start += count
        if count < max(min_count, 1):
            means.append(math.nan)
            stds.append(math.nan)
            continue
        means.append(float(intensity[part].double().mean()))
        stds.append(robust_std(values[part]))
    return means, stds, counts.tolist()


def fit_variance_line(intensity, variance, weight):
    """``(a, b)``, both >= 0, of ``variance = a * intensity + b`` by weighted least squares (1-D sequences; NaN or
    zero-weight entries are skipped). One usable point: ``a = 0``, ``b`` its variance."""
    x, y, w = (torch.as_tensor(v, dtype=torch.float64) for v in (intensity, variance, weight))
    keep = torch.isfinite(x) & torch.isfinite(y) & (w > 0)
    x, y, w = x[keep], y[keep], w[keep]
    if x.numel() == 0:
        raise ValueError('fit_variance_line: no bin with enough samples')
    sw, sx, sy = w.sum(), (w * x).sum(), (w * y).sum()
    sxx, sxy = (w * x * x).sum(), (w * x * y).sum()
    det = sw * sxx - sx * sx
    if x.numel() > 1 and det > 1e-12 * sw * sxx:
        a = float((sw * sxy - sx * sy) / det)
        b = float((sy - a * sx) / sw)
    else:
        a, b = 0., float(sy / sw)
    if a < 0:  # the constrained optimum lies on a = 0
        a, b = 0., float(sy / sw)
    elif b < 0:  # ... or on b = 0
        a, b = float(sxy / sxx), 0.
    return max(a, 0.), max(b, 0.)


def lag1_autocorrelation(residual, mask):
    """Vertical and horizontal lag-1 autocorrelation per channel of ``residual`` over pixel pairs both in ``mask``
    (each image's masked mean removed). (B, C, H, W) residual and bool mask -> two (C,) float64 tensors."""
    r = residual.double()
    m = mask.double()
    mean = (r * m).sum((2, 3), keepdim=True) / m.sum((2, 3), keepdim=True).clamp(min=1)
    r = (r - mean) * m

    def corr(x0, x1, m0, m1):
        both = m0 * m1
        num = (x0 * x1 * both).sum((0, 2, 3))
        den = ((x0.square() * both).sum((0, 2, 3)) * (x1.square() * both).sum((0, 2, 3))).sqrt()
        return num / den.clamp(min=1e-30)

    return (corr(r[:, :, :-1], r[:, :, 1:], m[:, :, :-1], m[:, :, 1:]),
            corr(r[..., :-1], r[..., 1:], m[..., :-1], m[..., 1:]))


def symmetric_taps(rho):
    """Unit-energy taps ``[c, 1, c] / sqrt(1 + 2 c^2)`` whose lag-1 autocorrelation ``2c / (1 + 2c^2)`` is ``rho``
    (clipped to the reachable [-1/sqrt(2), 1/sqrt(2)]); a list of 3 floats. ``rho = 0``: ``[0, 1, 0]``."""
    rho = max(min(float(rho), 0.7071), -0.7071)
    c = 0. if abs(rho) < 1e-9 else (1 - math.sqrt(max(1 - 2 * rho * rho, 0.))) / (2 * rho)
    norm = math.sqrt(1 + 2 * c * c)
    return [c / norm, 1 / norm, c / norm]


def correlated_white_noise(shape, filter_v=None, filter_h=None, generator=None, device=None, dtype=torch.float32):
    """Unit-variance Gaussian noise of ``shape`` (B, C, H, W): white, or white filtered by the separable unit-energy
    3x3 ``filter_v (x) filter_h`` (each (3,) or (C, 3) per channel; drawn 2 pixels larger and filtered without
    padding, so every pixel has the same statistics)."""
    if filter_v is None:
        return torch.randn(shape, device=device, dtype=dtype, generator=generator)
    b, c, h, w = shape
    white = torch.randn((b, c, h + 2, w + 2), device=device, dtype=dtype, generator=generator)
    fv = torch.as_tensor(filter_v, dtype=dtype, device=device).reshape(-1, 3).expand(c, 3)
    fh = torch.as_tensor(filter_h, dtype=dtype, device=device).reshape(-1, 3).expand(c, 3)
    kernel = (fv[:, :, None] * fh[:, None, :])[:, None]  # (C, 1, 3, 3); symmetric taps, so no flip matters
    return F.conv2d(white, kernel, groups=c)


def signal_dependent_noise(clean, a, b, filter_v=None, filter_h=None, generator=None):
    """Noise of variance ``max(a_c * clean + b_c, 0)`` per pixel (``a``, ``b``: (C,) on the [0, 1] scale), spatially
    correlated by :func:`correlated_white_noise`'s filter if given. (B, C, H, W) -> (B, C, H, W), ``clean``'s dtype
    and device; draws from ``generator`` (None: torch's global RNG)."""
    c = clean.shape[1]
    a = torch.as_tensor(a, dtype=clean.dtype, device=clean.device).reshape(1, c, 1, 1)
    b = torch.as_tensor(b, dtype=clean.dtype, device=clean.device).reshape(1, c, 1, 1)
    std = (a * clean + b).clamp(min=0).sqrt()
    return std * correlated_white_noise(clean.shape, filter_v, filter_h, generator, clean.device, clean.dtype)


def noise_level_function(clean, residual, mask=None, bins=16, size=5, gain=None, min_count=500, threshold=0.004,
                         border=8):
    """The binned robust standard deviation of ``residual`` against the ``clean`` intensity, per channel (see the
    module docstring): a list over channels of ``(mean intensity, std, count)`` (lists of ``bins``; std on the [0, 1]
    scale, divided by ``gain``, default :func:`highpass_gain` of white noise).

    Args:
        clean: (B, C, H, W) noise-free LR in [0, 1]; or a list of such batches (images of different sizes).
        residual: the same shape(s): real (or synthetic) LR minus ``clean``.
        mask: optional bool mask(s) of the same shape(s); default :func:`flat_mask` of ``clean``.
    """
    cleans = clean if isinstance(clean, (list, tuple)) else [clean]
    residuals = residual if isinstance(residual, (list, tuple)) else [residual]
    masks = mask if isinstance(mask, (list, tuple)) else [mask] * len(cleans)
    gain = highpass_gain(size) if gain is None else gain
    channels = cleans[0].shape[1]
    result = []
    for ch in range(channels):
        xs, vs = [], []
        for cl, res, m in zip(cleans, residuals, masks):
            m = flat_mask(cl, threshold, size, border) if m is None else m
            hp = box_highpass(res[:, ch:ch + 1].float(), size, border='reflect')
            keep = m[:, ch:ch + 1]
            xs.append(cl[:, ch:ch + 1][keep].float())
            vs.append(hp[keep])
        means, stds, counts = binned_robust_std(torch.cat(xs), torch.cat(vs), bins, min_count)
        result.append((means, [s / gain for s in stds], counts))
    return result
