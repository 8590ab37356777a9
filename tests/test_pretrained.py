"""dml_basicsr.degradation.pretrained_models: the DML models shipped in the package: listed, loadable, runnable on
embedded photographs, and their recorded validation figures reproduced on the real pairs (City100, RealSR crops)
when ../shared/data is present; their list is read as plain data, and a damaged install is one line."""
import os
import re
import shutil

import cv2
import numpy as np
import pytest
import torch
import yaml
from basicsr.utils import tensor2img
from basicsr.utils.registry import DATASET_REGISTRY

from conftest import (CODE_TAGS, expect_option_error, hostile, one_error_line, run_cli, sr_options, tiny_dml_options,
                      write_yaml)
from dml_basicsr import DMLDegradation
from dml_basicsr.data.embedded import load_embedded
from dml_basicsr.data.image_io import read_image
from dml_basicsr.degradation.pretrained_models import pretrained_manifest, pretrained_path
from dml_basicsr.models.per_image_metrics import image_metrics
from dml_basicsr.visualization.paper_figures import degradation_figures

MANIFEST = pretrained_manifest()
NAMES = sorted(MANIFEST)
RECORDED_METRICS = {
    'psnr': dict(type='calculate_psnr', crop_border=7, test_y_channel=True),
    'ssim': dict(type='calculate_ssim', crop_border=7, test_y_channel=True),
}


def validation_set(name, root, scale):
    """Two scenes of a shipped model's validation set, read as its training validated them."""
    if name.startswith('realsr'):
        return DATASET_REGISTRY.get('RealSRDataset')(dict(
            name='RealSRcrops_val', phase='val', scale=scale, dataroot=str(root / 'RealSR_V3_x4_crops'),
            split='Train', id_range=[31, 31], color='y'))
    return DATASET_REGISTRY.get('City100Dataset')(dict(
        name='City100_val', phase='val', scale=scale, dataroot=str(root / 'City100_NikonD5500'), id_range=[31, 32],
        color='y', lr_downscale=scale))


def test_the_shipped_models_are_listed_by_the_error():
    assert NAMES == ['city100-nikon-x1', 'city100-nikon-x2', 'realsr-x4']
    with pytest.raises(ValueError, match='available: city100-nikon-x1, city100-nikon-x2, realsr-x4'):
        DMLDegradation.pretrained()
    with pytest.raises(ValueError, match="unknown pretrained DML model 'nope'"):
        DMLDegradation.pretrained('nope')


