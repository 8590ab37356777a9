"""Narrow run-time fixes that let basicsr 1.4.2 run on current torch/torchvision.

Applied once, when :mod:`dml_basicsr` is imported, before anything imports :mod:`basicsr`.
Nothing here edits site-packages; each fix only replaces what is broken:

* ``torchvision.transforms.functional_tensor`` was removed in torchvision 0.17, but
  ``basicsr.data.degradations`` imports ``rgb_to_grayscale`` from it. We register a tiny
  alias module, only when the real one is missing.
* ``basicsr.train.load_resume_state`` calls ``torch.cuda.current_device()`` (crashes on a
  machine without CUDA), looks for states in a path relative to the current directory
  instead of the experiment's ``training_states`` folder, unpickles them with code execution
  allowed and takes the newest even when a kill truncated it. We replace that one function.
* ``--launcher pytorch|slurm`` assumes GPUs (and deadlocks in validation with networks that have
  buffers): :func:`dml_basicsr.utils.distributed.patch_basicsr` replaces ``init_dist``,
  ``BaseModel.model_to_device`` and ``SRModel.dist_validation``.
"""
import importlib
import os
import sys
import types

_APPLIED = False


def _install_functional_tensor_alias():
    name = 'torchvision.transforms.functional_tensor'
    try:
        importlib.import_module(name)
        return
    except ImportError:
        pass
    from torchvision.transforms import functional

    alias = types.ModuleType(name)
    alias.rgb_to_grayscale = functional.rgb_to_grayscale
    alias.__doc__ = 'Alias installed by dml_basicsr.compat for basicsr 1.4.2 (removed in torchvision 0.17).'
    sys.modules[name] = alias


def latest_training_state(state_dir):
    """Path of the ``<iter>.state`` file with the largest iteration in ``state_dir``, or None."""
    from dml_basicsr.utils.checkpoint import latest_numbered_file
    return latest_numbered_file(state_dir, r'(\d+)\.state')


def _resume_map_location():
    import torch

    if torch.cuda.is_available():
        device = torch.device('cuda', torch.cuda.current_device())
        return lambda storage, loc: storage.cuda(device.index)
    return lambda storage, loc: storage


def resume_network_paths(opt, resume_iter):
    """The ``net_<name>_<iter>.pth`` files that BasicSR's ``check_resume`` makes the model load for ``resume_iter``."""
    ignored = opt['path'].get('ignore_resume_networks') or []
    return [os.path.join(opt['path']['models'], f"net_{key.replace('network_', '')}_{resume_iter}.pth")
            for key in opt if key.startswith('network_') and key not in ignored]


def load_intact_state(opt, path):
    """The training state at ``path``, after checking that it and the network files of its iteration load."""
    from dml_basicsr.utils.checkpoint import load_state_dict, load_training_state

    state = load_training_state(path, _resume_map_location())
    for network_path in resume_network_paths(opt, state['iter']):
        load_state_dict(network_path)
    return state


def newest_intact_state(opt, state_dir):
    """(path, state) of the newest training state in ``state_dir`` that loads with its network files, or
    (None, None) if there is none. Those skipped (e.g. truncated by a kill during a save) are said on stderr;
    one that refers to code (UnsafeCheckpointError) stops everything."""
    from dml_basicsr.utils.atomic_write import remove_stale_tmp
    from dml_basicsr.utils.checkpoint import CheckpointError, UnsafeCheckpointError, numbered_files

    for folder in (state_dir, opt['path'].get('models')):
        if folder and os.path.isdir(folder):
            remove_stale_tmp(folder)
    skipped = 0
    for _, path in numbered_files(state_dir, r'(\d+)\.state'):
        try:
            state = load_intact_state(opt, path)
        except UnsafeCheckpointError:
            raise
        except CheckpointError as e:
            skipped += 1
            print(f'basicsr train: warning: --auto_resume skips {os.path.basename(path)}: {e}', file=sys.stderr)
            continue
        if skipped:
            print(f'basicsr train: --auto_resume resumes from {path}', file=sys.stderr)
        return path, state
    if skipped:
        raise CheckpointError(f'{state_dir}: no training state there loads ({skipped} skipped, see above); '
                              'move the folder away to start anew')
    return None, None


def load_resume_state(opt):
    """Drop-in replacement for ``basicsr.train.load_resume_state`` that works without CUDA and loads safely.

    With ``--auto_resume`` it looks in ``opt['path']['training_states']`` (inside the experiment root that
    BasicSR derives from ``root_path``), not in ``./experiments``, and takes the newest state that loads,
    with the ``net_g_<iter>.pth`` of its iteration (:func:`newest_intact_state`). States are read
    weights-only (:func:`dml_basicsr.utils.checkpoint.load_training_state`).
    """
    from basicsr.utils import check_resume

    from dml_basicsr.utils.checkpoint import load_training_state

    if opt['auto_resume']:
        state_dir = opt['path'].get('training_states') or os.path.join('experiments', opt['name'], 'training_states')
        resume_state_path, resume_state = newest_intact_state(opt, state_dir)
        if resume_state_path is not None:
            opt['path']['resume_state'] = resume_state_path
    else:
        resume_state_path = opt['path'].get('resume_state')
        resume_state = load_training_state(resume_state_path, _resume_map_location()) if resume_state_path else None

    if resume_state is None:
        return None
    check_resume(opt, resume_state['iter'])
    return resume_state


def _patch_basicsr_resume():
    import basicsr.train

    basicsr.train.load_resume_state = load_resume_state


def _patch_basicsr_distributed():
    from dml_basicsr.utils.distributed import patch_basicsr

    patch_basicsr()


def apply():
    """Apply all fixes (idempotent)."""
    global _APPLIED
    if _APPLIED:
        return
    _install_functional_tensor_alias()
    _patch_basicsr_resume()
    _patch_basicsr_distributed()
    _APPLIED = True
