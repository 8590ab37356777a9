"""Distributed training for basicsr 1.4.2 on CPUs (gloo) as well as GPUs (NCCL): ``--launcher pytorch|slurm``.

What replaces BasicSR's functions that assume GPUs or deadlock (installed for our command's run by
:mod:`dml_basicsr.commands.basicsr_scope`; this project's models carry the two methods themselves):

* ``init_dist`` (``basicsr.utils.dist_util``, and the name ``basicsr.utils.options`` imported, which
  ``parse_options`` calls): BasicSR sets the CUDA device from ``rank % torch.cuda.device_count()``
  (ZeroDivisionError without a GPU) and always asks for NCCL. Here the backend is ``dist_params.backend``
  of the option file (default ``nccl``, as BasicSR) where CUDA is available and ``gloo`` where it is not;
  the CUDA device, only with CUDA, is ``LOCAL_RANK`` (``SLURM_LOCALID`` with slurm). The GPU path is
  otherwise BasicSR's: one process per GPU, the same process-group call. It does not switch multiprocessing
  to ``spawn`` as BasicSR's does: DataLoader workers fork, as without ``--launcher`` (see :func:`init_dist`).
* ``BaseModel.model_to_device``: ``DistributedDataParallel(device_ids=[torch.cuda.current_device()])``
  fails on CPU; ``device_ids`` is None there (DDP's CPU form).
* ``SRModel.dist_validation`` (which both DML models inherit): rank 0 validates alone (BasicSR's design,
  kept) but called the DDP-wrapped network, whose forward broadcasts the network's buffers (DMLRCAN's
  means, DMLNet's ``scale_factor``) to ranks that are not listening and then skips that broadcast in the
  next training step: collectives out of step (with DMLRCAN under gloo, rank 1 aborted on a "collective
  mismatch"). Rank 0 now validates on the bare networks, which talk to nobody; the other ranks wait for
  it in the next training step's collectives, as in BasicSR.
"""
import contextlib
import os
import subprocess

import torch
import torch.distributed as dist
from torch.nn.parallel import DataParallel, DistributedDataParallel

_options = {'backend': 'nccl'}  # dist_params.backend of the option file being run, see use_dist_params
# The variable each launcher sets, and how to get it set.
_LAUNCHER_ENV = {
    'pytorch': ('RANK', 'start it with torchrun (or python -m torch.distributed.launch)'),
    'slurm': ('SLURM_PROCID', 'run it with srun inside a slurm allocation'),
}


class DistributedError(RuntimeError):
    """``--launcher`` was given without the environment its launcher sets; the message says what is missing."""


def use_dist_params(opt):
    """Take the backend for ``--launcher pytorch`` from the option dict's ``dist_params`` (BasicSR passes
    ``dist_params`` only to the slurm launcher)."""
    _options['backend'] = (opt.get('dist_params') or {}).get('backend') or 'nccl'


def backend_for(requested=None):
    """The process-group backend: ``requested`` (or the option file's) with CUDA, ``gloo`` without (NCCL needs GPUs)."""
    if not torch.cuda.is_available():
        return 'gloo'
    return requested or _options['backend']


def check_launcher_env(launcher):
    """DistributedError unless the environment that ``launcher`` sets is there; ValueError for an unknown one."""
    if launcher not in _LAUNCHER_ENV:
        raise ValueError(f'Invalid launcher type: {launcher}')
    name, how = _LAUNCHER_ENV[launcher]
    if name not in os.environ:
        raise DistributedError(f'--launcher {launcher}: the environment variable {name} is not set: {how}')


def _set_cuda_device(local_rank):
    """One process per GPU: this process's GPU is its local rank (only where CUDA is available)."""
    if torch.cuda.is_available():
        torch.cuda.set_device(local_rank % torch.cuda.device_count())


def init_dist(launcher, backend=None, **kwargs):
    """Drop-in replacement for ``basicsr.utils.dist_util.init_dist`` (the same launchers).

    The launcher's environment is checked first, so that a command run without it changes nothing. Unlike
    BasicSR's, it leaves the multiprocessing start method alone: DataLoader workers fork as without
    ``--launcher`` (sharing the decoded-image cache) instead of being spawned anew, importing torch and
    pickling the dataset, at every epoch; they never touch CUDA, so forking is safe on GPUs too.
    """
    check_launcher_env(launcher)
    if launcher == 'pytorch':
        init_dist_pytorch(backend, **kwargs)
    else:
        init_dist_slurm(backend, **kwargs)


def init_dist_pytorch(backend=None, **kwargs):
    """torchrun sets RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT."""
    _set_cuda_device(int(os.environ.get('LOCAL_RANK', os.environ['RANK'])))
    dist.init_process_group(backend=backend_for(backend), **kwargs)


def init_dist_slurm(backend=None, port=None):
    """As BasicSR's: one task per process, master = the first node of ``SLURM_NODELIST``, port ``port``
    (``dist_params.port``), else ``MASTER_PORT``, else 29500; the local rank is ``SLURM_LOCALID``."""
    proc_id, ntasks = int(os.environ['SLURM_PROCID']), int(os.environ['SLURM_NTASKS'])
    local_rank = int(os.environ.get('SLURM_LOCALID', proc_id % max(torch.cuda.device_count(), 1)))
    _set_cuda_device(local_rank)
    node_list = os.environ['SLURM_NODELIST']
    os.environ['MASTER_ADDR'] = subprocess.getoutput(f'scontrol show hostname {node_list} | head -n1')
    if port is not None:
        os.environ['MASTER_PORT'] = str(port)
    os.environ.setdefault('MASTER_PORT', '29500')  # torch.distributed's default port
    os.environ.update(WORLD_SIZE=str(ntasks), LOCAL_RANK=str(local_rank), RANK=str(proc_id))
    dist.init_process_group(backend=backend_for(backend))


def model_to_device(self, net):
    """``BaseModel.model_to_device`` that also works on CPU: DDP with ``device_ids`` only on a GPU.

    A network without trainable parameters (e.g. FixedKernelNet) is not wrapped: DDP refuses it.
    """
    net = net.to(self.device)
    if self.opt['dist'] and any(p.requires_grad for p in net.parameters()):
        device_ids = [torch.cuda.current_device()] if self.device.type == 'cuda' else None
        net = DistributedDataParallel(net, device_ids=device_ids,
                                      find_unused_parameters=self.opt.get('find_unused_parameters', False))
    elif not self.opt['dist'] and self.opt['num_gpu'] > 1:
        net = DataParallel(net)
    return net


@contextlib.contextmanager
def bare_networks(model):
    """Within the block, the model's DDP-wrapped networks (``net_g``, ...) are the bare modules."""
    wrapped = {name: net for name, net in vars(model).items() if isinstance(net, DistributedDataParallel)}
    for name, net in wrapped.items():
        setattr(model, name, net.module)
    try:
        yield model
    finally:
        for name, net in wrapped.items():
            setattr(model, name, net)


def dist_validation(self, dataloader, current_iter, tb_logger, save_img):
    """``SRModel.dist_validation``: rank 0 validates (and alone writes files), on the bare networks."""
    if self.opt['rank'] == 0:
        with bare_networks(self):
            self.nondist_validation(dataloader, current_iter, tb_logger, save_img)
