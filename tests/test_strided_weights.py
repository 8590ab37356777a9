"""Weights predicted only where the operator reads them (HR pixels (s*i, s*j)) equal predicting them everywhere and
subsampling: the weight CNN's last convolution at stride s, the operator on pre-sampled weights, DMLNet and its
ablations, DMLDegradation (its weight CNN channels_last on the CPU), and every shipped model. Values and parameter
gradients, odd sizes, scales 1..4.

Tolerance: float32 atol 1e-5 (rtol 1e-4 for gradients, sums over thousands of pixels); float64 atol 1e-12.
"""
import pytest
import torch

from dml_basicsr import DMLDegradation, DMLNet
from dml_basicsr.archs import DirectKPN, FixedKernelNet, UniformKernelNet
from dml_basicsr.archs.encoder_decoder import EncoderDecoder
from dml_basicsr.archs.network_loading import load_dmlnet
from dml_basicsr.degradation.dml_degradation import weight_cnn_memory_format, weight_net_input
from dml_basicsr.degradation.pretrained_models import pretrained_manifest, pretrained_path
from dml_basicsr.ops import apply_basis_kernels, sample_weights
from dml_basicsr.ops.basis_conv import apply_basis_kernels_direct
from dml_basicsr.ops.basis_fft import apply_basis_kernels_fft

SIZES = [(37, 41), (50, 33)]
SCALES = [1, 2, 3, 4]
TOLERANCE = {torch.float32: dict(atol=1e-5, rtol=1e-4), torch.float64: dict(atol=1e-12, rtol=1e-10)}


def reference_forward(net, hr):
    """DMLNet's LR the way it was made before: weights at every HR pixel, then the operator subsamples them."""
    return apply_basis_kernels(hr, net.basis_kernels(), net.predict_weights(hr), net.scale)


def parameter_gradients(net, loss):
    net.zero_grad()
    loss.backward()
    return {name: p.grad.clone() for name, p in net.named_parameters()}


def assert_gradients_close(new, ref, dtype):
    assert new.keys() == ref.keys()
    for name in ref:
        torch.testing.assert_close(new[name], ref[name], **TOLERANCE[dtype], msg=lambda m: f'{name}: {m}')


