"""The basis-kernel operator against a direct F.unfold reference, and kernel helpers."""
import pytest
import torch
import torch.nn.functional as F

import dml_basicsr  # noqa: F401
from dml_basicsr.ops import (apply_basis_kernels, center_pad, gaussian_kernel, init_basis, normalize_kernels,
                             output_size, pixel_kernels, relative_kernel_error)


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
