"""The basis-kernel operator against a direct F.unfold reference, and kernel helpers."""
import pytest
import torch
import torch.nn.functional as F

import dml_basicsr  # noqa: F401
from dml_basicsr.ops import (apply_basis_kernels, center_pad, gaussian_kernel, init_basis, normalize_kernels,
                             output_size, pixel_kernels, relative_kernel_error)
from dml_basicsr.ops import basis_fft
from dml_basicsr.ops.basis_conv import apply_basis_kernels_direct, basis_responses, select_method
from dml_basicsr.ops.basis_fft import apply_basis_kernels_fft, fft_size


def unfold_reference(img, basis, weights, scale):
    """Materialise every per-pixel kernel and take the inner product with its window."""
    b, c, h, w = img.shape
    k = basis.shape[-1]
    pad = k // 2
    padded = F.pad(img, (pad, pad, pad, pad), mode='reflect')
    windows = F.unfold(padded, k).view(b, c, k * k, h, w)  # window of every HR pixel
    kernels = torch.einsum('bmhw,mxy->bhwxy', weights, basis).reshape(b, h, w, k * k)
    out = torch.einsum('bckhw,bhwk->bchw', windows, kernels)
    return out[:, :, ::scale, ::scale]


def random_problem(b=2, c=3, h=23, w=18, m=4, k=5, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    img = torch.rand(b, c, h, w, generator=g, dtype=dtype)
    basis = torch.randn(m, k, k, generator=g, dtype=dtype)
    weights = torch.rand(b, m, h, w, generator=g, dtype=dtype)
    return img, basis, weights


@pytest.mark.parametrize('scale', [1, 2, 3, 4])
@pytest.mark.parametrize('size', [(23, 18), (16, 16), (17, 29)])
def test_matches_unfold_reference(scale, size):
    img, basis, weights = random_problem(h=size[0], w=size[1])
    out = apply_basis_kernels(img, basis, weights, scale)
    ref = unfold_reference(img, basis, weights, scale)
    assert out.shape == (2, 3, output_size(size[0], scale), output_size(size[1], scale))
    assert torch.allclose(out, ref, atol=1e-12)


@pytest.mark.parametrize('scale', [1, 2, 3, 4])
def test_gradients_match_unfold_reference(scale):
    img, basis, weights = random_problem(h=19, w=22, k=7)
    tensors = [t.clone().requires_grad_() for t in (img, basis, weights)]
    refs = [t.clone().requires_grad_() for t in (img, basis, weights)]
    grad_out = torch.randn(2, 3, output_size(19, scale), output_size(22, scale), dtype=torch.float64)
    (apply_basis_kernels(*tensors, scale=scale) * grad_out).sum().backward()
    (unfold_reference(*refs, scale=scale) * grad_out).sum().backward()
    for t, r in zip(tensors, refs):
        assert torch.allclose(t.grad, r.grad, atol=1e-10)


def test_gradcheck_small():
    img, basis, weights = random_problem(b=1, c=1, h=9, w=10, m=2, k=3)
    for t in (img, basis, weights):
        t.requires_grad_()
    assert torch.autograd.gradcheck(lambda i, b, w: apply_basis_kernels(i, b, w, 2), (img, basis, weights))


def test_delta_kernel_is_top_left_subsampling():
    img = torch.rand(1, 2, 12, 13)
    basis = torch.zeros(1, 5, 5)
    basis[0, 2, 2] = 1
    out = apply_basis_kernels(img, basis, torch.ones(1, 1, 12, 13), scale=3)
    assert torch.equal(out, img[:, :, ::3, ::3])


def test_kernel_is_correlation_not_convolution():
    # A kernel with a single 1 right of centre reads the right neighbour.
    img = torch.arange(25.).view(1, 1, 5, 5)
    basis = torch.zeros(1, 3, 3)
    basis[0, 1, 2] = 1
    out = apply_basis_kernels(img, basis, torch.ones(1, 1, 5, 5))
    assert out[0, 0, 2, 2] == img[0, 0, 2, 3]


def test_pixel_kernels_shape_and_values():
    _, basis, weights = random_problem(b=1, h=6, w=7, m=3, k=5)
    kernels = pixel_kernels(basis, weights)
    assert kernels.shape == (1, 6, 7, 5, 5)
    assert torch.allclose(kernels[0, 4, 2], sum(weights[0, m, 4, 2] * basis[m] for m in range(3)))


@pytest.mark.parametrize('bad', [
    dict(img=torch.rand(3, 8, 8)),
    dict(basis=torch.rand(2, 4, 4)),
    dict(weights=torch.rand(1, 3, 8, 8)),
    dict(scale=0),
    dict(img=torch.rand(1, 1, 2, 8), weights=torch.rand(1, 2, 2, 8)),
])
def test_bad_inputs_raise_clear_errors(bad):
    args = dict(img=torch.rand(1, 1, 8, 8), basis=torch.rand(2, 5, 5), weights=torch.rand(1, 2, 8, 8), scale=1)
    args.update(bad)
    with pytest.raises(ValueError):
        apply_basis_kernels(**args)


@pytest.mark.parametrize('method', ['random', 'gaussian'])
def test_init_basis_sums_to_one(method):
    basis = init_basis(8, 15, method, generator=torch.Generator().manual_seed(1))
    assert basis.shape == (8, 15, 15)
    assert torch.allclose(basis.sum(dim=(1, 2)), torch.ones(8), atol=1e-5)
    assert len({tuple(k.flatten().tolist()) for k in basis}) == 8  # all distinct


def test_normalize_kernels_keeps_sign_and_sums_to_one():
    raw = torch.randn(6, 7, 7) + 0.05
    normed = normalize_kernels(raw)
    assert torch.allclose(normed.sum(dim=(1, 2)), torch.ones(6), atol=1e-5)
    assert torch.allclose(normed * raw.sum(dim=(1, 2), keepdim=True), raw, atol=1e-5)


def test_gaussian_kernel_moments():
    k = gaussian_kernel(31, 2.0, 1.0, theta=0.0).double()
    r = torch.arange(31, dtype=torch.float64) - 15
    var_x = (k.sum(0) * r**2).sum()
    var_y = (k.sum(1) * r**2).sum()
    assert abs(var_x.item() - 4.0) < 1e-3 and abs(var_y.item() - 1.0) < 1e-3


def test_bad_basis_init_raises():
    with pytest.raises(ValueError, match='basis_init'):
        init_basis(2, 5, 'nope')
    with pytest.raises(ValueError, match='odd'):
        init_basis(2, 4)


def test_relative_kernel_error_pads_smaller_kernels():
    small = gaussian_kernel(7, 1.0)
    big = gaussian_kernel(15, 1.0)
    assert relative_kernel_error(small[None], small[None]) == 0
    # The 7x7 Gaussian lacks the 15x15 one's tails only: a small but non-zero error.
    err = relative_kernel_error(small[None], big[None]).item()
    assert 0 < err < 0.05
    assert torch.allclose(center_pad(small, 15)[4:11, 4:11], small)
    with pytest.raises(ValueError):
        center_pad(big, 7)


# Every evaluation path (FFT, direct, and the automatic choice) against the unfold reference --------

PATHS = {'fft': apply_basis_kernels_fft, 'direct': apply_basis_kernels_direct, 'auto': apply_basis_kernels}


def one_hot_basis(k, dtype=torch.float64):
    return torch.eye(k * k, dtype=dtype).view(k * k, k, k)


def compare_with_reference(fn, img, basis, weights, scale, grads=(True, True, True), atol=1e-10, seed=0):
    """Values and the gradients of the inputs flagged in ``grads`` (img, basis, weights), in one pass each."""
    ins = [t.clone().requires_grad_(g) for t, g in zip((img, basis, weights), grads)]
    refs = [t.clone().requires_grad_(g) for t, g in zip((img, basis, weights), grads)]
    out = fn(*ins, scale)
    ref = unfold_reference(*refs, scale)
    assert out.shape == ref.shape and out.dtype == ref.dtype
    torch.testing.assert_close(out, ref, atol=atol, rtol=0)
    if any(grads):
        grad_out = torch.randn(ref.shape, generator=torch.Generator().manual_seed(seed), dtype=ref.dtype)
        (out * grad_out).sum().backward()
        (ref * grad_out).sum().backward()
    for name, t, r, g in zip(('img', 'basis', 'weights'), ins, refs, grads):
        if g:
            assert t.grad is not None, name
            torch.testing.assert_close(t.grad, r.grad, atol=atol, rtol=0, msg=lambda m, n=name: f'{n}: {m}')
        else:
            assert t.grad is None


@pytest.mark.parametrize('path', sorted(PATHS))
@pytest.mark.parametrize('scale', [1, 2, 3, 4])
@pytest.mark.parametrize('b, c, h, w, m, k', [
    (2, 3, 23, 18, 4, 5),     # odd sizes, C = 3
    (3, 1, 19, 26, 8, 15),    # DML's M = 8, K = 15; an odd number of image planes
    (2, 1, 17, 21, 1, 7),     # M = 1 (uniform / fixed kernel)
    (1, 3, 16, 16, 2, 9),
])
def test_paths_match_unfold_reference(path, scale, b, c, h, w, m, k):
    img, basis, weights = random_problem(b=b, c=c, h=h, w=w, m=m, k=k, seed=scale)
    compare_with_reference(PATHS[path], img, basis, weights, scale)


@pytest.mark.parametrize('path', sorted(PATHS))
@pytest.mark.parametrize('scale', [1, 2, 3, 4])
def test_paths_one_hot_basis_m225(path, scale):
    # DirectKPN: M = K*K one-hot kernels, the weights are the per-pixel kernels; only they need a gradient.
    k = 15
    img, _, weights = random_problem(b=1, c=3, h=17, w=20, m=k * k, k=k, seed=scale)
    compare_with_reference(PATHS[path], img, one_hot_basis(k), weights, scale, grads=(False, False, True))
    compare_with_reference(PATHS[path], img[:, :1], one_hot_basis(k), weights, scale, grads=(True, True, True))


@pytest.mark.parametrize('path', sorted(PATHS))
@pytest.mark.parametrize('grads', [(True, False, False), (False, True, False), (False, False, True),
                                   (False, True, True), (True, True, False)])
def test_paths_gradient_subsets(path, grads):
    img, basis, weights = random_problem(b=2, c=2, h=15, w=14, m=3, k=7)
    for scale in (1, 3):
        compare_with_reference(PATHS[path], img, basis, weights, scale, grads=grads)


@pytest.mark.parametrize('path', sorted(PATHS))
@pytest.mark.parametrize('scale', [1, 2, 4])
def test_paths_non_contiguous_inputs(path, scale):
    img, basis, weights = random_problem(b=2, c=3, h=21, w=19, m=5, k=7, seed=4)
    img_nc = img.transpose(2, 3).contiguous().transpose(2, 3)  # same values, transposed strides
    img_nc = img_nc.contiguous(memory_format=torch.channels_last) if scale == 2 else img_nc
    basis_nc = basis.transpose(1, 2).contiguous().transpose(1, 2)
    weights_nc = torch.stack([weights, weights], dim=2).flatten(1, 2)[:, ::2]  # strided along M
    assert not (img_nc.is_contiguous() or basis_nc.is_contiguous() or weights_nc.is_contiguous())
    out = PATHS[path](img_nc, basis_nc, weights_nc, scale)
    torch.testing.assert_close(out, unfold_reference(img, basis, weights, scale), atol=1e-10, rtol=0)
    # gradients through non-contiguous views of leaf tensors
    leaves = [t.clone().requires_grad_() for t in (img, basis, weights)]
    views = (leaves[0].transpose(2, 3).transpose(2, 3), leaves[1][:, :, :], leaves[2].expand(2, -1, -1, -1))
    refs = [t.clone().requires_grad_() for t in (img, basis, weights)]
    grad_out = torch.randn(out.shape, generator=torch.Generator().manual_seed(1), dtype=out.dtype)
    (PATHS[path](*views, scale) * grad_out).sum().backward()
    (unfold_reference(*refs, scale) * grad_out).sum().backward()
    for t, r in zip(leaves, refs):
        torch.testing.assert_close(t.grad, r.grad, atol=1e-10, rtol=0)
    # expanded weights (a constant map, as the single-kernel baselines pass)
    ones = torch.ones(1, 1, 1, 1, dtype=torch.float64).expand(2, 1, 21, 19)
    torch.testing.assert_close(PATHS[path](img, basis[:1], ones, scale),
                               unfold_reference(img, basis[:1], torch.ones(2, 1, 21, 19, dtype=torch.float64), scale),
                               atol=1e-10, rtol=0)


@pytest.mark.parametrize('scale', [1, 2, 3])
def test_fft_gradcheck(scale):
    img, basis, weights = random_problem(b=1, c=2, h=9, w=11, m=2, k=5)
    for t in (img, basis, weights):
        t.requires_grad_()
    assert torch.autograd.gradcheck(lambda i, b, w: apply_basis_kernels_fft(i, b, w, scale), (img, basis, weights))


@pytest.mark.parametrize('scale', [1, 3])
def test_fft_blocks_and_odd_plane_counts(scale, monkeypatch):
    # Tiny blocks: pairs and kernels split over several FFT blocks, the last pair half empty.
    monkeypatch.setattr(basis_fft, 'BLOCK_ELEMENTS', 700)
    for b, c in ((1, 1), (3, 1), (1, 3), (2, 3)):
        img, basis, weights = random_problem(b=b, c=c, h=15, w=13, m=5, k=5, seed=b * c)
        compare_with_reference(apply_basis_kernels_fft, img, basis, weights, scale)


def test_fft_backward_twice_with_retained_graph():
    img, basis, weights = random_problem(b=2, c=1, h=16, w=16, m=3, k=7)
    basis.requires_grad_()
    weights.requires_grad_()
    out = apply_basis_kernels_fft(img, basis, weights, 2)
    out.sum().backward(retain_graph=True)
    first = (basis.grad.clone(), weights.grad.clone())
    out.sum().backward()
    torch.testing.assert_close(basis.grad, 2 * first[0])
    torch.testing.assert_close(weights.grad, 2 * first[1])


def test_fft_without_grad_equals_with_grad():
    img, basis, weights = random_problem(b=3, c=1, h=20, w=17, m=4, k=9, dtype=torch.float32)
    with torch.no_grad():
        plain = apply_basis_kernels_fft(img, basis, weights, 2)
    tracked = apply_basis_kernels_fft(img, basis.requires_grad_(), weights, 2)
    assert tracked.requires_grad and torch.equal(plain, tracked.detach())


@pytest.mark.parametrize('path', sorted(PATHS))
def test_paths_float32_within_float32_tolerance(path):
    img, basis, weights = random_problem(b=4, c=1, h=40, w=36, m=8, k=15, dtype=torch.float32)
    basis = normalize_kernels(basis.abs())  # DML's basis: kernels summing to 1
    leaves = [t.clone().requires_grad_() for t in (basis, weights)]
    out = PATHS[path](img, *leaves, 2)
    ref64 = unfold_reference(img.double(), basis.double(), weights.double(), 2)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out.double(), ref64, atol=1e-5, rtol=1e-5)
    out.sum().backward()
    assert leaves[0].grad.dtype == leaves[1].grad.dtype == torch.float32


