"""``--launcher pytorch`` on CPU: two gloo processes under torchrun train as one process with the global batch.

Exact by construction: the training images are as small as the patches (``max_size`` = ``gt_size``: no random
crop) and unflipped, so an item is the same on every rank; BasicSR's EnlargedSampler deals the one permutation
of the epoch to the ranks in turn (rank r takes positions r, r + 2, ...), so the two ranks' batches of b make
up exactly the single process's batch of 2b; DDP averages the two ranks' mean-loss gradients, which is the
gradient of the mean loss over 2b. The networks start from the same weights (DDP copies rank 0's, seeded as
the single process). What remains is float32 summation order (batch of 2b vs 2 x b, then the all-reduce), which
Adam may scale up to lr * |d grad| / eps per step. Measured after the 4 steps: max |w_2 - w_1| 1.5e-7 (DMLModel)
and 1.5e-8 (OnlineSynthesisSRModel); a single process with half the batch (what the ranks would learn without the
all-reduce) is 4.5e-3 off. TOLERANCE sits between the two.
"""
import csv
import os
import re
import socket
import subprocess
import sys

import pytest
import torch
import torch.distributed as dist

from conftest import PROJECT_ROOT, run_cli, tiny_dml_options, write_yaml
from dml_basicsr.commands.basicsr_options import basicsr_argv, local_rank_of
from dml_basicsr.utils import distributed

TOLERANCE = 1e-5  # max |w_2proc - w_1proc| after 4 Adam steps at lr 1e-3 (see above)

ONLINE_NET = dict(type='DMLRCAN', num_in_ch=1, num_out_ch=1, num_feat=8, num_group=1, num_block=1, squeeze_factor=4,
                  upscale=2)  # has buffers (mean_in, mean_out), which DDP would broadcast in a forward


def _options(name, model_type, batch):
    """Tiny embedded-data training with deterministic items, validated (rank 0) at iterations 2 and 4."""
    opt = tiny_dml_options(name, total_iter=4)
    opt['datasets']['train'].update(max_size=32, gt_size=32, batch_size_per_gpu=batch)
    opt['model_type'] = model_type
    if model_type == 'OnlineSynthesisSRModel':  # real pairs only (no degradation section): SRModel + per-image CSV
        opt['network_g'] = dict(ONLINE_NET)
    return opt


def _torchrun(args, cwd, weights_dir, launcher, timeout=240):
    """``torchrun --standalone --nproc_per_node=2 tests/ddp_train.py <args>`` on CPU (gloo), on a free port.

    ``launcher`` 'torch.distributed.run' is torchrun; 'torch.distributed.launch' is its older form, which also
    passes ``--local-rank=<rank>`` (before ``train``).
    """
    env = dict(os.environ, PYTHONPATH=str(PROJECT_ROOT), CUDA_VISIBLE_DEVICES='', OMP_NUM_THREADS='1',
               DDP_WEIGHTS_DIR=str(weights_dir))
    command = [sys.executable, '-m', launcher, '--standalone', '--nproc_per_node=2',
               str(PROJECT_ROOT / 'tests' / 'ddp_train.py'), *args]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def _logged_losses(exp):
    log = ''.join(p.read_text() for p in exp.glob('train_*.log'))
    return [float(v) for v in re.findall(r'l_pix: ([0-9.e+-]+)', log)]


@pytest.mark.parametrize('model_type, launcher', [('DMLModel', 'torch.distributed.run'),
                                                  ('OnlineSynthesisSRModel', 'torch.distributed.launch')])
