"""The scripts behind the City100 results of docs/results.md: closed-form kernel fit, test options of trained runs, crops."""
import importlib.util

import numpy as np
import pytest
import torch

from conftest import PROJECT_ROOT
from dml_basicsr.ops import gaussian_kernel
from dml_basicsr.ops.basis_conv import basis_responses


def load_script(name):
    spec = importlib.util.spec_from_file_location(name, PROJECT_ROOT / 'scripts' / f'{name}.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize('scale', [1, 2, 4])
def test_least_squares_fit_recovers_the_kernel_that_made_the_lr(monkeypatch, scale):
    baselines = load_script('kernel_baselines')
    torch.manual_seed(0)
    true_kernel = gaussian_kernel(15, 1.3, 0.9, theta=0.4, dtype=torch.float64) * 0.97
    pairs = []
    for _ in range(3):
        hr = torch.rand(1, 1, 96, 104, dtype=torch.float64)
        pairs.append((hr, basis_responses(hr, true_kernel[None], scale)[:, :, 0]))
    monkeypatch.setattr(baselines, 'training_pairs', lambda *args: iter(pairs))
    sigmas = [1.0, 1.1, 1.2]
    kernel, kernel_mse, gaussian_mse = baselines.fit('city100', 'unused', 1, 3, scale, 15, sigmas)
    assert torch.allclose(kernel, true_kernel, atol=1e-8)
    assert float(kernel_mse) < 1e-15
    assert gaussian_mse.shape == (3,) and bool((gaussian_mse > 1e-6).all())  # no isotropic one fits exactly


def test_least_squares_fit_picks_the_gaussian_that_made_the_lr(monkeypatch):
    baselines = load_script('kernel_baselines')
    hr = torch.rand(1, 1, 60, 60, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    lr = basis_responses(hr, gaussian_kernel(15, 1.5, dtype=torch.float64)[None], 1)[:, :, 0]
    monkeypatch.setattr(baselines, 'training_pairs', lambda *args: iter([(hr, lr)]))
    sigmas = [1.3, 1.4, 1.5, 1.6]
    _, _, gaussian_mse = baselines.fit('city100', 'unused', 1, 1, 1, 15, sigmas)
    assert sigmas[int(gaussian_mse.argmin())] == 1.5 and float(gaussian_mse.min()) < 1e-20


def test_evaluation_options_test_the_trained_network_on_whole_images(tmp_path):
    evaluate = load_script('city100_evaluate')
    experiment = tmp_path / 'City100GPU_DML_x2'
    (experiment / 'models').mkdir(parents=True)
    for name in ('net_g_250.pth', 'net_g_1750.pth', 'net_g_500.pth'):
        (experiment / 'models' / name).write_bytes(b'')
    source = (PROJECT_ROOT / 'options' / 'train_dml_city100.yml').read_text()
    (experiment / 'train_dml_city100.yml').write_text(
        '# GENERATE TIME: now\n# CMD:\n# basicsr train -opt options/train_dml_city100.yml --force_yml '
        'name=City100GPU_DML_x2 scale=2 network_g:scale=2 network_g:num_basis=4 datasets:train:lr_downscale=2 '
        'datasets:val:lr_downscale=2 datasets:val:dataroot=.gpu_data/City100\n' + source)
    opt = evaluate.test_options(str(experiment), 'last', '../data/City100', (31, 40), 'Full_x')
    assert opt['network_g']['scale'] == 2 and opt['network_g']['num_basis'] == 4 and opt['scale'] == 2
    assert opt['datasets']['test_1'] == dict(name='City100_val', type='City100Dataset', dataroot='../data/City100',
                                             id_range=[31, 40], color='y', lr_downscale=2)
    assert opt['path']['pretrain_network_g'].endswith('net_g_1750.pth')
    assert set(opt['val']['metrics']) == {'psnr', 'ssim'} and opt['model_type'] == 'DMLModel'
    (experiment / 'models' / 'net_g_latest.pth').write_bytes(b'')
    assert evaluate.checkpoint_path(str(experiment), 'last').endswith('net_g_latest.pth')


def test_centre_crops_keep_the_lr_grid_phase():
    crops = load_script('city100_center_crops')
    img = np.arange(870 * 1218).reshape(870, 1218)
    crop = crops.center_crop(img, 640)
    top, left = divmod(int(crop[0, 0]), 1218)
    assert crop.shape == (640, 640) and top % 4 == 0 and left % 4 == 0
    assert abs(top - (870 - 640) / 2) < 4 and abs(left - (1218 - 640) / 2) < 4
    with pytest.raises(ValueError, match='smaller than the crop'):
        crops.center_crop(img[:100], 640)
