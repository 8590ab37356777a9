"""dml_basicsr.archs.direct_arch, directkpn_arch and kernel_baselines_arch: ablation and baseline degradation archs:
operator contract (FixedKernelNet refuses options that make no kernel), and training/testing via the CLI."""
import csv

import pytest
import torch
from basicsr.utils.matlab_functions import imresize

from conftest import run_cli, tiny_dml_options, write_yaml
from dml_basicsr.archs import DirectKPN, DirectNet, FixedKernelNet, UniformKernelNet
from dml_basicsr.ops import pixel_kernels


@pytest.mark.parametrize('scale', [2, 3, 4])
def test_fixed_bicubic_matches_matlab_imresize_inside(scale):
    x = torch.rand(1, 1, 60, 60)
    out = FixedKernelNet(scale=scale)(x)
    ref = imresize(x[0].clone(), 1 / scale)
    b = 12 // scale  # MATLAB pads symmetrically, the operator by reflection: compare away from borders
    assert out.shape[-2:] == ref.shape[-2:]
    assert torch.allclose(out[0, :, b:-b, b:-b], ref[:, b:-b, b:-b], atol=1e-5)


@pytest.mark.parametrize('scale', [1, 2, 3])
def test_fixed_identity_is_plain_subsampling(scale):
    x = torch.rand(2, 1, 13, 17)
    assert torch.equal(FixedKernelNet(scale=scale, kernel='identity')(x), x[:, :, ::scale, ::scale])
    with pytest.raises(ValueError, match="'bicubic', 'gaussian' or 'identity'"):
        FixedKernelNet(kernel='box')


@pytest.mark.parametrize('scale', [1, 2, 3, 4])
def test_fixed_gaussian_is_centred_on_the_lr_pixel_centre_as_bicubic(scale):
    def centroid(kernel):
        kernel = kernel.double()
        r = torch.arange(kernel.shape[-1], dtype=torch.float64) - kernel.shape[-1] // 2
        return float((kernel.sum(1) * r).sum() / kernel.sum()), float((kernel.sum(0) * r).sum() / kernel.sum())

    gaussian = FixedKernelNet(scale=scale, kernel='gaussian', sigma=1.2, kernel_size=15).kernel()
    bicubic = FixedKernelNet(scale=scale, kernel='bicubic').kernel()  # its default size holds the whole support
    assert centroid(gaussian) == pytest.approx(((scale - 1) / 2,) * 2, abs=1e-6)
    assert centroid(bicubic) == pytest.approx(((scale - 1) / 2,) * 2, abs=1e-6)
    # On a ramp, both give the HR value at the LR pixel's centre, the mean of its s x s block.
    ramp = torch.arange(72.).repeat(72, 1)[None, None] / 72
    lr = FixedKernelNet(scale=scale, kernel='gaussian', sigma=1.2, kernel_size=15)(ramp)
    block_mean = torch.nn.functional.avg_pool2d(ramp, scale)
    assert torch.allclose(lr[..., 4:-4, 4:-4], block_mean[..., 4:-4, 4:-4], atol=1e-5)


