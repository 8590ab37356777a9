"""Syn-Real-ESRGAN: RealESRGANDegradation (BasicSR's Real-ESRNet degradation) as a degradation source; Syn-bicubic."""
import contextlib
import inspect
import random
import re
import types

import cv2
import numpy as np
import pytest
import torch
import yaml
from basicsr.data.realesrgan_dataset import RealESRGANDataset
from basicsr.models import realesrnet_model
from basicsr.models.realesrnet_model import RealESRNetModel
from basicsr.utils.diffjpeg import DiffJPEG
from basicsr.utils.matlab_functions import imresize

from conftest import PROJECT_ROOT, expect_option_error, run_cli, shrink, write_yaml
from dml_basicsr.data.embedded import load_embedded
from dml_basicsr.degradation import DMLDegradation, RealESRGANDegradation, build_degradation
from dml_basicsr.degradation.real_esrgan_degradation import REAL_ESRNET_X4PLUS, blur

# The synthesis settings of Real-ESRGAN's options/train_realesrnet_x4plus.yml (xinntao/Real-ESRGAN at 0011624),
# as written there: the top-level RealESRNetModel keys, then those of datasets.train (RealESRGANDataset).
TRAIN_REALESRNET_X4PLUS = """
resize_prob: [0.2, 0.7, 0.1]  # up, down, keep
resize_range: [0.15, 1.5]
gaussian_noise_prob: 0.5
noise_range: [1, 30]
poisson_scale_range: [0.05, 3]
gray_noise_prob: 0.4
jpeg_range: [30, 95]
second_blur_prob: 0.8
resize_prob2: [0.3, 0.4, 0.3]  # up, down, keep
resize_range2: [0.3, 1.2]
gaussian_noise_prob2: 0.5
noise_range2: [1, 25]
poisson_scale_range2: [0.05, 2.5]
gray_noise_prob2: 0.4
jpeg_range2: [30, 95]
blur_kernel_size: 21
kernel_list: ['iso', 'aniso', 'generalized_iso', 'generalized_aniso', 'plateau_iso', 'plateau_aniso']
kernel_prob: [0.45, 0.25, 0.12, 0.03, 0.12, 0.03]
sinc_prob: 0.1
blur_sigma: [0.2, 3]
betag_range: [0.5, 4]
betap_range: [1, 2]
blur_kernel_size2: 21
kernel_list2: ['iso', 'aniso', 'generalized_iso', 'generalized_aniso', 'plateau_iso', 'plateau_aniso']
kernel_prob2: [0.45, 0.25, 0.12, 0.03, 0.12, 0.03]
sinc_prob2: 0.1
blur_sigma2: [0.2, 1.5]
betag_range2: [0.5, 4]
betap_range2: [1, 2]
final_sinc_prob: 0.8
"""


def photo_crops(size=(96, 96), count=4):
    """(count, 3, h, w) float32 RGB crops of scikit-image's astronaut, in [0, 1]."""
    img = torch.from_numpy(np.ascontiguousarray(load_embedded('astronaut')[:, :, ::-1])).permute(2, 0, 1)
    corners = [(50, 200), (200, 150), (300, 300), (380, 380), (0, 0), (250, 0), (100, 350), (400, 100)]
    return torch.stack([img[:, y:y + size[0], x:x + size[1]] for y, x in corners[:count]])


@contextlib.contextmanager
def global_rngs_seeded(seed):
    """Python's, NumPy's and torch's global generators seeded with ``seed`` (as BasicSR's set_random_seed), then
    put back."""
    saved = random.getstate(), np.random.get_state(), torch.get_rng_state()
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    try:
        yield
    finally:
        random.setstate(saved[0])
        np.random.set_state(saved[1])
        torch.set_rng_state(saved[2])