@pytest.mark.parametrize('name', NAMES)
def test_shipped_model_is_small_documented_and_degrades_embedded_photos(name):
    entry = MANIFEST[name]
    assert os.path.getsize(pretrained_path(name)) == entry['bytes'] < 2_000_000
    source = 'RealSR' if name.startswith('realsr') else 'City100'
    assert source in entry['data'] and entry['license'] and entry['command'].startswith('basicsr train')
    assert ('MIT' in entry['license']) == (source == 'City100')  # RealSR: research use
    deg = DMLDegradation.pretrained(name, noise_sigma=0)
    assert deg.scale == entry['scale'] and deg.net.num_basis == entry['num_basis']
    hr = torch.from_numpy(load_embedded('astronaut')[:128, 200:328, ::-1].copy()).permute(2, 0, 1)[None]
    lr = deg(hr)  # RGB through the Y-trained weights
    s = deg.scale
    assert lr.shape == (1, 3, 128 // s, 128 // s) and torch.isfinite(lr).all()
    # A camera blur keeps the local brightness: the LR is close to the HR averaged over s x s blocks.
    block_mean = torch.nn.functional.avg_pool2d(hr, s) if s > 1 else hr
    assert (lr - block_mean).abs().mean() < 0.05
    noisy = DMLDegradation.pretrained(name, noise_sigma=5.0, seed=0)(hr)
    assert 3.5 / 255 < (noisy - lr).std() < 6 / 255


@pytest.mark.parametrize('name', NAMES)
def test_recorded_validation_figures_on_the_real_pairs(name, shared_data):
    entry = MANIFEST[name]
    recorded = entry['validation']['last']['per_image']
    dataset = validation_set(name, shared_data, entry['scale'])
    net = DMLDegradation.pretrained(name, noise_sigma=0).net
    for item in dataset:
        image = os.path.splitext(os.path.basename(item['gt_path']))[0]
        with torch.no_grad():
            out = net(item['gt'][None])
        got = image_metrics(tensor2img([out]), tensor2img([item['lq'][None]]), RECORDED_METRICS)
        assert got['psnr'] == pytest.approx(recorded[image]['psnr'], abs=0.01), image
        assert got['ssim'] == pytest.approx(recorded[image]['ssim'], abs=1e-3), image


def test_shipped_models_manifest_is_read_safely(tmp_path, monkeypatch):
    from dml_basicsr.degradation import pretrained_models
    from dml_basicsr.utils.checkpoint import CheckpointError

    marker = tmp_path / 'MARKER'
    (tmp_path / 'pretrained').mkdir()
    (tmp_path / 'pretrained' / 'models.yml').write_text(f'x: {hostile(CODE_TAGS[0], marker)}\n')
    monkeypatch.setattr(pretrained_models, '_folder', lambda: tmp_path / 'pretrained')
    with pytest.raises(CheckpointError, match='models.yml: .*Python object'):
        pretrained_models.pretrained_manifest()
    assert not marker.exists()


@pytest.fixture
def damaged_install(tmp_path, monkeypatch):
    """The shipped models copied to tmp_path/pretrained, with pretrained_models reading them there."""
    from dml_basicsr.degradation import pretrained_models

    folder = tmp_path / 'pretrained'
    shutil.copytree(pretrained_models._folder(), folder)
    monkeypatch.setattr(pretrained_models, '_folder', lambda: folder)
    return folder


@pytest.mark.parametrize('damage, fragment', [
    (lambda f: (f / 'city100_nikon_x2.pth').unlink(), "weights of the shipped model 'city100-nikon-x2' are missing"),
    (lambda f: (f / 'models.yml').unlink(), 'the list of shipped models is missing'),
    (lambda f: (f / 'models.yml').write_text('- just\n- a list\n'), 'not a list of shipped models'),
    (lambda f: (f / 'models.yml').write_text('city100-nikon-x2: {file: 3}\n'), 'not a list of shipped models'),
    (lambda f: (f / 'models.yml').write_text('city100-nikon-x2: [unclosed\n'), 'models.yml'),
])
def test_a_damaged_install_is_one_line(tmp_path, damaged_install, damage, fragment):
    from dml_basicsr.degradation import DMLDegradation
    from dml_basicsr.utils.checkpoint import CheckpointError

    assert (damaged_install / 'city100_nikon_x2.pth').is_file()
    damage(damaged_install)
    with pytest.raises(CheckpointError, match=re.escape(fragment)):
        DMLDegradation.pretrained('city100-nikon-x2')
    opt = tiny_dml_options('damaged')
    opt['model_type'] = 'OnlineSynthesisSRModel'
    opt['datasets']['train'] = dict(name='s', type='OnlineSynthesisDataset', images=['camera', 'brick'], gt_size=32,
                                    color='y', batch_size_per_gpu=2, num_worker_per_gpu=0)
    opt['degradation'] = {'pretrained': 'city100-nikon-x2'}
    opt['network_g'] = {'type': 'VDSR', 'num_in_ch': 1, 'num_feat': 8, 'num_conv': 3, 'upscale': 2}
    expect_option_error(tmp_path, opt, fragment)


@pytest.mark.parametrize('flags, dml_flag', [(['--pretrained', 'realsr-x4'], '--pretrained'),
                                             (['--checkpoint', 'realsr-x4'], '--dml')])
def test_synthesize_and_visualize_take_a_shipped_model_by_name(tmp_path, flags, dml_flag):
    """``--checkpoint NAME`` (no such file) means the shipped model, as ``--pretrained NAME`` does; its own fitted
    noise comes with it. visualize takes it as ``--dml NAME`` and as ``--pretrained NAME``."""
    (tmp_path / 'in').mkdir()
    rng = np.random.default_rng(0)
    cv2.imwrite(str(tmp_path / 'in' / 'a.png'), cv2.GaussianBlur(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8),
                                                                 (5, 5), 1))
    proc = run_cli(['synthesize', '--input', 'in', '--output', 'out', *flags, '--noise', 'fitted', '--no-progress'],
                   cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    record = yaml.safe_load((tmp_path / 'out' / 'synthesis.yml').read_text())
    assert record['checkpoint'] == str(pretrained_path('realsr-x4'))
    assert record['noise'] == 'fitted (shipped with realsr-x4)' and record['scale'] == 4
    assert cv2.imread(str(tmp_path / 'out' / 'LR' / 'a.png')).shape == (16, 16, 3)
    proc = run_cli(['visualize', '--image', 'in/a.png', '--output', 'fig', dml_flag, 'realsr-x4'], cwd=tmp_path)
    assert proc.returncode == 0 and (tmp_path / 'fig' / 'basis.png').is_file(), proc.stderr[-2000:]
    basis = cv2.imread(str(tmp_path / 'fig' / 'basis.png'), cv2.IMREAD_UNCHANGED)
    net = DMLDegradation.pretrained('realsr-x4').net
    expected = degradation_figures(net, read_image(str(tmp_path / 'in' / 'a.png')), None, 4)['basis.png']
    assert basis.shape == expected.shape and (basis == expected).all()  # realsr-x4's own basis


def test_from_checkpoint_takes_a_shipped_name_and_a_file_of_that_name_wins(tmp_path, monkeypatch):
    by_name = DMLDegradation.from_checkpoint('realsr-x4', noise='fitted', seed=0)
    shipped = DMLDegradation.pretrained('realsr-x4', noise='fitted', seed=0)
    hr = torch.rand(1, 3, 32, 32)
    assert by_name.noise == 'fitted' and torch.equal(by_name(hr), shipped(hr))  # the same weights and fitted noise
    monkeypatch.chdir(tmp_path)
    shutil.copy(pretrained_path('city100-nikon-x2'), tmp_path / 'realsr-x4')
    assert DMLDegradation.from_checkpoint('realsr-x4').scale == 2  # the file in the working folder, not the x4 model


def test_option_sections_and_the_api_take_a_shipped_name_as_checkpoint(tmp_path):
    from dml_basicsr.commands.preflight import check_option_file
    from dml_basicsr.degradation import build_degradation
    from dml_basicsr.degradation.sources import describe_degradation
    from dml_basicsr.integrations.degradation_options import component_degradation

    section = {'checkpoint': 'city100-nikon-x2', 'noise_sigma': 0}
    deg = build_degradation(section)
    assert deg.scale == 2 and 'city100-nikon-x2 (sha256 ' + MANIFEST['city100-nikon-x2']['sha256'] in \
        describe_degradation(section, deg)
    assert component_degradation('DMLDegrade', {'checkpoint': 'realsr-x4', 'pretrained': None}).scale == 4
    opt = check_option_file(str(write_yaml(tmp_path / 'opt.yml', sr_options(tmp_path, 'city100-nikon-x2'))),
                            command='train')
    assert opt['degradation']['checkpoint'] == 'city100-nikon-x2'
    # the name is the shipped x4 model, checked against the x2 patches like any checkpoint
    expect_option_error(tmp_path, sr_options(tmp_path, 'realsr-x4'), 'realsr_x4.pth is a x4 DMLNet',
                        'needs x2 LR patches')


UNKNOWN_NAME = ('checkpoint not found', 'nor a shipped model (city100-nikon-x1, city100-nikon-x2, realsr-x4; '
                'use pretrained: NAME / --pretrained NAME for a shipped model)')


def test_an_unknown_name_is_one_line_listing_the_shipped_names(tmp_path):
    from dml_basicsr.degradation.pretrained_models import checkpoint_or_pretrained
    from dml_basicsr.utils.checkpoint import CheckpointError

    for call in (lambda: checkpoint_or_pretrained('realsr-x5'), lambda: DMLDegradation.from_checkpoint('realsr-x5'),
                 lambda: DMLDegradation.from_options({'checkpoint': 'realsr-x5'})):
        with pytest.raises(CheckpointError) as info:
            call()
        assert str(info.value).startswith('realsr-x5: checkpoint not found (') and '\n' not in str(info.value)
        assert all(fragment in str(info.value) for fragment in UNKNOWN_NAME)
    expect_option_error(tmp_path, sr_options(tmp_path, 'realsr-x5'), 'degradation.checkpoint realsr-x5: ',
                        *UNKNOWN_NAME)
    (tmp_path / 'in').mkdir()
    cv2.imwrite(str(tmp_path / 'in' / 'a.png'), np.zeros((16, 16, 3), np.uint8))
    commands = {'synthesize': ['--input', 'in', '--output', 'out', '--checkpoint', 'realsr-x5'],
                'visualize': ['--image', 'in/a.png', '--output', 'out', '--dml', 'realsr-x5'],
                'fit-noise': ['-opt', 'opt.yml', '--output', 'out', '--checkpoint', 'realsr-x5']}
    for command, args in commands.items():
        line = one_error_line(run_cli([command, *args], cwd=tmp_path), command)
        option = {'visualize': '--dml ', 'fit-noise': '--checkpoint ', 'synthesize': ''}[command]
        assert f'error: {option}realsr-x5: checkpoint not found' in line and all(f in line for f in UNKNOWN_NAME), line
        assert not (tmp_path / 'out').exists()
    for command, args in (('visualize', commands['visualize'][:4]), ('fit-noise', commands['fit-noise'][:4])):
        line = one_error_line(run_cli([command, *args, '--pretrained', 'realsr-x5'], cwd=tmp_path), command)
        assert "unknown pretrained DML model 'realsr-x5'; available: city100-nikon-x1" in line
        assert command == 'visualize' or 'error: --pretrained realsr-x5: unknown' in line  # fit-noise names the flag
