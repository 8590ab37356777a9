"""Issue 11, "nothing lost, nothing executed, nothing silent": each case seen on the earlier code, now refused
or recovered, with one clear line.

Most runs are in-process (``run_cli``); the tiny trainings take a few seconds each.
"""
import collections
import os
import re
import shutil
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest
import torch
import yaml

from conftest import PROJECT_ROOT, expect_option_error, one_error_line, run_cli, tiny_dml_options, write_yaml
from dml_basicsr.archs import DMLNet
from dml_basicsr.degradation import DMLDegradation
from dml_basicsr.utils.atomic_write import tmp_path as atomic_tmp_path
from dml_basicsr.utils.checkpoint import (TRAINING_STATE_GLOBALS, CheckpointError, UnsafeCheckpointError,
                                          load_state_dict, load_training_state)


def save_dmlnet(path, scale=2, nan=False):
    """A tiny DMLNet checkpoint as ``basicsr train`` writes it; ``nan`` puts a NaN in its basis."""
    torch.manual_seed(0)
    state = DMLNet(num_in_ch=1, num_basis=3, kernel_size=7, scale=scale, num_feat=8).state_dict()
    if nan:
        state['basis'][0, 0, 0] = float('nan')
    torch.save({'params': state}, path)
    return path


def write_pngs(folder, names=('a.png', 'b.png'), size=(40, 44)):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for name in names:
        assert cv2.imwrite(str(folder / name), rng.integers(40, 200, (*size, 3)).astype(np.uint8))
    return folder


def last_error_line(proc, command):
    """The last stderr line of a failed training (BasicSR's log lines come before it); no traceback at all."""
    assert 'Traceback' not in proc.stderr, proc.stderr[-3000:]
    line = proc.stderr.strip().splitlines()[-1]
    assert line.startswith(f'basicsr {command}: error: '), proc.stderr[-3000:]
    return line


def files_of(folder):
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob('*')) if p.is_file()}


# ------------------------------------------------------------------------------ synthesize: data loss, mixing


@pytest.fixture
def synth_dir(tmp_path):
    save_dmlnet(tmp_path / 'dml_x2.pth')
    write_pngs(tmp_path / 'D' / 'HR')
    return tmp_path


def synthesize(cwd, *args, input='D/HR', output='out', checkpoint='dml_x2.pth'):
    return run_cli(['synthesize', '--input', input, '--output', output, '--checkpoint', checkpoint,
                    '--no-progress', *args], cwd=cwd)


@pytest.mark.parametrize('input_dir, output_dir, reason', [
    ('D/HR', 'D', "the input is the output's HR/ or LR/"),
    ('D/HR', 'D/HR', 'the same folder'),
    ('D', 'D/HR/syn', 'the output is inside the input'),
])
def test_synthesize_refuses_an_output_that_overlaps_its_input(synth_dir, input_dir, output_dir, reason):
    before = files_of(synth_dir / 'D')
    proc = synthesize(synth_dir, input=input_dir, output=output_dir)
    assert proc.returncode == 2 and reason in one_error_line(proc, 'synthesize')
    assert files_of(synth_dir / 'D') == before  # the source images untouched, nothing added


def test_synthesize_records_its_parameters_and_refuses_to_mix_runs(synth_dir):
    assert synthesize(synth_dir, '--seed', '1').returncode == 0
    record = yaml.safe_load((synth_dir / 'out' / 'synthesis.yml').read_text())
    assert {k: record[k] for k in ('scale', 'noise_sigma', 'seed', 'color')} == dict(scale=2, noise_sigma=5.0,
                                                                                       seed=1, color='rgb')
    assert len(record['checkpoint_sha256']) == 64
    first = files_of(synth_dir / 'out')

    for args, changed in ((['--seed', '2'], 'seed 1 -> 2'), (['--seed', '1', '--noise-sigma', '3'], 'noise_sigma')):
        proc = synthesize(synth_dir, *args)
        assert proc.returncode == 2 and changed in one_error_line(proc, 'synthesize')
        assert files_of(synth_dir / 'out') == first  # nothing mixed in
    save_dmlnet(synth_dir / 'dml_x2.pth', scale=2, nan=False)  # rewritten: the same bytes, the same sha256
    assert synthesize(synth_dir, '--seed', '1').returncode == 0  # same parameters: resumes (all skipped)
    assert files_of(synth_dir / 'out') == first

    proc = synthesize(synth_dir, '--seed', '2', '--overwrite')
    assert proc.returncode == 0 and '2 written' in proc.stdout
    assert synthesize(synth_dir, '--seed', '2', output='fresh').returncode == 0
    assert files_of(synth_dir / 'out') == files_of(synth_dir / 'fresh')  # everything rewritten with seed 2