@pytest.mark.parametrize('size', [(96, 96), (96, 128)])
def test_lr_is_hr_over_4_on_the_8bit_grid_in_the_input_dtype(size):
    hr = photo_crops(size, count=2)
    lr = RealESRGANDegradation(seed=0)(hr)
    assert lr.shape == (2, 3, size[0] // 4, size[1] // 4) and lr.dtype == torch.float32 and lr.device == hr.device
    assert lr.min() >= 0 and lr.max() <= 1
    assert torch.allclose(lr * 255, torch.round(lr * 255), atol=1e-4)  # rounded as RealESRNetModel rounds
    lr64 = RealESRGANDegradation(seed=0)(hr.double())
    assert lr64.dtype == torch.float64 and torch.equal(lr64, lr.double())  # computed in float32, as Real-ESRGAN


def test_seed_reproduces_the_lr_and_leaves_the_global_generators_alone():
    hr = photo_crops(count=2)
    saved = random.getstate(), np.random.get_state()[1].copy(), torch.get_rng_state()
    deg = RealESRGANDegradation(seed=3)
    first, second = deg(hr), deg(hr)
    assert random.getstate() == saved[0] and np.array_equal(np.random.get_state()[1], saved[1])
    assert torch.equal(torch.get_rng_state(), saved[2])
    assert torch.equal(first, RealESRGANDegradation(seed=3)(hr))
    assert not torch.equal(first, second)  # its generators move on
    assert not torch.equal(first, RealESRGANDegradation(seed=4)(hr))


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')
def test_cuda_batches_stay_on_cuda_and_the_seed_holds_there():
    hr = photo_crops(count=2).cuda()
    cuda_state = torch.cuda.get_rng_state()
    lr = RealESRGANDegradation(seed=5)(hr)
    assert lr.device == hr.device and lr.shape == (2, 3, 24, 24)
    assert torch.equal(lr, RealESRGANDegradation(seed=5)(hr))
    assert torch.equal(torch.cuda.get_rng_state(), cuda_state)


def test_it_degrades_far_more_than_bicubic_rounding():
    hr = photo_crops(count=8)
    bicubic = torch.stack([imresize(img.clone(), 0.25) for img in hr]).clamp(0, 1)
    lr = RealESRGANDegradation(seed=0)(hr)
    difference = (lr - bicubic).abs().flatten(1).mean(1) * 255  # gray levels; 8-bit rounding alone: ~0.25
    assert difference.min() > 3, difference


def basicsr_dataset(tmp_path):
    """A RealESRGANDataset over one 8x8 PNG (padded to 400x400 there), without flips: its items are kernels."""
    cv2.imwrite(str(tmp_path / 'a.png'), np.full((8, 8, 3), 128, np.uint8))
    (tmp_path / 'meta_info.txt').write_text('a.png\n')
    return RealESRGANDataset(dict(REAL_ESRNET_X4PLUS, io_backend={'type': 'disk'}, dataroot_gt=str(tmp_path),
                                  meta_info=str(tmp_path / 'meta_info.txt'), use_hflip=False, use_rot=False))


def basicsr_lr(dataset, hr, seed, monkeypatch):
    """BasicSR's LR of ``hr``: the kernels of ``len(hr)`` dataset items, then ``RealESRNetModel.feed_data``
    (without USM, crop and pool) on the CPU, all from the global generators seeded with ``seed``."""
    # filter2D views its padded input, which DiffJPEG's output does not allow on the CPU: same values, contiguous.
    monkeypatch.setattr(realesrnet_model, 'filter2D', blur)
    model = types.SimpleNamespace(is_train=True, device=torch.device('cpu'), jpeger=DiffJPEG(differentiable=False),
                                  opt=dict(REAL_ESRNET_X4PLUS, scale=4, gt_usm=False, gt_size=hr.shape[-1]),
                                  _dequeue_and_enqueue=lambda: None)
    with global_rngs_seeded(seed):
        items = [dataset[0] for _ in range(len(hr))]
        batch = {key: torch.stack([item[key] for item in items]) for key in ('kernel1', 'kernel2', 'sinc_kernel')}
        RealESRNetModel.feed_data(model, dict(batch, gt=hr))
    return model.lq


@pytest.mark.parametrize('seed', range(6))
def test_lr_is_basicsrs_real_esrnet_degradation(tmp_path, monkeypatch, seed):
    hr = photo_crops(count=3)
    expected = basicsr_lr(basicsr_dataset(tmp_path), hr, seed, monkeypatch)
    assert torch.equal(RealESRGANDegradation(seed=seed)(hr), expected)


def test_defaults_are_train_realesrnet_x4plus_and_the_keys_basicsr_reads():
    assert REAL_ESRNET_X4PLUS == yaml.safe_load(TRAIN_REALESRNET_X4PLUS)
    assert RealESRGANDegradation.from_options({'scale': 4}).settings == REAL_ESRNET_X4PLUS
    read = re.compile(r"\bopt\['(\w+)'\]")
    dataset_keys = set(read.findall(inspect.getsource(RealESRGANDataset))) - {
        'io_backend', 'dataroot_gt', 'meta_info', 'use_hflip', 'use_rot'}
    model_keys = set(read.findall(inspect.getsource(RealESRNetModel.feed_data))) - {'gt_usm', 'scale', 'gt_size'}
    assert dataset_keys | model_keys == set(REAL_ESRNET_X4PLUS)


def test_overrides_and_bad_options_are_one_clear_error():
    deg = build_degradation({'real_esrgan': {'scale': 2, 'second_blur_prob': 0.0, 'jpeg_range': [60, 90]}, 'seed': 1})
    assert isinstance(deg, RealESRGANDegradation) and deg.scale == 2 and deg.seed == 1
    assert deg.settings['jpeg_range'] == [60, 90] and deg.settings['sinc_prob'] == 0.1
    assert deg(photo_crops(count=1)).shape == (1, 3, 48, 48)
    with pytest.raises(ValueError, match="unknown option 'sinc_probb' of RealESRGANDegradation; did you mean "
                                         "'sinc_prob'"):
        build_degradation({'real_esrgan': {'scale': 4, 'sinc_probb': 0.2}})
    with pytest.raises(ValueError, match=r'degradation.real_esrgan: sinc_prob must be a probability in \[0, 1\]'):
        build_degradation({'real_esrgan': {'sinc_prob': 2}})
    with pytest.raises(ValueError, match='blur_kernel_size must be 21'):
        build_degradation({'real_esrgan': {'blur_kernel_size': 15}})
    with pytest.raises(ValueError, match=r'jpeg_range2 must be a \[low, high\] pair'):
        build_degradation({'real_esrgan': {'jpeg_range2': [30, 100]}})
    with pytest.raises(ValueError, match='degradation: noise_sigma is an option of the DML sources'):
        build_degradation({'real_esrgan': {'scale': 4}, 'noise_sigma': 5})
    with pytest.raises(ValueError, match='seed is given twice'):
        build_degradation({'real_esrgan': {'scale': 4, 'seed': 1}, 'seed': 2})
    with pytest.raises(ValueError, match='it has fixed_kernel, real_esrgan'):
        build_degradation({'real_esrgan': {'scale': 4}, 'fixed_kernel': {'kernel': 'bicubic'}})
    with pytest.raises(ValueError, match='not a DML degradation: build it with'):
        DMLDegradation.from_options({'real_esrgan': {'scale': 4}})


def test_input_must_be_rgb_multiples_of_the_scale_and_large_enough():
    deg = RealESRGANDegradation()
    assert deg.min_side == 76  # the second blur's input (x0.15 at worst) must exceed its 10-pixel padding
    with pytest.raises(ValueError, match=r'RGB batches \(B, 3, H, W\).*got shape \(2, 1, 96, 96\)'):
        deg(torch.rand(2, 1, 96, 96))
    with pytest.raises(ValueError, match='96x98 are not multiples of the scale 4'):
        deg(torch.rand(1, 3, 96, 98))
    with pytest.raises(ValueError, match='each side must be at least 76'):
        deg(torch.rand(1, 3, 72, 96))
    assert RealESRGANDegradation(settings={'second_blur_prob': 0}).min_side == 44  # then only the LR's sinc filter


def real_esrgan_options(name='synrealesrgan', **degradation):
    """The online-SR demo shrunk to 2 CPU iterations, x4 RGB, its degradation Real-ESRGAN's (96x96 HR patches)."""
    with open(PROJECT_ROOT / 'options' / 'demo_vdsr_syndml_x2.yml') as f:
        opt = shrink(yaml.safe_load(f))
    opt.update(name=name, scale=4, degradation=dict(real_esrgan={'scale': 4}, seed=0, **degradation))
    opt['datasets']['train'].update(images=['astronaut', 'chelsea'], color=None, gt_size=96)
    opt['datasets']['val'].update(color=None, gt_size=96)
    opt['network_g'].update(num_in_ch=3, num_out_ch=3, upscale=4)
    return opt


def test_online_sr_trains_on_syn_real_esrgan_pairs(tmp_path):
    opt = real_esrgan_options()
    proc = run_cli(['train', '-opt', str(write_yaml(tmp_path / 'opt.yml', opt))], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    exp = tmp_path / 'experiments' / opt['name']
    assert (exp / 'models' / 'net_g_2.pth').is_file()
    log = ''.join(p.read_text() for p in exp.glob('train_*.log'))
    assert "Online Real-ESRGAN second-order degradation {'scale': 4}: scale 4, seed 0" in log
    assert re.search(r'# psnr: [0-9.]+', log)


def test_preflight_checks_the_real_esrgan_section(tmp_path):
    opt = real_esrgan_options()
    opt['degradation']['real_esrgan'] = {'scale': 2}
    expect_option_error(tmp_path, opt, "degradation: real_esrgan {'scale': 2} is a x2 degradation",
                        'needs x4 LR patches', 'use a degradation of scale 4')
    opt = real_esrgan_options(noise_sigma=5)
    expect_option_error(tmp_path, opt, 'degradation: noise_sigma is an option of the DML sources')
    opt = real_esrgan_options()
    opt['degradation']['real_esrgan']['gray_noise_prb'] = 0.4
    expect_option_error(tmp_path, opt, "degradation.real_esrgan: unknown option 'gray_noise_prb'",
                        "did you mean 'gray_noise_prob'?")
    opt = real_esrgan_options()
    opt['datasets']['train'].update(color='y', gt_size=64)
    opt['datasets']['val']['color'] = 'y'
    opt['network_g'].update(num_in_ch=1, num_out_ch=1)  # a Y network for the Y data: only Real-ESRGAN's RGB is wrong
    expect_option_error(tmp_path, opt, 'datasets.train (gt_size 64, color y)', 'RGB batches')


def test_syn_bicubic_is_matlab_bicubic_plus_noise():
    hr = photo_crops(count=2).double()
    noisy = DMLDegradation.from_options({'fixed_kernel': {'kernel': 'bicubic', 'scale': 4}, 'noise_sigma': 5})(hr)
    assert noisy.shape == (2, 3, 24, 24) and noisy.min() >= 0 and noisy.max() <= 1
    clean = DMLDegradation.from_options({'fixed_kernel': {'kernel': 'bicubic', 'scale': 4}, 'noise_sigma': 0,
                                         'clamp': False})(hr)
    assert 3 < (noisy - clean).std() * 255 < 7  # AWGN sigma 5, a little clipped
    matlab = torch.stack([imresize(img.clone(), 0.25) for img in hr]).double()  # computed in float32 there
    b = 3  # MATLAB pads symmetrically, the operator by reflection: compare away from the border
    assert torch.allclose(clean[..., b:-b, b:-b], matlab[..., b:-b, b:-b], atol=1e-5)
