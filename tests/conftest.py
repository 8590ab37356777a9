import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import dml_basicsr  # noqa: F401  (registers everything before any test builds a component)

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = PROJECT_ROOT.parent / 'shared' / 'data'


def tiny_dml_options(name, total_iter=4):
    """The demo option file shrunk to seconds: small images, tiny net, few iterations."""
    with open(PROJECT_ROOT / 'options' / 'demo_dml_lens_x2.yml') as f:
        opt = yaml.safe_load(f)
    opt['name'] = name
    train, val = opt['datasets']['train'], opt['datasets']['val']
    train.update(images=['camera', 'brick'], max_size=96, gt_size=32, batch_size_per_gpu=2, dataset_enlarge_ratio=4)
    val.update(max_size=64, kernel_grid=2)
    opt['network_g'].update(num_basis=3, kernel_size=7, num_feat=8)
    opt['train']['total_iter'] = total_iter
    opt['train']['scheduler']['milestones'] = [1000]
    opt['val']['val_freq'] = 2
    opt['logger'].update(print_freq=1, save_checkpoint_freq=2)
    return opt


def write_yaml(path, opt):
    with open(path, 'w') as f:
        yaml.safe_dump(opt, f, sort_keys=False)
    return path


def run_cli(args, cwd, timeout=300):
    """Run ``python -m dml_basicsr <args>`` in ``cwd``; return the completed process."""
    env = dict(os.environ, PYTHONPATH=str(PROJECT_ROOT), CUDA_VISIBLE_DEVICES='')
    return subprocess.run([sys.executable, '-m', 'dml_basicsr', *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture
def shared_data():
    if not SHARED_DATA.is_dir():
        pytest.skip(f'real data folder {SHARED_DATA} is absent')
    return SHARED_DATA
