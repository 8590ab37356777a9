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

SR_OPTION_FILES = sorted(p.name for p in (PROJECT_ROOT / 'options').glob('train_*_x[234].yml')
                         if not p.name.startswith('train_dml_'))


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
    assert ('Online DML degradation from experiments/DML_RealSRV3_x' in log) == ('degradation' in opt)
    # Table 2's metrics, per image, beside the log (4 test pairs).
    with open(exp / f"metrics_{opt['datasets']['val']['name']}.csv") as f:
        rows = list(csv.DictReader(f))
    at_2 = [row for row in rows if row['iter'] == '2']
    assert [row['image'] for row in at_2] == [f'{cam}_00{i}_LR{s}' for cam in ('Canon', 'Nikon') for i in (1, 2)
                                              for s in [opt['scale']]]
    for row in at_2:
        assert 0 < float(row['psnr']) < 100 and 0 < float(row['ssim']) <= 1 and 0 <= float(row['lpips']) < 1