@pytest.mark.parametrize('dtype', [torch.float64, torch.float32, torch.bfloat16])
def test_dtype_follows_img(dtype):
    img, basis, weights = random_problem(b=2, c=1, h=20, w=18, m=3, k=7, dtype=torch.float32)
    basis = normalize_kernels(basis.abs())
    basis_param = basis.clone().requires_grad_()  # a float32 parameter, as in DMLNet
    out = apply_basis_kernels(img.to(dtype), basis_param, weights, 2)
    assert out.dtype == dtype
    ref = unfold_reference(img.double(), basis.double(), weights.double(), 2)
    tol = 2e-2 if dtype == torch.bfloat16 else 1e-5
    torch.testing.assert_close(out.double(), ref, atol=tol, rtol=tol)
    out.float().sum().backward()
    assert basis_param.grad.dtype == torch.float32 and torch.isfinite(basis_param.grad).all()


def test_select_method():
    img, basis, weights = random_problem(b=16, c=1, h=192, w=192, m=8, k=15, dtype=torch.float32)
    assert select_method(img, basis, weights, 1) == 'fft'  # DML's setting on the CPU
    assert select_method(img.bfloat16(), basis, weights, 1) == 'direct'  # no bf16 FFT
    assert select_method(img, basis[:, 7:8, 7:8], weights, 1) == 'direct'  # K = 1: plain sampling, exact
    if torch.cuda.is_available():
        assert select_method(img.cuda(), basis.cuda(), weights.cuda(), 1) == 'direct'