def test_two_cpu_processes_train_as_one_with_the_global_batch(tmp_path, model_type, launcher):
    two = write_yaml(tmp_path / 'two.yml', _options('two_ranks', model_type, batch=2))
    one = write_yaml(tmp_path / 'one.yml', _options('one_rank', model_type, batch=4))
    proc = _torchrun(['train', '-opt', str(two), '--launcher', 'pytorch'], tmp_path, tmp_path, launcher)
    assert proc.returncode == 0, proc.stderr[-4000:]
    single = run_cli(['train', '-opt', str(one)], cwd=tmp_path)
    assert single.returncode == 0, single.stderr[-3000:]

    rank0, rank1 = (torch.load(tmp_path / f'rank{r}.pth') for r in (0, 1))
    assert rank0.keys() == rank1.keys()
    assert all(torch.equal(rank0[k], rank1[k]) for k in rank0)
    exp_two, exp_one = tmp_path / 'experiments' / 'two_ranks', tmp_path / 'experiments' / 'one_rank'
    saved = torch.load(exp_two / 'models' / 'net_g_latest.pth')['params']
    assert all(torch.equal(saved[k], rank0[k]) for k in saved)
    reference = torch.load(exp_one / 'models' / 'net_g_latest.pth')['params']
    assert max((saved[k].float() - reference[k].float()).abs().max().item() for k in saved) <= TOLERANCE
    # The logged loss is the mean over both ranks (BasicSR's reduce_loss_dict): the single process's.
    assert _logged_losses(exp_two) == pytest.approx(_logged_losses(exp_one), rel=1e-3)

    # Rank 0 alone validated and wrote: one log, one CSV row per image and validation (2, 4; the final one repeats 4).
    assert len(list(exp_two.glob('train_*.log'))) == 1
    with open(exp_two / 'metrics_SkimageLensVal.csv') as f:
        rows = list(csv.DictReader(f))
    with open(exp_one / 'metrics_SkimageLensVal.csv') as f:
        assert [r['iter'] for r in rows] == [r['iter'] for r in csv.DictReader(f)]
    assert [r['iter'] for r in rows] == ['2', '4']


@pytest.mark.parametrize('before', [False, True])  # torch.distributed.launch puts it before the subcommand
@pytest.mark.parametrize('flag', [['--local-rank=1'], ['--local-rank', '1'], ['--local_rank=1'], ['--local_rank', '1']])
def test_local_rank_is_accepted_in_both_spellings(tmp_path, flag, before):
    from dml_basicsr.cli import build_parser

    command = ['train', '-opt', 'tiny.yml']
    args = build_parser().parse_args([*flag, *command] if before else [*command, *flag])
    assert local_rank_of(args) == 1
    assert basicsr_argv(args)[-2:] == ['--local_rank', '1']  # as the experiment's option copy records it


def test_backend_is_gloo_without_cuda_and_the_option_files_with_it(monkeypatch):
    distributed.use_dist_params({'dist_params': {'backend': 'mpi', 'port': 29500}})
    try:
        monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
        assert distributed.backend_for() == 'gloo' and distributed.backend_for('nccl') == 'gloo'
        monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
        assert distributed.backend_for() == 'mpi' and distributed.backend_for('nccl') == 'nccl'
    finally:
        distributed.use_dist_params({})


def test_pytorch_launcher_outside_torchrun_is_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.delenv('RANK', raising=False)
    opt_file = write_yaml(tmp_path / 'tiny.yml', tiny_dml_options('tiny_no_torchrun'))
    proc = run_cli(['train', '-opt', str(opt_file), '--launcher', 'pytorch'], cwd=tmp_path)
    assert proc.returncode == 2
    assert 'RANK is not set' in proc.stderr and 'torchrun' in proc.stderr
    assert not (tmp_path / 'experiments').exists()


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def test_slurm_launcher_on_cpu_makes_a_gloo_group(monkeypatch):
    """One slurm task on a machine without a GPU (BasicSR: ZeroDivisionError); ``scontrol`` faked."""
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    monkeypatch.setattr(torch.cuda, 'device_count', lambda: 0)
    monkeypatch.setattr(distributed.subprocess, 'getoutput', lambda command: '127.0.0.1')
    for name in ('MASTER_ADDR', 'MASTER_PORT', 'WORLD_SIZE', 'RANK', 'LOCAL_RANK'):
        monkeypatch.delenv(name, raising=False)  # restored after the test
    for name, value in dict(SLURM_PROCID='0', SLURM_NTASKS='1', SLURM_LOCALID='0', SLURM_NODELIST='node[1-2]').items():
        monkeypatch.setenv(name, value)
    distributed.init_dist('slurm', backend='nccl', port=_free_port())  # as parse_options calls it with dist_params
    try:
        assert dist.get_backend() == 'gloo' and (dist.get_rank(), dist.get_world_size()) == (0, 1)
        assert (os.environ['MASTER_ADDR'], os.environ['LOCAL_RANK']) == ('127.0.0.1', '0')
    finally:
        dist.destroy_process_group()
