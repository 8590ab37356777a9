"""The basis-kernel operator through the FFT, with a hand-written backward.

Same operator as :func:`dml_basicsr.ops.basis_conv.apply_basis_kernels` (reflect padding by K//2,
output pixel (i, j) = sum_m weights[:, m, s*i, s*j] * <basis[m], window at (s*i, s*j)>).

Correlating an image with M kernels of K x K directly costs M*K*K multiply-adds per output pixel;
through the FFT it costs one transform of the image and one inverse transform per kernel,
O(log HW) per pixel and kernel. For a stride s > 1 the padded image P and the kernels are split
into their s*s polyphase components (``pixel_unshuffle``), so that

    r[i, j] = sum_{a,b} sum_{u,v} phi_ab[u, v] * P_ab[i + u, j + v],
    P_ab[y, x] = P[s*y + a, s*x + b],   phi_ab[u, v] = phi[s*u + a, s*v + b]   (ceil(K/s) x ceil(K/s)):

s*s stride-1 correlations on grids s times smaller per side, summed in the frequency domain, so
only the output positions are ever transformed back. The FFT size is at least
``ceil(H/s) + ceil(K/s) - 1`` per side, so no circular wrap-around reaches the kept outputs.

Backward (only what ``ctx.needs_input_grad`` asks for), with g the output gradient and
G[b, c, m] = g[b, c] * weights[b, m] on the output grid:

* weights: sum_c r[b, c, m] * g[b, c] (the saved forward responses);
* basis:   the correlation of P with G, summed over images and channels: one product per
  frequency, then one inverse transform per kernel (and phase);
* padded image: the full convolution of G with the kernels, summed over kernels in the frequency
  domain: one inverse transform per image plane. ``F.pad``'s own backward folds the reflection.

Two real image planes travel as one complex plane (plane 2k as the real, 2k+1 as the imaginary
part): the kernels are real, so one complex inverse transform gives both planes' responses, and
every transform is a complex one over the last two dimensions (on the CPU, PyTorch's ``irfft2``
copies its input twice and was 3x slower than ``ifft2`` of half as many packed planes). The work
goes in near-equal blocks of plane pairs and kernels of at most ``BLOCK_ELEMENTS`` complex values:
temporaries stay bounded for any B and M, and blocks stay few (each operation is a parallel region;
many small ones lose to thread contention on a busy CPU).
"""
import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable

BLOCK_ELEMENTS = 1 << 21  # complex values per spectral temporary (16 MiB in complex64)


