"""The SR networks VDSR and DMLRCAN: registration, shapes, VDSR's global residual, depth, training."""
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from basicsr.archs.rcan_arch import RCAB, ResidualGroup
from basicsr.utils.registry import ARCH_REGISTRY

import dml_basicsr  # noqa: F401  (registers the archs)
from dml_basicsr.archs import DMLRCAN, VDSR




def test_registered():
    assert ARCH_REGISTRY.get('VDSR') is VDSR
    assert ARCH_REGISTRY.get('DMLRCAN') is DMLRCAN
    assert ARCH_REGISTRY.get('RCAN') is not DMLRCAN  # BasicSR's own RCAN is untouched


@pytest.mark.parametrize('upscale', [1, 2, 3, 4])
@pytest.mark.parametrize('ch', [1, 3])
def test_vdsr_shapes(upscale, ch):
    net = VDSR(num_in_ch=ch, num_out_ch=ch, num_feat=8, num_conv=4, upscale=upscale).eval()
    with torch.no_grad():
        out = net(torch.rand(2, ch, 13, 17))
    assert out.shape == (2, ch, 13 * upscale, 17 * upscale)


@pytest.mark.parametrize('upscale', [1, 2, 3, 4])
@pytest.mark.parametrize('ch', [1, 3])
def test_dmlrcan_shapes(upscale, ch):
    net = DMLRCAN(num_in_ch=ch, num_out_ch=ch, num_feat=16, num_group=1, num_block=1, upscale=upscale).eval()
    with torch.no_grad():
        out = net(torch.rand(2, ch, 13, 17))
    assert out.shape == (2, ch, 13 * upscale, 17 * upscale)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize('upscale', [1, 2, 3, 4])
def test_vdsr_zero_last_conv_is_bicubic(upscale):
    net = VDSR(num_in_ch=1, num_out_ch=1, num_feat=8, num_conv=4, upscale=upscale).eval()
    with torch.no_grad():
        net.conv_last.weight.zero_()
        net.conv_last.bias.zero_()
        x = torch.rand(2, 1, 13, 17)
        out = net(x)
    ref = x if upscale == 1 else F.interpolate(x, scale_factor=upscale, mode='bicubic', align_corners=False)
    assert torch.equal(out, ref)


def test_vdsr_default_depth():
    net = VDSR()
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 20
    assert sum(isinstance(m, nn.ReLU) for m in net.modules()) == 19
    assert convs[0].in_channels == 1 and convs[-1].out_channels == 1
    assert all(c.kernel_size == (3, 3) for c in convs)
    assert all(c.out_channels == 64 for c in convs[:-1])


def test_dmlrcan_default_depth():
    net = DMLRCAN(num_in_ch=1, num_out_ch=1)
    groups = [m for m in net.modules() if isinstance(m, ResidualGroup)]
    assert len(groups) == 5
    assert all(sum(isinstance(m, RCAB) for m in g.modules()) == 10 for g in groups)
    assert isinstance(net.upsample, nn.Identity)
    # state-dict keys match BasicSR's RCAN layout; the mean buffers are not saved
    assert not any('mean' in k for k in net.state_dict())


def test_dmlrcan_mean_and_errors():
    assert torch.allclose(DMLRCAN(num_in_ch=3, num_out_ch=3).mean_in.flatten(),
                          torch.tensor([0.4488, 0.4371, 0.4040]))
    assert torch.equal(DMLRCAN(num_in_ch=1, num_out_ch=1, num_group=1, num_block=1).mean_in.flatten(),
                       torch.tensor([0.5]))
    with pytest.raises(ValueError):
        DMLRCAN(upscale=5)
    with pytest.raises(ValueError):
        DMLRCAN(num_in_ch=1, num_out_ch=1, rgb_mean=(0.1, 0.2))
    with pytest.raises(ValueError):
        VDSR(num_in_ch=1, num_out_ch=3)


def _train_reduces_l1(net, scale, steps=15):
    torch.manual_seed(0)
    hr = torch.rand(2, 1, 24, 24)
    lr = F.avg_pool2d(hr, scale) if scale > 1 else F.avg_pool2d(hr, 3, 1, 1)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    with torch.no_grad():
        first = F.l1_loss(net(lr), hr).item()
    for _ in range(steps):
        opt.zero_grad()
        loss = F.l1_loss(net(lr), hr)
        loss.backward()
        opt.step()
    with torch.no_grad():
        last = F.l1_loss(net(lr), hr).item()
    assert last < first


@pytest.mark.parametrize('scale', [1, 2])
def test_vdsr_training_reduces_l1(scale):
    torch.manual_seed(0)
    _train_reduces_l1(VDSR(num_feat=16, num_conv=5, upscale=scale), scale)


@pytest.mark.parametrize('scale', [1, 2])
def test_dmlrcan_training_reduces_l1(scale):
    torch.manual_seed(0)
    _train_reduces_l1(DMLRCAN(num_in_ch=1, num_out_ch=1, num_feat=16, num_group=1, num_block=2, upscale=scale), scale)