@pytest.mark.parametrize('scale', [1, 2, 3, 4])
def test_fft_delta_kernel_is_top_left_subsampling(scale):
    img = torch.rand(2, 3, 12, 13, dtype=torch.float64)
    basis = torch.zeros(1, 5, 5, dtype=torch.float64)
    basis[0, 2, 2] = 1
    out = apply_basis_kernels_fft(img, basis, torch.ones(2, 1, 12, 13, dtype=torch.float64), scale)
    torch.testing.assert_close(out, img[:, :, ::scale, ::scale], atol=1e-14, rtol=0)


def test_fft_size_is_a_fast_length():
    for n in list(range(1, 300)) + [513, 1030]:
        m = fft_size(n)
        assert m >= n and m % 4 == 0 and (n <= 32 or m % 8 == 0)
        rest = m
        for p in (2, 3, 5, 7):
            while rest % p == 0:
                rest //= p
        assert rest in (1, 11, 13)
    assert fft_size(206) == 208  # K = 15 on 192 x 192


def test_basis_responses_unchanged():
    img, basis, _ = random_problem(b=1, c=2, h=13, w=12, m=3, k=5)
    resp = basis_responses(img, basis, 2)
    padded = F.pad(img, (2, 2, 2, 2), mode='reflect')
    windows = F.unfold(padded, 5).view(1, 2, 25, 13, 12)[..., ::2, ::2]
    assert resp.shape == (1, 2, 3, 7, 6)
    torch.testing.assert_close(resp, torch.einsum('bckhw,mk->bcmhw', windows, basis.reshape(3, 25)))
