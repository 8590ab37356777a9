"""dml_basicsr.commands.training_resume and dml_basicsr.utils.training_saves: ``--auto_resume`` loads training states
weights-only (a state that would run code is refused) from the newest intact one (a truncated state or network, e.g.
after a kill -9, is skipped); checkpoints are written atomically, and a save that fails stops the training with one
line naming the file and the newest intact one.

Most runs are in-process (``run_cli``); the tiny trainings take a few seconds each.
"""
import errno
import os
import re
import shutil
import subprocess
import sys
import time

import pytest
import torch

from conftest import PROJECT_ROOT, last_error_line, run_cli, tiny_run, tiny_trained_run
from dml_basicsr.utils.atomic_write import tmp_path as atomic_tmp_path
from dml_basicsr.utils.checkpoint import UnsafeCheckpointError, load_state_dict, load_training_state


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    return tiny_trained_run(tmp_path_factory)


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


def test_checkpoints_and_states_are_never_saved_through_a_link(tmp_path):
    from basicsr.models.base_model import BaseModel

    from dml_basicsr.models.safe_training import SafeTrainingMixin
    from dml_basicsr.utils.output_folder import OutputFolderError

    exp, elsewhere = tmp_path / 'experiments' / 'x', tmp_path / 'elsewhere'
    (exp / 'training_states').mkdir(parents=True)
    elsewhere.mkdir()
    (exp / 'models').symlink_to(elsewhere)  # planted below the run folder
    (exp / 'training_states' / '2.state').symlink_to(elsewhere / 'made.state')

    class Model(SafeTrainingMixin, BaseModel):
        opt = {'path': {'experiments_root': str(exp), 'models': str(exp / 'models'),
                        'training_states': str(exp / 'training_states')}}
        optimizers, schedulers = [], []

        def __init__(self):
            pass

        def get_bare_model(self, net):
            return net

    with pytest.raises(OutputFolderError, match='models is a symbolic link'):
        Model().save_network(torch.nn.Conv2d(1, 1, 3), 'net_g', 2)
    with pytest.raises(OutputFolderError, match='2.state is a symbolic link'):
        Model().save_training_state(0, 2)
    assert os.listdir(elsewhere) == [] and os.listdir(exp / 'training_states') == ['2.state']


SAVE_FAILURES = {  # the file whose save fails: (errno, the newest intact one the line names, files left after)
    'net_g_4.pth': (errno.ENOSPC, 'net_g_2.pth', (['net_g_2.pth'], ['2.state'])),
    '4.state': (errno.ENOSPC, '2.state', (['net_g_2.pth', 'net_g_4.pth'], ['2.state'])),
    'net_g_latest.pth': (errno.EROFS, 'net_g_4.pth', (['net_g_2.pth', 'net_g_4.pth'], ['2.state', '4.state'])),
    'net_g_2.pth': (errno.EDQUOT, None, ([], [])),
}


@pytest.mark.parametrize('failing', SAVE_FAILURES)
def test_a_failed_save_stops_the_training_naming_the_file(tmp_path, monkeypatch, failing):
    from dml_basicsr.utils import training_saves

    code, intact, (models_left, states_left) = SAVE_FAILURES[failing]
    real_save = torch.save

    def save(obj, f, *args, **kwargs):  # the atomic writer's temporary file is '.partial-<name>.<pid>.tmp'
        if os.path.basename(f.name).startswith(f'.partial-{failing}.'):
            f.write(b'half a file')
            raise OSError(code, os.strerror(code))
        return real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, 'save', save)
    monkeypatch.setattr(training_saves, 'SAVE_RETRY_DELAY_S', 0)
    proc = run_cli(['train', '-opt', str(tiny_run(tmp_path, name='full'))], cwd=tmp_path)
    line = last_error_line(proc, 'train')
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert 'cannot save the' in line and failing in line and os.strerror(code) in line
    assert (f'the newest intact one, {os.path.join(tmp_path, "experiments", "full")}' in line and intact in line
            if intact else 'no earlier model was saved' in line), line
    assert 'Just ignore it' not in proc.stderr
    exp = tmp_path / 'experiments' / 'full'
    assert sorted(os.listdir(exp / 'models')) == models_left
    assert sorted(os.listdir(exp / 'training_states')) == states_left
    for name in models_left:
        load_state_dict(str(exp / 'models' / name))  # whole, not a partial file


def test_training_stopped_by_a_failed_state_save_resumes(tmp_path, monkeypatch):
    from dml_basicsr.utils import training_saves

    real_save = torch.save
    failures = iter([True])  # only the first save of 4.state fails: the disk is freed afterwards

    def save(obj, f, *args, **kwargs):
        if os.path.basename(f.name).startswith('.partial-4.state.') and next(failures, False):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(training_saves, 'SAVE_TRIES', 1)
    monkeypatch.setattr(torch, 'save', save)
    opt_file = tiny_run(tmp_path, name='freed')
    assert run_cli(['train', '-opt', str(opt_file)], cwd=tmp_path).returncode == 1
    proc = run_cli(['train', '-opt', str(opt_file), '--auto_resume'], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    states = tmp_path / 'experiments' / 'freed' / 'training_states'
    assert sorted(os.listdir(states)) == ['2.state', '4.state']
    load_state_dict(str(tmp_path / 'experiments' / 'freed' / 'models' / 'net_g_latest.pth'))
