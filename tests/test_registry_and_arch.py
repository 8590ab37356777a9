"""Registration in BasicSR's registries and the DMLNet interface."""
import pytest
import torch
from basicsr.utils.registry import ARCH_REGISTRY, DATASET_REGISTRY, MODEL_REGISTRY

import dml_basicsr
from dml_basicsr import DMLNet, apply_basis_kernels


def test_components_are_registered():
    assert ARCH_REGISTRY.get('DMLNet') is DMLNet
    assert MODEL_REGISTRY.get('DMLModel') is dml_basicsr.models.DMLModel
    for name in ('SyntheticLensDataset', 'RealSRDataset', 'City100Dataset'):
        assert DATASET_REGISTRY.get(name).__name__ == name


def test_functional_tensor_alias_lets_basicsr_degradations_import():
    from basicsr.data import degradations  # imports torchvision.transforms.functional_tensor
    assert callable(degradations.rgb_to_grayscale)


@pytest.mark.parametrize('scale', [1, 2, 3, 4])
@pytest.mark.parametrize('in_ch', [1, 3])
def test_forward_equals_operator_on_predicted_weights(scale, in_ch):
    torch.manual_seed(0)
    net = DMLNet(num_in_ch=in_ch, num_basis=4, kernel_size=7, scale=scale, num_feat=8).eval()
    hr = torch.rand(2, in_ch, 29, 34)
    with torch.no_grad():
        out = net(hr)
        ref = apply_basis_kernels(hr, net.basis_kernels(), net.predict_weights(hr), scale)
    assert out.shape == (2, in_ch, -(-29 // scale), -(-34 // scale))
    # forward predicts the weights only at the sampled pixels (strided last conv): equal within float rounding
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=0)


def test_basis_kernels_are_normalised_and_weights_in_unit_interval():
    net = DMLNet(num_basis=8, kernel_size=15)
    with torch.no_grad():
        net.basis.mul_(3.0)  # any raw scale: the applied basis still sums to 1
    assert torch.allclose(net.basis_kernels().sum(dim=(1, 2)), torch.ones(8), atol=1e-5)
    w = net.predict_weights(torch.rand(1, 1, 32, 32))
    assert w.shape == (1, 8, 32, 32) and w.min() > 0 and w.max() < 1


def test_initial_gain_is_close_to_one():
    net = DMLNet(num_basis=8, kernel_size=15)
    hr = torch.full((1, 1, 48, 48), 0.5)
    with torch.no_grad():
        assert abs(net(hr).mean().item() - 0.5) < 0.05


def test_kernels_at_matches_pixel_kernels():
    net = DMLNet(num_basis=3, kernel_size=5, num_feat=8)
    hr = torch.rand(1, 1, 20, 24)
    points = torch.tensor([[0, 0], [7, 11], [19, 23]])
    with torch.no_grad():
        full = net.pixel_kernels(hr)
        at = net.kernels_at(hr, points)
    for n, (y, x) in enumerate(points.tolist()):
        assert torch.allclose(at[0, n], full[0, y, x], atol=1e-6)


@pytest.mark.parametrize('kwargs', [dict(scale=5), dict(num_in_ch=2), dict(kernel_size=14), dict(basis_init='x')])
def test_bad_options_raise(kwargs):
    with pytest.raises(ValueError):
        DMLNet(**kwargs)


def test_dml_learns_a_known_blur_quickly():
    """Fitting a fixed Gaussian blur: the loss must drop by an order of magnitude."""
    from dml_basicsr.ops import gaussian_kernel
    torch.manual_seed(0)
    hr = torch.rand(4, 1, 32, 32)
    true = apply_basis_kernels(hr, gaussian_kernel(7, 1.2)[None], torch.ones(4, 1, 32, 32), 2)
    net = DMLNet(num_basis=2, kernel_size=7, scale=2, num_feat=8)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    losses = []
    for _ in range(150):
        loss = torch.nn.functional.mse_loss(net(hr), true)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] / 10