def test_synthesize_refuses_pairs_without_a_record(synth_dir):
    write_pngs(synth_dir / 'old' / 'HR', names=('x.png',))
    proc = synthesize(synth_dir, output='old')
    assert proc.returncode == 2 and 'no synthesis.yml' in one_error_line(proc, 'synthesize')
    # --overwrite deletes only the pairs a record lists: x.png is not this command's to delete (issue 17)
    proc = synthesize(synth_dir, '--overwrite', output='old')
    assert proc.returncode == 2 and 'HR/x.png' in one_error_line(proc, 'synthesize')
    assert sorted(p.name for p in (synth_dir / 'old').rglob('*')) == ['HR', 'x.png']


def test_non_finite_dml_checkpoint_is_refused(synth_dir):
    save_dmlnet(synth_dir / 'nan.pth', nan=True)
    proc = synthesize(synth_dir, checkpoint='nan.pth')
    line = one_error_line(proc, 'synthesize')
    assert proc.returncode == 2 and 'nan.pth' in line and 'NaN/inf' in line and 'basis' in line
    assert not (synth_dir / 'out').exists()
    with pytest.raises(CheckpointError, match='nan.pth: 1 of its .* weight tensors hold NaN/inf'):
        DMLDegradation.from_checkpoint(str(synth_dir / 'nan.pth'))


# ---------------------------------------------------------------------------- tiny trainings and their states


def tiny_run(root, name='robust', total_iter=4, **changes):
    """Write the tiny DML option file (saving every 2 iterations) into ``root``; its path."""
    opt = tiny_dml_options(name, total_iter=total_iter)
    opt['val']['val_freq'] = 1000
    for key, value in changes.items():
        opt[key] = value
    return write_yaml(root / f'{name}.yml', opt)


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    """A work folder with a tiny DML training of 4 iterations: states 2 and 4, net_g_2/4.pth."""
    root = tmp_path_factory.mktemp('trained')
    proc = run_cli(['train', '-opt', str(tiny_run(root))], cwd=root)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return root


@pytest.fixture
def work(trained, tmp_path):
    """A private copy of :func:`trained`."""
    shutil.copytree(trained, tmp_path / 'work')
    return tmp_path / 'work'


def resume(work, total_iter=6):
    return run_cli(['train', '-opt', 'robust.yml', '--auto_resume', '--force_yml', f'train:total_iter={total_iter}'],
                   cwd=work)


def log_of(work):
    return ''.join(p.read_text() for p in sorted((work / 'experiments' / 'robust').glob('train_*.log')))


# --------------------------------------------------------------------------- training states: no code executed


class RunsAShellCommand:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f'touch {self.marker}',)


def test_auto_resume_refuses_a_state_that_would_run_code(work):
    marker = work / 'pwned'
    torch.save({'epoch': 0, 'iter': 100, 'optimizers': [RunsAShellCommand(marker)], 'schedulers': []},
               work / 'experiments' / 'robust' / 'training_states' / '100.state')
    proc = resume(work)
    line = last_error_line(proc, 'train')
    assert proc.returncode == 2 and '100.state: refused' in line and 'posix.system' in line
    assert not marker.exists()
    with pytest.raises(UnsafeCheckpointError):
        load_training_state(str(work / 'experiments' / 'robust' / 'training_states' / '100.state'))
    assert not marker.exists()


