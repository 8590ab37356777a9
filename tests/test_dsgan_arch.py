"""dml_basicsr.archs.dsgan_arch and ops.frequency_split: DSGAN's generator and high-pass discriminator (issue 28's
networks; its training model and table rows are not built yet)."""
import pytest
import torch
from basicsr.utils.registry import ARCH_REGISTRY

from dml_basicsr.archs import DSGANDiscriminator
from dml_basicsr.ops.frequency_split import box_highpass, box_lowpass


def test_the_generator_keeps_the_size_and_has_the_papers_parameter_count():
    net = ARCH_REGISTRY.get('DSGANGenerator')()
    out = net(torch.rand(2, 3, 20, 28))
    assert out.shape == (2, 3, 20, 28) and 0 < out.min() and out.max() < 1  # a sigmoid
    params = sum(p.numel() for p in net.parameters())
    assert 0.55e6 < params < 0.65e6  # "about 0.6 M"


def test_box_filters_split_an_image_into_its_low_and_high_frequencies():
    x = torch.rand(1, 3, 16, 16)
    assert torch.allclose(box_lowpass(x) + box_highpass(x), x)
    flat = torch.full((1, 3, 16, 16), 0.3)
    assert torch.allclose(box_lowpass(flat), flat) and box_highpass(flat).abs().max() < 1e-6  # borders too
    assert torch.allclose(box_lowpass(x)[0, 0, 8, 8], x[0, 0, 6:11, 6:11].mean())
    assert torch.allclose(box_lowpass(x)[0, 0, 0, 0], x[0, 0, :3, :3].mean())  # 'inside': only the image's pixels
    reflected = torch.nn.functional.pad(x, (2, 2, 2, 2), mode='reflect')  # the noise fit's border
    assert torch.allclose(box_lowpass(x, border='reflect')[0, 0, 0, 0], reflected[0, 0, :5, :5].mean())
    assert torch.allclose(box_highpass(x, border='reflect'), x - box_lowpass(x, border='reflect'))
    with pytest.raises(ValueError, match='border must be one of'):
        box_lowpass(x, border='zero')


def test_the_discriminator_sees_only_high_frequencies():
    torch.manual_seed(0)
    net = DSGANDiscriminator().eval()
    x = torch.rand(2, 3, 24, 24)
    shifted = x + 0.2  # the same image, brighter: identical high frequencies
    with torch.no_grad():
        a, b = net(x), net(shifted)
    assert a.shape == (2, 1, 24, 24) and 0 < a.min() and a.max() < 1
    assert torch.allclose(a, b, atol=1e-5)
    assert torch.allclose(net.high_frequencies(torch.full((1, 3, 8, 8), 0.7)), torch.full((1, 3, 8, 8), 0.5))
