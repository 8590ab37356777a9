"""examples/ (scripts, not package modules): they run a few steps on the CPU, as their documented commands, and write
only where told; examples/train_plain_pytorch.py validates its arguments."""
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from conftest import PROJECT_ROOT
from dml_basicsr.archs import VDSR
from dml_basicsr.degradation.pretrained_models import pretrained_path

EXAMPLES = Path(__file__).resolve().parents[1] / 'examples'


def load_example(path):
    spec = importlib.util.spec_from_file_location(f'example_{path.stem}', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_plain_pytorch_example_trains_and_saves_only_into_out(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sys, 'dont_write_bytecode', True)
    cwd = tmp_path / 'cwd'
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    example = load_example(EXAMPLES / 'train_plain_pytorch.py')
    out = tmp_path / 'out'
    result = example.main(['--out', str(out), '--iters', '3', '--batch-size', '2', '--patch', '32'])

    printed = capsys.readouterr().out
    assert 'iter     3  l1 ' in printed and 'held-out coffee' in printed
    assert 0 < result['loss'] < 1 and 15 < result['psnr'] < 50 and 15 < result['psnr_bicubic'] < 50
    assert os.listdir(cwd) == [] and os.listdir(out) == ['vdsr_x2.pth']
    net = VDSR(num_in_ch=3, num_out_ch=3, num_feat=32, num_conv=6, upscale=2)
    net.load_state_dict(torch.load(out / 'vdsr_x2.pth', weights_only=True))


def test_mmengine_runner_example_trains_validates_and_writes_only_into_work_dir(tmp_path):
    cwd, work_dir = tmp_path / 'cwd', tmp_path / 'work'
    cwd.mkdir()
    env = {**os.environ, 'PYTHONDONTWRITEBYTECODE': '1'}
    command = [sys.executable, str(EXAMPLES / 'mmengine_sr' / 'train.py'), '--work-dir', str(work_dir), '--iters', '2']
    run = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    log = run.stdout + run.stderr
    assert run.returncode == 0, log[-3000:]

    assert 'Iter(train) [2/2]' in log and 'loss: ' in log
    assert 'Iter(val) [1/1]' in log and 'sr/psnr: ' in log and 'sr/psnr_bicubic: ' in log
    assert os.listdir(cwd) == []
    assert {'config.py', 'iter_2.pth', 'last_checkpoint'} <= set(os.listdir(work_dir))
    state = torch.load(work_dir / 'iter_2.pth', map_location='cpu', weights_only=False)['state_dict']
    assert 'net.conv_last.weight' in state and 'data_preprocessor.degradation.net.basis' in state
    config = (work_dir / 'config.py').read_text()
    assert "dml_basicsr.integrations.mmengine" in config and "type='dml_basicsr.DMLDataPreprocessor'" in config


def test_mmengine_runner_example_trains_the_config_it_is_given(tmp_path):
    """--config: a copy of the example's config with a narrower network (num_feat 8), the shipped x1 model instead
    of x2 (the network's scale 1) and a smaller validation crop, trained for one iteration."""
    text = (EXAMPLES / 'mmengine_sr' / 'config.py').read_text()
    changes = {'num_feat=32': 'num_feat=8', "pretrained='city100-nikon-x2'": "pretrained='city100-nikon-x1'",
               'scale=2,': 'scale=1,', 'crop_size=256': 'crop_size=64'}
    for old, new in changes.items():
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    config, work_dir = tmp_path / 'small.py', tmp_path / 'work'
    config.write_text(text)
    env = {**os.environ, 'PYTHONDONTWRITEBYTECODE': '1'}
    command = [sys.executable, str(EXAMPLES / 'mmengine_sr' / 'train.py'), '--work-dir', str(work_dir), '--iters', '1',
               '--config', str(config)]
    run = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, (run.stdout + run.stderr)[-3000:]
    state = torch.load(work_dir / 'iter_1.pth', map_location='cpu', weights_only=False)['state_dict']
    assert state['net.conv_last.weight'].shape == (3, 8, 3, 3)  # num_feat 8
    x1 = torch.load(pretrained_path('city100-nikon-x1'), map_location='cpu', weights_only=True)['params']
    assert torch.equal(state['data_preprocessor.degradation.net.basis'], x1['basis'])
    assert "pretrained='city100-nikon-x1'" in (work_dir / 'small.py').read_text()


def test_both_examples_take_another_degradation_by_name(tmp_path, capsys):
    """--pretrained realsr-x4 (x4) in place of the default city100-nikon-x2: the network's scale follows it."""
    example = load_example(EXAMPLES / 'train_plain_pytorch.py')
    example.main(['--out', str(tmp_path / 'plain'), '--pretrained', 'realsr-x4', '--iters', '1', '--batch-size', '1',
                  '--patch', '32'])
    assert os.listdir(tmp_path / 'plain') == ['vdsr_x4.pth']
    mm = load_example(EXAMPLES / 'mmengine_sr' / 'train.py')
    from mmengine.config import Config
    cfg = Config.fromfile(mm.CONFIG)
    mm.use_pretrained(cfg, 'realsr-x4')
    sections = list(mm.degradation_sections([cfg[key] for key in cfg.keys()]))
    assert len(sections) == 2 and all(s['pretrained'] == 'realsr-x4' for s in sections)
    assert cfg.model.scale == 4
    with pytest.raises(ValueError, match="unknown pretrained DML model 'nosuch'; available: city100-nikon-x1"):
        mm.use_pretrained(Config.fromfile(mm.CONFIG), 'nosuch')


@pytest.mark.parametrize('args, fragment', [
    (['--iters', '0'], '--iters must be >= 1'),
    (['--batch-size', '-2'], '--batch-size must be >= 1'),
    (['--patch', '47'], '--patch must be a multiple'),
    (['--lr', 'nan'], '--lr must be a finite number > 0'),
    (['--noise-sigma', 'inf'], '--noise-sigma must be a finite number >= 0'),
])
def test_the_plain_pytorch_example_validates_its_arguments(tmp_path, capsys, args, fragment):
    sys.path.insert(0, str(PROJECT_ROOT / 'examples'))
    try:
        import train_plain_pytorch
    finally:
        sys.path.remove(str(PROJECT_ROOT / 'examples'))
    with pytest.raises(SystemExit) as exit_info:
        train_plain_pytorch.main(['--out', str(tmp_path / 'out'), *args])
    assert exit_info.value.code == 2 and fragment in capsys.readouterr().err
    assert not (tmp_path / 'out').exists()