def _basicsr_states():
    """Training states as BasicSR saves them, of Adam with every scheduler of this package's option files."""
    from basicsr.models.lr_scheduler import CosineAnnealingRestartLR, MultiStepRestartLR

    states = []
    for make in (lambda o: MultiStepRestartLR(o, milestones=[2, 4], gamma=0.5),
                 lambda o: CosineAnnealingRestartLR(o, periods=[2, 2], restart_weights=[1, 0.5], eta_min=1e-7)):
        net = torch.nn.Conv2d(1, 2, 3)
        optimizer = torch.optim.Adam(net.parameters(), lr=1e-3, betas=(0.9, 0.99))
        scheduler = make(optimizer)
        for _ in range(3):
            net(torch.rand(1, 1, 5, 5)).sum().backward()
            optimizer.step()
            scheduler.step()
        states.append({'epoch': 1, 'iter': 3, 'optimizers': [optimizer.state_dict()],
                       'schedulers': [scheduler.state_dict()]})
    return states


def test_real_training_states_load_weights_only(tmp_path):
    assert set(TRAINING_STATE_GLOBALS) == {collections.Counter, collections.OrderedDict}
    for i, state in enumerate(_basicsr_states()):
        path = tmp_path / f'{i}.state'
        torch.save(state, path)
        with torch.serialization.safe_globals(list(TRAINING_STATE_GLOBALS)):
            assert torch.serialization.get_unsafe_globals_in_checkpoint(str(path)) == []
        loaded = load_training_state(str(path))
        assert loaded['iter'] == 3 and loaded['schedulers'][0] == state['schedulers'][0]
    assert isinstance(loaded['optimizers'][0]['state'][0]['exp_avg'], torch.Tensor)


# ------------------------------------------------------------------------------------------ NaN: stop, say it


def test_non_finite_loss_stops_training_and_saves_nothing_of_it(tmp_path):
    opt_file = tiny_run(tmp_path, name='nan_run')
    proc = run_cli(['train', '-opt', str(opt_file), '--force_yml', 'train:optim_g:lr=1000000.0',
                    'logger:save_checkpoint_freq=1'], cwd=tmp_path)
    line = last_error_line(proc, 'train')
    assert proc.returncode == 1 and 'training diverged at iteration 2: l_pix is nan' in line
    models = tmp_path / 'experiments' / 'nan_run' / 'models'
    assert sorted(p.name for p in models.iterdir()) == ['net_g_1.pth'] and 'net_g_1.pth' in line
    load_state_dict(str(models / 'net_g_1.pth'))  # finite
    assert sorted(p.name for p in (models.parent / 'training_states').iterdir()) == ['1.state']


def test_non_finite_weights_are_never_saved():
    from dml_basicsr.models.finite_loss import FiniteLossMixin, TrainingDivergedError

    class Saver:
        def save_network(self, *args):
            raise AssertionError('must not be reached')

    class Model(FiniteLossMixin, Saver):
        opt = {'path': {}, 'train': {'optim_g': {'lr': 1.0}}}
        log_dict = {'l_pix': 0.5}

        def get_bare_model(self, net):
            return net

    net = torch.nn.Conv2d(1, 1, 3)
    with torch.no_grad():
        net.weight[0, 0, 0, 0] = float('inf')
    with pytest.raises(TrainingDivergedError, match=r'at iteration 7: the weights of net_g hold NaN/inf \(weight\)'):
        Model().save_network(net, 'net_g', 7)
    Model.log_dict = {'l_pix': 0.5, 'l_percep': float('inf')}
    with pytest.raises(TrainingDivergedError, match='at iteration 3: l_percep is inf'):
        Model().check_finite_losses(3)


# ------------------------------------------------------------------ atomic checkpoints, resume from intact ones