def test_directkpn_applies_its_predicted_kernel_per_pixel():
    net = DirectKPN(kernel_size=5, scale=2, num_feat=8)
    hr = torch.rand(1, 1, 16, 18)
    with torch.no_grad():
        k = net.predict_kernels(hr)
        out = net(hr)
        kernels = pixel_kernels(net.one_hot, k)  # (1, H, W, 5, 5)
        padded = torch.nn.functional.pad(hr, (2, 2, 2, 2), mode='reflect')
        y, x = 6, 10
        manual = (padded[0, 0, y:y + 5, x:x + 5] * kernels[0, y, x]).sum()
        assert torch.allclose(out[0, 0, y // 2, x // 2], manual, atol=1e-6)
        at = net.kernels_at(hr, torch.tensor([[y, x]]))
        assert torch.allclose(at[0, 0], kernels[0, y, x])


def test_initial_ablations_roughly_preserve_brightness():
    hr = torch.full((1, 1, 32, 32), 0.5)
    with torch.no_grad():
        for net in (DirectKPN(kernel_size=5, num_feat=8), UniformKernelNet(kernel_size=5)):
            assert abs(net(hr).mean().item() - 0.5) < 0.05
        assert DirectNet(scale=2, num_feat=8)(hr).shape == (1, 1, 16, 16)


ABLATION_NETS = {
    'DMLNet': dict(type='DMLNet', num_in_ch=1, num_basis=3, kernel_size=7, scale=2, num_feat=8),
    'DirectNet': dict(type='DirectNet', num_in_ch=1, scale=2, num_feat=8),
    'DirectKPN': dict(type='DirectKPN', num_in_ch=1, kernel_size=7, scale=2, num_feat=8),
    'UniformKernelNet': dict(type='UniformKernelNet', num_in_ch=1, kernel_size=7, scale=2),
}


def as_test_options(opt, name, pretrain=None):
    """A training option dict turned into a ``basicsr test`` one on its validation set."""
    opt = dict(opt, name=name, datasets={'test_1': opt['datasets']['val']})
    opt['path'] = dict(pretrain_network_g=pretrain, strict_load_g=True)
    for key in ('train', 'logger'):
        opt.pop(key, None)
    return opt


@pytest.mark.parametrize('arch', sorted(ABLATION_NETS))
def test_ablation_trains_and_tests_with_dml_model(tmp_path, arch):
    opt = tiny_dml_options(f'tiny_{arch}', total_iter=2)
    opt['network_g'] = ABLATION_NETS[arch]
    proc = run_cli(['train', '-opt', str(write_yaml(tmp_path / 'opt.yml', opt))], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    exp = tmp_path / 'experiments' / f'tiny_{arch}'
    assert (exp / 'models' / 'net_g_2.pth').is_file()
    with open(exp / 'metrics_SkimageLensVal.csv') as f:
        trained = next(csv.DictReader(f))
    assert 20 < float(trained['psnr']) < 80
    assert ('kernel_err' in trained) == (arch != 'DirectNet')

    test_opt = as_test_options(opt, f'test_{arch}', str(exp / 'models' / 'net_g_2.pth'))
    proc = run_cli(['test', '-opt', str(write_yaml(tmp_path / 'test.yml', test_opt))], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    with open(tmp_path / 'results' / f'test_{arch}' / 'metrics_SkimageLensVal.csv') as f:
        tested = list(csv.DictReader(f))
    # The same weights on the same image: the test run reproduces the last validation.
    assert len(tested) == 1 and tested[0]['iter'] == f'test_{arch}' and tested[0]['image'] == trained['image']
    assert float(tested[0]['psnr']) == pytest.approx(float(trained['psnr']), abs=1e-6)


def test_fixed_kernel_baseline_through_basicsr_test(tmp_path):
    opt = as_test_options(tiny_dml_options('bicubic_baseline'), 'bicubic_baseline')
    opt['network_g'] = dict(type='FixedKernelNet', num_in_ch=1, scale=2, kernel='bicubic')
    proc = run_cli(['test', '-opt', str(write_yaml(tmp_path / 'opt.yml', opt))], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    with open(tmp_path / 'results' / 'bicubic_baseline' / 'metrics_SkimageLensVal.csv') as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 1 and rows[0]['iter'] == 'bicubic_baseline'
    # The synthetic lens is not bicubic: a fair but clearly imperfect fit.
    assert 25 < float(rows[0]['psnr']) < 45


@pytest.mark.parametrize('kwargs, fragment', [
    (dict(kernel='gaussian', sigma=0), 'sigma must be a finite number > 0'),
    (dict(kernel='gaussian', sigma=float('inf')), 'sigma must be a finite number > 0'),
    (dict(kernel='gaussian', sigma='1'), 'sigma must be a finite number > 0'),
    (dict(kernel='bicubic', scale=2.0), 'scale must be 1, 2, 3 or 4'),
    (dict(kernel='bicubic', kernel_size=0), 'kernel_size must be an odd integer'),
])
def test_fixed_kernel_net_refuses_what_makes_no_kernel(kwargs, fragment):
    from dml_basicsr.archs import FixedKernelNet

    with pytest.raises(ValueError, match=fragment):
        FixedKernelNet(**kwargs)
