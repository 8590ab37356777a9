"""dml_basicsr.commands.train_test (``basicsr train``/``test``): real runs on tiny embedded data: checkpoints, metrics,
resume; a corrupt image met in a DataLoader worker is one line; one run of a name at a time.

One training and the resumed run are fresh ``python -m dml_basicsr`` processes; the rest run in-process.
"""
import csv
import os
import re
import subprocess
import sys

import pytest
import torch

from conftest import (PROJECT_ROOT, assert_refused, last_error_line, run_cli, run_cli_subprocess, save_dmlnet,
                      tiny_dml_options, write_pngs, write_yaml)


def _log_text(exp_dir):
    return ''.join(p.read_text() for p in sorted(exp_dir.glob('train_*.log')))


def test_train_writes_checkpoint_metrics_and_pictures(tmp_path):
    opt_file = write_yaml(tmp_path / 'tiny.yml', tiny_dml_options('tiny_dml'))
    proc = run_cli_subprocess(['train', '-opt', str(opt_file)], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    exp = tmp_path / 'experiments' / 'tiny_dml'
    assert (exp / 'models' / 'net_g_4.pth').is_file()
    assert (exp / 'training_states' / '4.state').is_file()
    params = torch.load(exp / 'models' / 'net_g_latest.pth', map_location='cpu')['params']
    assert params['basis'].shape == (3, 7, 7)

    psnrs = [float(v) for v in re.findall(r'# psnr: ([0-9.]+)', _log_text(exp))]
    assert len(psnrs) >= 2 and all(20 < p < 80 for p in psnrs)
    assert re.search(r'# kernel_err: [0-9.]+', _log_text(exp))

    with open(exp / 'metrics_SkimageLensVal.csv') as f:
        rows = list(csv.DictReader(f))
    assert [r['iter'] for r in rows] == ['2', '4']  # BasicSR's extra validation after the last iteration: skipped
    assert 'Validation SkimageLensVal of iteration 4 done already: not repeated' in _log_text(exp)
    assert set(rows[0]) >= {'iter', 'image', 'psnr', 'ssim', 'kernel_err'}

    vis = exp / 'visualization' / 'SkimageLensVal'
    for stem in ('basis_4', 'weights_skimage_coffee_4', 'kernels_true_vs_learned_skimage_coffee_4'):
        assert (vis / f'{stem}.png').is_file(), sorted(p.name for p in vis.iterdir())
    assert not (PROJECT_ROOT / 'experiments' / 'tiny_dml').exists()


def test_auto_resume_continues_from_saved_iteration_on_cpu(tmp_path):
    opt_file = write_yaml(tmp_path / 'tiny.yml', tiny_dml_options('tiny_resume', total_iter=2))
    first = run_cli(['train', '-opt', str(opt_file)], cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    # Resumed by a fresh process: nothing but the files on disk carries over.
    second = run_cli_subprocess(['train', '-opt', str(opt_file), '--auto_resume', '--force_yml',
                                 'train:total_iter=4'], cwd=tmp_path)
    assert second.returncode == 0, second.stderr[-3000:]
    exp = tmp_path / 'experiments' / 'tiny_resume'
    log = _log_text(exp)
    assert 'Resuming training from epoch' in log and 'iter: 2.' in log
    assert 'Start training from epoch: 0, iter: 2' in log or re.search(r'Start training from epoch: \d+, iter: 2\b', log)
    iters = [int(v) for v in re.findall(r'iter:\s+(\d+), lr', log)]
    assert iters and min(i for i in iters if i > 2) == 3  # the second run went on at 3, not 1
    assert (exp / 'models' / 'net_g_4.pth').is_file()


def test_the_last_weights_are_validated_once_under_their_own_iteration(tmp_path):
    """val_freq 2, total_iter 3: BasicSR validates at 2 and, after the loop, at 4 (total_iter + 1) the weights of
    iteration 3; the CSV calls them 3. The ETA of the last iteration is 0, not BasicSR's '-1 day, 23:59:59'."""
    opt = tiny_dml_options('tiny_last', total_iter=3)
    opt['logger']['print_freq'] = 1
    proc = run_cli(['train', '-opt', str(write_yaml(tmp_path / 'tiny.yml', opt))], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    exp = tmp_path / 'experiments' / 'tiny_last'
    with open(exp / 'metrics_SkimageLensVal.csv') as f:
        assert [r['iter'] for r in csv.DictReader(f)] == ['2', '3']
    log = _log_text(exp)
    assert re.search(r'iter:\s+3, lr:.*\[eta: 0:00:00,', log) and 'day' not in log


def test_basicsrs_paired_image_dataset_trains_dml_on_plain_hr_and_lr_folders(tmp_path):
    """docs/datasets.md: your own pairs in datasets/my_camera/HR and LR train DMLModel through BasicSR's own
    PairedImageDataset."""
    import cv2
    import numpy as np

    rng = np.random.default_rng(0)
    for folder in ('HR', 'LR'):
        (tmp_path / 'datasets' / 'my_camera' / folder).mkdir(parents=True)
    for i in range(4):
        hr = cv2.GaussianBlur(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8), (5, 5), 1)
        cv2.imwrite(str(tmp_path / 'datasets' / 'my_camera' / 'HR' / f'{i}.png'), hr)
        cv2.imwrite(str(tmp_path / 'datasets' / 'my_camera' / 'LR' / f'{i}.png'),
                    cv2.resize(hr, (32, 32), interpolation=cv2.INTER_AREA))
    opt = tiny_dml_options('my_camera', total_iter=2)
    opt['network_g']['num_in_ch'] = 3
    opt['datasets'] = {'train': dict(name='mine', type='PairedImageDataset', dataroot_gt='datasets/my_camera/HR',
                                     dataroot_lq='datasets/my_camera/LR', io_backend={'type': 'disk'},
                                     filename_tmpl='{}', gt_size=32, use_hflip=True, use_rot=False,
                                     num_worker_per_gpu=0, batch_size_per_gpu=2)}
    opt.pop('val')
    proc = run_cli(['train', '-opt', str(write_yaml(tmp_path / 'mine.yml', opt))], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (tmp_path / 'experiments' / 'my_camera' / 'models' / 'net_g_2.pth').is_file()


def test_console_script_help_lists_subcommands():
    proc = subprocess.run([sys.executable, '-m', 'dml_basicsr', '--help'], capture_output=True, text=True,
                          env={'PYTHONPATH': str(PROJECT_ROOT), 'PATH': ''})
    assert proc.returncode == 0
    for command in ('train', 'test', 'synthesize', 'report', 'visualize'):
        assert f'    {command}' in proc.stdout, command


def test_train_help_shows_basicsr_flags(tmp_path):
    proc = run_cli(['train', '--help'], cwd=tmp_path)
    assert proc.returncode == 0
    for flag in ('-opt', '--launcher', '--auto_resume', '--debug', '--local_rank', '--force_yml'):
        assert flag in proc.stdout


def test_missing_realsr_dataset_is_one_clear_error_and_writes_nothing(tmp_path):
    proc = run_cli(['train', '-opt', str(PROJECT_ROOT / 'options' / 'train_dml_x4.yml')], cwd=tmp_path)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and 'Traceback' not in proc.stderr
    assert str(tmp_path / 'datasets' / 'RealSR_V3' / 'Canon' / 'Train' / '4') in lines[0]
    assert 'Canon_001_HR.png' in lines[0] and 'Canon_001_LR4.png' in lines[0]
    assert not (tmp_path / 'experiments').exists() and not (tmp_path / 'tb_logger').exists()


def test_force_yml_is_seen_by_the_preflight_check(tmp_path):
    opt_file = write_yaml(tmp_path / 'tiny.yml', tiny_dml_options('tiny_force'))
    proc = run_cli(['train', '-opt', str(opt_file), '--force_yml', "datasets:val:images=['nosuchimage']"], cwd=tmp_path)
    assert proc.returncode == 2
    assert 'nosuchimage' in proc.stderr and not (tmp_path / 'experiments').exists()


def test_missing_option_file_is_one_clear_error(tmp_path):
    proc = run_cli(['train', '-opt', 'nope.yml'], cwd=tmp_path)
    assert proc.returncode == 2 and proc.stderr.strip() == 'basicsr train: error: option file not found: nope.yml'


def test_corrupt_image_in_a_dataloader_worker_is_one_line(tmp_path):
    root = tmp_path / 'City100'
    write_pngs(root, names=('001H.png', '001L.png', '002H.png', '002L.png'), size=(64, 64))
    for name in ('001H.png', '002H.png'):
        (root / name).write_bytes(b'not a png')  # listed fine by the preflight, fails when a worker decodes it
    opt = tiny_dml_options('workers')
    opt.update(scale=1, network_g=dict(opt['network_g'], scale=1))
    opt['datasets']['train'] = dict(name='City100_train', type='City100Dataset', dataroot=str(root), gt_size=32,
                                    color='y', batch_size_per_gpu=2, num_worker_per_gpu=2, dataset_enlarge_ratio=2)
    proc = run_cli(['train', '-opt', str(write_yaml(tmp_path / 'opt.yml', opt))], cwd=tmp_path)
    line = last_error_line(proc, 'train')
    assert proc.returncode == 2 and 'H.png: cannot decode image' in line and 'Caught' not in proc.stderr


@pytest.mark.parametrize('command', ['train', 'test'])
def test_a_second_run_of_one_name_is_refused_while_the_first_runs(tmp_path, command):
    from dml_basicsr.utils.output_folder import run_lock

    opt = tiny_dml_options('busy', total_iter=2)
    if command == 'test':
        save_dmlnet(tmp_path / 'dml.pth')
        opt['path'] = {'pretrain_network_g': str(tmp_path / 'dml.pth'), 'strict_load_g': True}
        opt['network_g'].update(num_basis=3, kernel_size=7, num_feat=8)
        del opt['datasets']['train']
    opt_file = write_yaml(tmp_path / 'opt.yml', opt)
    parent = 'experiments' if command == 'train' else 'results'
    with run_lock(str(tmp_path / parent), 'busy', f'basicsr {command}'):
        proc = run_cli([command, '-opt', str(opt_file)], cwd=tmp_path)
        assert_refused(proc, command, f'{parent}/busy is being written by another basicsr {command} now')
        assert sorted(os.listdir(tmp_path / parent)) == ['.busy.lock']
    proc = run_cli([command, '-opt', str(opt_file)], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