@pytest.mark.parametrize('broken', ['training_states/4.state', 'models/net_g_4.pth'])
def test_auto_resume_skips_a_truncated_state_or_network(work, broken):
    path = work / 'experiments' / 'robust' / broken
    path.write_bytes(path.read_bytes()[:100])  # what a kill during BasicSR's own torch.save left
    stray = atomic_tmp_path(str(work / 'experiments' / 'robust' / 'models' / 'net_g_6.pth'))
    open(stray, 'wb').close()  # what a kill during an atomic save leaves
    proc = resume(work)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f'--auto_resume skips 4.state: {path}: cannot load' in proc.stderr
    assert 'Resuming training from epoch' in log_of(work) and 'iter: 2.' in log_of(work)
    assert not os.path.exists(stray)
    for iteration in (4, 6):  # remade by the resumed run, intact
        load_state_dict(str(work / 'experiments' / 'robust' / 'models' / f'net_g_{iteration}.pth'))
        assert load_training_state(str(work / 'experiments' / 'robust' / 'training_states' / f'{iteration}.state'))


def test_kill_9_during_training_then_auto_resume(tmp_path):
    opt_file = tiny_run(tmp_path, total_iter=10000)
    env = dict(os.environ, PYTHONPATH=str(PROJECT_ROOT), CUDA_VISIBLE_DEVICES='', OMP_NUM_THREADS='1')
    proc = subprocess.Popen([sys.executable, '-m', 'dml_basicsr', 'train', '-opt', str(opt_file), '--force_yml',
                             'logger:save_checkpoint_freq=1'], cwd=tmp_path, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    states = tmp_path / 'experiments' / 'robust' / 'training_states'
    deadline = time.monotonic() + 240
    try:
        while not (states.is_dir() and len(list(states.glob('*.state'))) >= 3) and time.monotonic() < deadline:
            assert proc.poll() is None, 'the training ended before it was killed'
            time.sleep(0.05)
    finally:
        proc.kill()  # SIGKILL: wherever it is, possibly in the middle of a save
        proc.wait()
    newest = max(int(p.stem) for p in states.glob('*.state'))
    proc = run_cli(['train', '-opt', str(opt_file), '--auto_resume', '--force_yml', f'train:total_iter={newest + 2}'],
                   cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert re.search(r'Resuming training from epoch: \d+, iter: \d+\.', log_of(tmp_path))
    models = tmp_path / 'experiments' / 'robust' / 'models'
    assert not [p for p in [*models.iterdir(), *states.iterdir()] if p.name.startswith('.partial-')]
    load_state_dict(str(models / 'net_g_latest.pth'))


def test_auto_resume_without_any_intact_state_is_an_error(work):
    for state in (work / 'experiments' / 'robust' / 'training_states').iterdir():
        state.write_bytes(b'')
    proc = resume(work)
    assert proc.returncode == 2 and 'no training state there loads' in last_error_line(proc, 'train')


def test_checkpoints_are_written_atomically(tmp_path, monkeypatch):
    from basicsr.models.base_model import BaseModel

    from dml_basicsr.models.safe_training import SafeTrainingMixin

    class Model(SafeTrainingMixin, BaseModel):  # as DMLModel and OnlineSynthesisSRModel save
        opt = {'path': {'models': str(tmp_path)}}

        def __init__(self):
            pass

        def get_bare_model(self, net):
            return net

    net = torch.nn.Conv2d(1, 1, 3)
    Model().save_network(net, 'net_g', 2)
    good = (tmp_path / 'net_g_2.pth').read_bytes()

    def killed_half_way(obj, f):
        f.write(good[:50])
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, 'save', killed_half_way)
    with pytest.raises(KeyboardInterrupt):
        Model().save_network(torch.nn.Conv2d(1, 1, 3), 'net_g', 2)
    assert (tmp_path / 'net_g_2.pth').read_bytes() == good and os.listdir(tmp_path) == ['net_g_2.pth']


# ------------------------------------------------------------------------------ option mistakes: never silent


@pytest.mark.parametrize('section, key, value, suggestion', [
    ('train', 'gt_sise', 32, 'gt_size'),
    ('train', 'use_hflp', True, 'use_hflip'),
    ('val', 'kernel_gird', 2, 'kernel_grid'),
])
def test_unknown_dataset_keys_are_errors(tmp_path, section, key, value, suggestion):
    opt = tiny_dml_options('typo')
    opt['datasets'][section][key] = value
    expect_option_error(tmp_path, opt, f'datasets.{section}', f"unknown option '{key}' of SyntheticLensDataset",
                        f"did you mean '{suggestion}'?")


def test_city100_id_range_typo_is_an_error(tmp_path):
    opt = tiny_dml_options('typo')
    opt['datasets']['train'] = dict(name='City100_train', type='City100Dataset', dataroot=str(tmp_path / 'City100'),
                                    id_rnage=[1, 4], gt_size=32, color='y', batch_size_per_gpu=2,
                                    num_worker_per_gpu=0, use_shuffle=True, prefetch_mode=None)
    expect_option_error(tmp_path, opt, "unknown option 'id_rnage' of City100Dataset", "did you mean 'id_range'?")


def test_network_and_degradation_keys_and_values_are_checked(tmp_path):
    opt = tiny_dml_options('typo')
    opt['network_g']['num_basiss'] = 3
    expect_option_error(tmp_path, opt, "network_g: unknown option 'num_basiss' of DMLNet", "'num_basis'")
    opt['network_g'] = dict(opt['network_g'], num_basis=-1)
    del opt['network_g']['num_basiss']
    expect_option_error(tmp_path, opt, 'network_g: cannot build DMLNet: ValueError: num_basis must be >= 1')
    opt['network_g'] = dict(opt['network_g'], type='DMLNett', num_basis=3)
    expect_option_error(tmp_path, opt, "network_g: type 'DMLNett' is not a registered network", "'DMLNet'")

    sr = sr_options(tmp_path, save_dmlnet(tmp_path / 'dml_x2.pth'))
    sr['degradation']['noise_sigmaa'] = 5
    expect_option_error(tmp_path, sr, "degradation: unknown option 'noise_sigmaa'", "did you mean 'noise_sigma'?")
    sr = sr_options(tmp_path, save_dmlnet(tmp_path / 'dml_x2.pth'))
    sr['datasets']['train']['real'] = dict(type='RealSRDataset', dataroot='nowhere', camera=['Canon'])
    expect_option_error(tmp_path, sr, "datasets.train.real: unknown option 'camera' of RealSRDataset", "'cameras'")


def test_shipped_option_files_use_only_known_keys():
    from basicsr.utils.registry import DATASET_REGISTRY

    from dml_basicsr.archs.network_loading import build_network_opt
    from dml_basicsr.commands.preflight import DEGRADATION_KEYS, check_dataset_keys
    from dml_basicsr.utils.options import check_known_keys, load_options

    files = sorted((PROJECT_ROOT / 'options').glob('*.yml'))
    assert len(files) >= 30
    for path in files:
        opt = load_options(str(path))
        for phase, section in opt['datasets'].items():
            check_dataset_keys(DATASET_REGISTRY.get(section['type']), dict(section, phase='x'), f'{path}: {phase}')
        check_known_keys(opt.get('degradation') or {}, DEGRADATION_KEYS, str(path), 'degradation')
        if 'manifest' not in opt:  # a manifest's rows give the networks (tests/test_model_manifest.py)
            build_network_opt(opt['network_g'], str(path))


def write_metrics(folder, **columns):
    folder.mkdir(parents=True)
    header = ['iter', 'image', *columns]
    (folder / 'metrics_D.csv').write_text(','.join(header) + '\n' + ','.join(['1', 'a', *map(str, columns.values())])
                                          + '\n')


def test_report_metric_that_no_input_has_is_an_error(tmp_path):
    write_metrics(tmp_path / 'A_x2', psnr=30.0, ssim=0.9)
    write_metrics(tmp_path / 'B_x2', psnr=31.0, ssim=0.8, lpips=0.2)
    proc = run_cli(['report', 'A_x2', 'B_x2', '--metrics', 'psnr,ssmi'], cwd=tmp_path)
    line = one_error_line(proc, 'report')
    assert proc.returncode == 2 and '--metrics ssmi: no input has it' in line and 'psnr, ssim, lpips' in line
    proc = run_cli(['report', 'A_x2', 'B_x2', '--metrics', 'psnr,lpips'], cwd=tmp_path)
    assert proc.returncode == 0 and '| A | 30.00 | - |' in proc.stdout  # only some inputs have it: '-'


# ------------------------------------------------------------- late failures: checked before any folder exists


def sr_options(root, checkpoint, scale=2):
    """A tiny online Syn-DML VDSR option dict on embedded photos, its degradation from ``checkpoint``."""
    opt = tiny_dml_options('sr_typo')
    opt.update(model_type='OnlineSynthesisSRModel', scale=scale,
               network_g=dict(type='VDSR', num_in_ch=1, num_out_ch=1, num_feat=8, num_conv=3, upscale=scale),
               degradation=dict(checkpoint=str(checkpoint), noise_sigma=5))
    opt['datasets']['train'] = dict(name='SynDML', type='OnlineSynthesisDataset', images=['camera'], gt_size=32,
                                    color='y', batch_size_per_gpu=2, dataset_enlarge_ratio=2, num_worker_per_gpu=0)
    return opt


def test_degradation_checkpoint_of_the_wrong_scale_arch_or_values(tmp_path):
    line = expect_option_error(tmp_path, sr_options(tmp_path, save_dmlnet(tmp_path / 'dml_x4.pth', scale=4)),
                               'dml_x4.pth is a x4 DMLNet', 'needs x2 LR patches')
    assert 'datasets.train (OnlineSynthesisDataset, scale 2, lr_grid lr)' in line
    vdsr = tmp_path / 'vdsr.pth'
    torch.save({'params': torch.nn.Conv2d(1, 1, 3).state_dict()}, vdsr)
    expect_option_error(tmp_path, sr_options(tmp_path, vdsr), 'vdsr.pth: not a DMLNet state dict')
    expect_option_error(tmp_path, sr_options(tmp_path, save_dmlnet(tmp_path / 'nan.pth', nan=True)),
                        'nan.pth: 1 of its', 'NaN/inf')


def test_fixed_kernel_degradation_is_checked_like_a_checkpoint(tmp_path):
    opt = sr_options(tmp_path, 'unused')
    opt['degradation'] = dict(fixed_kernel=dict(kernel='gaussian', sigma=1.5, scale=1), noise_sigma=5)
    expect_option_error(tmp_path, opt, "degradation: fixed_kernel {", 'is a x1 degradation', 'needs x2 LR patches',
                        'use a degradation of scale 2')
    opt['degradation'] = dict(fixed_kernel=dict(kernel='gauss', scale=2))
    expect_option_error(tmp_path, opt, 'degradation.fixed_kernel:', "kernel must be 'bicubic'")
    opt['degradation'] = dict(fixed_kernel=dict(kernel='gaussian', scale=2), checkpoint='x.pth')
    expect_option_error(tmp_path, opt, 'it has checkpoint, fixed_kernel')


def test_pretrained_network_is_checked_before_the_results_folder(tmp_path):
    opt = tiny_dml_options('late')
    opt['path'] = dict(pretrain_network_g='experiments/none/models/net_g_9.pth', strict_load_g=True)
    expect_option_error(tmp_path, opt, 'path.pretrain_network_g not found', 'net_g_9.pth', command='test')
    opt['path']['pretrain_network_g'] = str(save_dmlnet(tmp_path / 'other.pth'))
    opt['network_g']['num_basis'] = 5  # the checkpoint has 3 basis kernels
    expect_option_error(tmp_path, opt, 'other.pth: does not fit DMLNet', 'size mismatch for basis', command='test')


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