def fft_size(n):
    """A fast transform length ``>= n``: the smallest multiple of 8 (of 4 up to 32) whose other factors
    are 2, 3, 5, 7 and at most one 11 or 13 (lengths with a single factor 2 transform ~40% slower)."""
    step = 4 if n <= 32 else 8
    m = -(-max(n, 1) // step) * step
    while True:
        rest = m
        for p in (2, 3, 5, 7):
            while rest % p == 0:
                rest //= p
        if rest in (1, 11, 13):
            return m
        m += step


def geometry(kernel_size, out_h, out_w, scale):
    """Polyphase kernel side kp = ceil(K/s), phase grid (hq, wq) = output + kp - 1, FFT size (n1, n2)."""
    kp = -(-kernel_size // scale)
    hq, wq = out_h + kp - 1, out_w + kp - 1
    return kp, hq, wq, fft_size(hq), fft_size(wq)


def polyphase(x, scale, rows, cols):
    """Split into polyphase components.

    Args:
        x: (N, L, H', W').
        scale: s.
        rows, cols: phase grid size; x is zero-extended (or cropped) to (s*rows, s*cols) first.

    Returns:
        (N, L*s*s, rows, cols) with ``out[:, l*s*s + a*s + b, y, x] = x[:, l, s*y + a, s*x + b]``.
    """
    x = F.pad(x, (0, scale * cols - x.shape[-1], 0, scale * rows - x.shape[-2]))
    return F.pixel_unshuffle(x, scale) if scale > 1 else x


def _freq_matmul(a, b, acc=None):
    """Per-frequency matrix product: (I, J, Y, X) x (J, K, Y, X) -> (I, K, Y, X), summing over J
    (added to ``acc`` in place when given)."""
    if acc is None:
        acc = a[:, 0, None] * b[None, 0]
        first = 1
    else:
        first = 0
    for j in range(first, a.shape[1]):
        acc.addcmul_(a[:, j, None], b[None, j])
    return acc


def _even_step(total, limit):
    """The step that splits ``total`` into the fewest pieces of at most ``limit``, of near-equal size."""
    pieces = -(-total // max(1, limit))
    return -(-total // pieces)


def _blocks(num_pairs, num_kernels, plane):
    """(pair slice, kernel slice) blocks whose spectra hold at most BLOCK_ELEMENTS values (pairs outer)."""
    mc = _even_step(num_kernels, BLOCK_ELEMENTS // plane)
    pc = _even_step(num_pairs, BLOCK_ELEMENTS // (mc * plane))
    for p0 in range(0, num_pairs, pc):
        for m0 in range(0, num_kernels, mc):
            yield slice(p0, min(p0 + pc, num_pairs)), slice(m0, min(m0 + mc, num_kernels))


def _pairs(x):
    """(N, ...) -> (ceil(N/2), 2, ...): planes 2k and 2k+1 side by side (a view when N is even)."""
    if x.shape[0] % 2:
        x = torch.cat([x, x.new_zeros((1,) + x.shape[1:])])
    return x.unflatten(0, (-1, 2))


def _plane_weights(weights, channels):
    """(B, M, h, w) -> (ceil(B*C/2), 2, M, h, w): the weights of image plane n = b*C + c, paired."""
    if channels > 1:
        weights = weights.unsqueeze(1).expand(-1, channels, -1, -1, -1).flatten(0, 1)
    return _pairs(weights)


def _unpack(z, rows, cols):
    """Complex (P, L, Y, X) of packed plane pairs -> real (P, 2, L, rows, cols) view of the top-left."""
    return torch.view_as_real(z)[:, :, :rows, :cols].permute(0, 4, 1, 2, 3)


def _unpair(x, planes):
    """(P, 2, ...) -> (planes, ...): drop the zero plane added to an odd number of planes."""
    return x.flatten(0, 1)[:planes]


def _forward(padded, basis, weights, scale, keep_responses):
    """Output (B, C, h, w); for the backward the responses (P, 2, M, h, w) (if kept) and the
    spectra of the image pairs (P, s*s, n1, n2) and of the kernels (M, s*s, n1, n2)."""
    b, c, hp, wp = padded.shape
    m, k, _ = basis.shape
    ho, wo = weights.shape[-2:]
    kp, hq, wq, n1, n2 = geometry(k, ho, wo, scale)
    phases = _pairs(polyphase(padded.reshape(b * c, 1, hp, wp), scale, hq, wq))  # (P, 2, s*s, hq, wq)
    spec_p = torch.fft.fft2(torch.complex(phases[:, 0], phases[:, 1]), s=(n1, n2))  # (P, s*s, n1, n2)
    spec_k = torch.fft.fft2(polyphase(basis.unsqueeze(1), scale, kp, kp).to(spec_p.dtype), s=(n1, n2))
    spec_kc = spec_k.conj().resolve_conj().transpose(0, 1)  # (s*s, M, n1, n2): correlation, not convolution
    w_pairs = _plane_weights(weights, c)  # (P, 2, M, h, w)
    num_pairs = spec_p.shape[0]
    out = padded.new_empty(num_pairs, 2, ho, wo)
    resp = padded.new_empty(num_pairs, 2, m, ho, wo) if keep_responses else None
    for pairs, kernels in _blocks(num_pairs, m, n1 * n2):
        r = _unpack(torch.fft.ifft2(_freq_matmul(spec_p[pairs], spec_kc[:, kernels])), ho, wo)
        if keep_responses:
            resp[pairs, :, kernels] = r
            r = resp[pairs, :, kernels]
        if kernels.start == 0:
            torch.sum(r * w_pairs[pairs, :, kernels], dim=2, out=out[pairs])
        else:
            out[pairs] += (r * w_pairs[pairs, :, kernels]).sum(2)
    out = _unpair(out, b * c).unflatten(0, (b, c))
    return out, resp, spec_p, spec_k


class BasisCorrelationFFT(torch.autograd.Function):
    """``apply(padded, basis, weights, scale)``: padded (B, C, Hp, Wp) image (already reflect-padded by
    K//2), basis (M, K, K), weights (B, M, h, w) already sampled at the output positions
    -> (B, C, h, w). All three in one real floating dtype (float32 or float64)."""

    @staticmethod
    def forward(ctx, padded, basis, weights, scale):
        out, resp, spec_p, spec_k = _forward(padded, basis, weights, scale, keep_responses=ctx.needs_input_grad[2])
        need_spectra = ctx.needs_input_grad[0] or ctx.needs_input_grad[1]
        ctx.save_for_backward(resp, spec_p if ctx.needs_input_grad[1] else None,
                              spec_k if ctx.needs_input_grad[0] else None, weights if need_spectra else None)
        ctx.scale = scale
        ctx.shapes = (padded.shape, basis.shape)
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out):
        resp, spec_p, spec_k, weights = ctx.saved_tensors
        (b, c, hp, wp), (m, k, _) = ctx.shapes
        s = ctx.scale
        need_img, need_basis, need_weights = ctx.needs_input_grad[:3]
        grad_img = grad_basis = grad_weights = None
        ho, wo = grad_out.shape[-2:]
        g_pairs = _pairs(grad_out.flatten(0, 1)).unsqueeze(2)  # (P, 2, 1, h, w)
        num_pairs = g_pairs.shape[0]
        if need_weights:
            prod = _unpair(resp * g_pairs, b * c).unflatten(0, (b, c))  # (B, C, M, h, w)
            grad_weights = prod.squeeze(1) if c == 1 else prod.sum(1)
        if need_img or need_basis:
            kp, hq, wq, n1, n2 = geometry(k, ho, wo, s)
            w_pairs = _plane_weights(weights, c)
            cdtype = (spec_p if need_basis else spec_k).dtype
            if need_basis:
                spec_pc = spec_p.conj().resolve_conj()  # (P, s*s, n1, n2)
                cross = spec_p.new_zeros(m, s * s, n1, n2)  # conj of sum over planes of conj(G) * P
            if need_img:
                grad_phases = grad_out.new_empty(num_pairs, 2, s * s, hq, wq)
                spec_gp = None
            buffer = None
            for pairs, kernels in _blocks(num_pairs, m, n1 * n2):
                # G = g * weights, packed in pairs, zero-extended to the FFT size (one buffer for all blocks)
                if buffer is None:
                    buffer = torch.zeros(pairs.stop - pairs.start, kernels.stop - kernels.start, n1, n2,
                                         dtype=cdtype, device=grad_out.device)
                packed = buffer[:pairs.stop - pairs.start, :kernels.stop - kernels.start]
                torch.mul(g_pairs[pairs], w_pairs[pairs, :, kernels], out=_unpack(packed, ho, wo))
                spec_g = torch.fft.fft2(packed)  # (pc, mc, n1, n2)
                if need_basis:
                    # the real part of the inverse transform is the sum over single planes
                    _freq_matmul(spec_g.transpose(0, 1), spec_pc[pairs], acc=cross[kernels])
                if need_img:
                    first = kernels.start == 0
                    spec_gp = _freq_matmul(spec_g, spec_k[kernels], acc=None if first else spec_gp)
                    if kernels.stop == m:
                        grad_phases[pairs] = _unpack(torch.fft.ifft2(spec_gp), hq, wq)
            if need_basis:
                grad_phases_k = torch.fft.ifft2(cross.conj()).real[..., :kp, :kp]  # (M, s*s, kp, kp)
                full = F.pixel_shuffle(grad_phases_k, s) if s > 1 else grad_phases_k
                grad_basis = full[:, 0, :k, :k]
            if need_img:
                phases = _unpair(grad_phases, b * c)  # (BC, s*s, hq, wq)
                full = F.pixel_shuffle(phases, s) if s > 1 else phases  # (BC, 1, s*hq, s*wq)
                full = F.pad(full, (0, wp - full.shape[-1], 0, hp - full.shape[-2]))
                grad_img = full.reshape(b, c, hp, wp)
        return grad_img, grad_basis, grad_weights, None


def sample_weights(weights, scale):
    """(B, M, H, W) weights on the HR grid -> (B, M, ceil(H/s), ceil(W/s)): the ones the operator reads, at HR
    pixels (s*i, s*j)."""
    return weights if scale == 1 else weights[:, :, ::scale, ::scale]


def check_inputs(img, basis, weights, scale, sampled=False):
    """Raise ValueError unless img (B, C, H, W), basis (M, K, K) with K odd, weights (B, M, H, W)
    (``sampled``: (B, M, ceil(H/s), ceil(W/s))), an int scale >= 1, and both image sides exceed K//2
    (reflect padding)."""
    if img.dim() != 4:
        raise ValueError(f'img must be (B, C, H, W), got shape {tuple(img.shape)}')
    if basis.dim() != 3 or basis.shape[1] != basis.shape[2] or basis.shape[1] % 2 == 0:
        raise ValueError(f'basis must be (M, K, K) with K odd, got shape {tuple(basis.shape)}')
    b, _, h, w = img.shape
    m, k, _ = basis.shape
    if not isinstance(scale, int) or scale < 1:
        raise ValueError(f'scale must be a positive integer, got {scale!r}')
    expected = (b, m, -(-h // scale), -(-w // scale))
    if sampled and weights.shape != expected:
        raise ValueError(f'sampled weights must be (B, M, ceil(H/s), ceil(W/s)) = {expected}, '
                         f'got shape {tuple(weights.shape)}')
    if not sampled and weights.shape != (b, m, h, w):
        raise ValueError(f'weights must be (B, M, H, W) = {(b, m, h, w)}, got shape {tuple(weights.shape)}')
    if min(h, w) <= k // 2:
        raise ValueError(f'image {h}x{w} is too small for reflect padding by {k // 2} (kernel size {k}); '
                         f'both sides must exceed {k // 2}')


def apply_basis_kernels_fft(img, basis, weights, scale=1, sampled=False):
    """:func:`dml_basicsr.ops.basis_conv.apply_basis_kernels` through the FFT.

    Args:
        img: (B, C, H, W) float32 or float64 image.
        basis: (M, K, K) basis kernels, K odd.
        weights: (B, M, H, W) mixing weights on the HR grid, or (``sampled``) only the ones read,
            (B, M, ceil(H/s), ceil(W/s)) at HR pixels (s*i, s*j).
        scale: int s >= 1.

    Returns:
        (B, C, ceil(H/s), ceil(W/s)) in img's dtype.
    """
    check_inputs(img, basis, weights, scale, sampled)
    if img.dtype not in (torch.float32, torch.float64):
        raise TypeError(f'the FFT path needs a float32 or float64 image, got {img.dtype}')
    pad = basis.shape[-1] // 2
    padded = F.pad(img, (pad, pad, pad, pad), mode='reflect')
    basis = basis.to(img.dtype)
    weights = (weights if sampled else sample_weights(weights, scale)).to(img.dtype)
    if torch.is_grad_enabled() and (padded.requires_grad or basis.requires_grad or weights.requires_grad):
        return BasisCorrelationFFT.apply(padded, basis, weights, scale)
    return _forward(padded, basis, weights, scale, keep_responses=False)[0]
