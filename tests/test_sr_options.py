"""Every shipped VDSR/RCAN option file trains through ``basicsr train`` (shrunk to 2 iterations).

The option files are used as shipped, with only sizes and iteration counts shrunk; their relative
paths (datasets/RealSR_V3, experiments/DML_RealSRV3_x<s>/...) resolve in a work folder that holds
a tiny fake RealSR V3 layout and a DMLNet checkpoint per scale.
"""
import csv
import re

import pytest
import torch
import yaml

from conftest import PROJECT_ROOT, make_realsr, run_cli, shrink, write_yaml
from dml_basicsr import DMLNet
from dml_basicsr.degradation.pretrained_models import pretrained_path
from dml_basicsr.utils.checkpoint import file_sha256

SR_OPTION_FILES = sorted(p.name for p in (PROJECT_ROOT / 'options').glob('train_*_x[234].yml')
                         if p.name.startswith(('train_vdsr_', 'train_rcan_')))


@pytest.fixture(scope='module')
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp('sr_workspace')
    for scale in (2, 3, 4):
        for split in ('Train', 'Test'):
            make_realsr(root / 'datasets' / 'RealSR_V3', split=split, scale=scale, ids=(1, 2), size=(48, 48))
        models = root / 'experiments' / f'DML_RealSRV3_x{scale}' / 'models'
        models.mkdir(parents=True)
        net = DMLNet(num_in_ch=1, num_basis=2, kernel_size=5, scale=scale, num_feat=4)
        torch.save({'params': net.state_dict()}, models / 'net_g_latest.pth')
    return root


def test_all_variants_are_shipped():
    assert len(SR_OPTION_FILES) == 18  # {VDSR, RCAN} x {Syn-DML, RealSR, RealSR+Syn-DML} x {2, 3, 4}


@pytest.mark.parametrize('name', SR_OPTION_FILES)
def test_option_file_trains_on_cpu(workspace, name):
    with open(PROJECT_ROOT / 'options' / name) as f:
        opt = shrink(yaml.safe_load(f))
    opt_file = write_yaml(workspace / f'shrunk_{name}', opt)
    proc = run_cli(['train', '-opt', str(opt_file)], cwd=workspace)
    assert proc.returncode == 0, proc.stderr[-3000:]
    exp = workspace / 'experiments' / opt['name']
    assert (exp / 'models' / 'net_g_2.pth').is_file()
    log = ''.join(p.read_text() for p in exp.glob('train_*.log'))
    assert re.search(r'# psnr: [0-9.]+', log)
    source = 'pretrained realsr-x4 (sha256 ' if opt['scale'] == 4 else f"experiments/DML_RealSRV3_x{opt['scale']}/"
    assert (f'Online DML degradation from {source}' in log) == ('degradation' in opt)
    # Table 2's metrics, per image, beside the log (4 test pairs).
    with open(exp / f"metrics_{opt['datasets']['val']['name']}.csv") as f:
        rows = list(csv.DictReader(f))
    at_2 = [row for row in rows if row['iter'] == '2']
    assert [row['image'] for row in at_2] == [f'{cam}_00{i}_LR{s}' for cam in ('Canon', 'Nikon') for i in (1, 2)
                                              for s in [opt['scale']]]
    for row in at_2:
        assert 0 < float(row['psnr']) < 100 and 0 < float(row['ssim']) <= 1 and 0 <= float(row['lpips']) < 1


CITY100_SR_FILES = sorted(p.name for p in (PROJECT_ROOT / 'options').glob('train_vdsr_city100_*.yml'))
CITY100_X1 = f"pretrained city100-nikon-x1 (sha256 {file_sha256(pretrained_path('city100-nikon-x1'))})"
CITY100_DEGRADATION_LINES = {
    'train_vdsr_city100_real.yml': None,
    'train_vdsr_city100_syndml.yml': f'Online DML degradation from {CITY100_X1}: scale 1',
    'train_vdsr_city100_gaussian.yml': "Online fixed-kernel degradation {'kernel': 'gaussian', 'sigma': 1.5",
    'train_vdsr_city100_real_syndml.yml': f'Online DML degradation from {CITY100_X1}: scale 1',
}


@pytest.fixture(scope='module')
def city100_project(tmp_path_factory):
    """A project folder whose datasets/City100_NikonD5500 holds tiny fake pairs of scenes 1, 2, 30, 31, 32."""
    import cv2
    import numpy as np
    root = tmp_path_factory.mktemp('city100_sr')
    data = root / 'project' / 'datasets' / 'City100_NikonD5500'
    data.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for number in (1, 2, 30, 31, 32):
        hr = rng.integers(40, 200, (48, 56, 3)).astype(np.uint8)
        cv2.imwrite(str(data / f'{number:03d}H.PNG'), hr)
        cv2.imwrite(str(data / f'{number:03d}L.PNG'), cv2.GaussianBlur(hr, (5, 5), 1.2))
    return root / 'project'


def test_city100_table2_rows_are_shipped():
    assert CITY100_SR_FILES == sorted(CITY100_DEGRADATION_LINES)


@pytest.mark.parametrize('name', CITY100_SR_FILES)
def test_city100_option_file_trains_on_cpu(city100_project, name):
    with open(PROJECT_ROOT / 'options' / name) as f:
        opt = shrink(yaml.safe_load(f))
    proc = run_cli(['train', '-opt', str(write_yaml(city100_project / f'shrunk_{name}', opt))], cwd=city100_project)
    assert proc.returncode == 0, proc.stderr[-3000:]
    exp = city100_project / 'experiments' / opt['name']
    assert (exp / 'models' / 'net_g_2.pth').is_file()
    log = ''.join(p.read_text() for p in exp.glob('train_*.log'))
    expected = CITY100_DEGRADATION_LINES[name]
    assert (expected in log) if expected else 'degradation from' not in log and 'degradation {' not in log
    with open(exp / 'metrics_City100_val.csv') as f:
        rows = [row for row in csv.DictReader(f) if row['iter'] == '2']
    assert [row['image'] for row in rows] == ['031L', '032L']  # the real LR of the held-out scenes