@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
@pytest.mark.parametrize('size', SIZES)
@pytest.mark.parametrize('scale', SCALES)
def test_strided_last_convolution_equals_full_output_subsampled(scale, size, dtype):
    torch.manual_seed(scale)
    net = EncoderDecoder(2, 5, num_feat=4).to(dtype)
    x = torch.rand(2, 2, *size, dtype=dtype)
    strided = net(x, stride=scale)
    full = net(x)[:, :, ::scale, ::scale]
    assert strided.shape == (2, 5, -(-size[0] // scale), -(-size[1] // scale))
    torch.testing.assert_close(strided, full, **TOLERANCE[dtype])
    g = torch.randn_like(full)
    assert_gradients_close(parameter_gradients(net, (strided * g).mean()),
                           parameter_gradients(net, (net(x)[:, :, ::scale, ::scale] * g).mean()), dtype)


@pytest.mark.parametrize('scale', [2, 3])
def test_strided_crop_equals_full_crop_subsampled(scale):
    torch.manual_seed(0)
    net = EncoderDecoder(1, 3, num_feat=4)
    x = torch.rand(1, 1, 48, 60)
    with torch.no_grad():
        full = net.forward_crop(x[..., 12:, 12:], (12, 12), (48, 60))[:, :, ::scale, ::scale]
        strided = net.forward_crop(x[..., 12:, 12:], (12, 12), (48, 60), stride=scale)
    torch.testing.assert_close(strided, full, atol=1e-5, rtol=0)


@pytest.mark.parametrize('scale', SCALES)
@pytest.mark.parametrize('path', [apply_basis_kernels, apply_basis_kernels_fft, apply_basis_kernels_direct])
def test_operator_on_sampled_weights_equals_full_weights(path, scale):
    torch.manual_seed(0)
    img, basis, weights = torch.rand(2, 3, 37, 41), torch.rand(4, 7, 7), torch.rand(2, 4, 37, 41)
    full = path(img, basis, weights, scale)
    assert torch.equal(path(img, basis, sample_weights(weights, scale), scale, sampled=True), full)


def test_operator_rejects_sampled_weights_of_the_wrong_shape():
    img, basis = torch.rand(1, 1, 37, 41), torch.rand(2, 5, 5)
    with pytest.raises(ValueError, match=r'sampled weights must be .* = \(1, 2, 13, 14\)'):
        apply_basis_kernels(img, basis, torch.rand(1, 2, 37, 41), 3, sampled=True)
    with pytest.raises(ValueError, match=r'weights must be \(B, M, H, W\)'):
        apply_basis_kernels(img, basis, torch.rand(1, 2, 13, 14), 3)


@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
@pytest.mark.parametrize('in_ch', [1, 3])
@pytest.mark.parametrize('size', SIZES)
@pytest.mark.parametrize('scale', SCALES)
def test_dmlnet_forward_and_gradients_equal_full_weights_then_subsampling(scale, size, in_ch, dtype):
    torch.manual_seed(10 * scale + in_ch)
    net = DMLNet(num_in_ch=in_ch, num_basis=4, kernel_size=7, scale=scale, num_feat=4).to(dtype)
    with torch.no_grad():  # away from the unit-gain start, so every parameter matters
        for p in net.weight_net.parameters():
            p.add_(0.05 * torch.randn_like(p))
    hr = torch.rand(2, in_ch, *size, dtype=dtype)
    torch.testing.assert_close(net.predict_sampled_weights(hr), sample_weights(net.predict_weights(hr), scale),
                               **TOLERANCE[dtype])
    out, ref = net(hr), reference_forward(net, hr)
    assert out.shape == (2, in_ch, -(-size[0] // scale), -(-size[1] // scale))
    torch.testing.assert_close(out, ref, **TOLERANCE[dtype])
    g = torch.randn_like(ref)
    assert_gradients_close(parameter_gradients(net, (net(hr) * g).mean()),
                           parameter_gradients(net, (reference_forward(net, hr) * g).mean()), dtype)


@pytest.mark.parametrize('scale', [2, 4])
def test_directkpn_and_single_kernel_nets_equal_full_prediction(scale):
    torch.manual_seed(0)
    hr = torch.rand(1, 1, 37, 41)
    kpn = DirectKPN(kernel_size=5, scale=scale, num_feat=4)
    ref = apply_basis_kernels(hr, kpn.one_hot, kpn.predict_kernels(hr), scale)
    torch.testing.assert_close(kpn(hr), ref, atol=1e-5, rtol=0)
    for net in (UniformKernelNet(kernel_size=5, scale=scale), FixedKernelNet(scale=scale)):
        ref = apply_basis_kernels(hr, net.basis_kernels(), net.predict_weights(hr), scale)
        assert torch.equal(net(hr), ref)


@pytest.mark.parametrize('name', sorted(pretrained_manifest()))
@pytest.mark.parametrize('channels', [1, 3])
def test_shipped_models_give_the_same_lr(name, channels):
    """Each shipped model's LR (Y and RGB through its Y weights) with the sampled weights, against full weights then
    subsampling, on a random image of odd size."""
    deg = DMLDegradation.pretrained(name, noise_sigma=0, clamp=False)
    net = load_dmlnet(pretrained_path(name))  # its own copy: the degradation may change its layout (channels_last)
    torch.manual_seed(0)
    hr = torch.nn.functional.avg_pool2d(torch.rand(2, channels, 69, 77), 3, 1)  # 67x75, some structure
    with torch.no_grad():
        new = deg.degrade_clean(hr)
        ref = apply_basis_kernels(hr, net.basis_kernels(), net.predict_weights(weight_net_input(net, hr)), net.scale)
        assert new.shape == (2, channels, -(-67 // net.scale), -(-75 // net.scale))
        torch.testing.assert_close(new, ref, atol=1e-5, rtol=0)
        torch.testing.assert_close(net(weight_net_input(net, hr)),
                                   reference_forward(net, weight_net_input(net, hr)), atol=1e-5, rtol=0)
    if hr.device.type == 'cpu':
        assert deg.net.weight_net.conv_last.weight.is_contiguous(memory_format=torch.channels_last)


def test_degradation_keeps_the_weight_cnn_layout_of_the_device():
    deg = DMLDegradation.pretrained('city100-nikon-x2', noise_sigma=0)
    deg(torch.rand(1, 1, 20, 20))
    weight = deg.net.weight_net.dec1[0].weight
    assert weight.is_contiguous(memory_format=weight_cnn_memory_format(torch.device('cpu')))
    deg.ready_net(torch.device('meta'))  # any other device: PyTorch's default layout
    assert deg.net.weight_net.dec1[0].weight.is_contiguous()
