"""``--auto_resume`` and ``path.resume_state`` for ``basicsr train``: what BasicSR's ``load_resume_state`` does,
without CUDA, weights-only, from the newest state that loads.

basicsr 1.4.2's ``load_resume_state`` calls ``torch.cuda.current_device()`` (crashes without CUDA), looks for
states relative to the current folder instead of the experiment's ``training_states``, unpickles them with code
execution allowed and takes the newest even when a kill truncated it. :func:`load_resume_state` replaces it for the
run of our command only (:mod:`.basicsr_scope`).
"""
import os
import sys

import torch

from dml_basicsr.utils.checkpoint import (CheckpointError, UnsafeCheckpointError, latest_numbered_file,
                                          load_state_dict, load_training_state, numbered_files)
from dml_basicsr.utils.output_folder import OutputFolder

STATE_PATTERN = r'(\d+)\.state'


def latest_training_state(state_dir):
    """Path of the ``<iter>.state`` file with the largest iteration in ``state_dir``, or None."""
    return latest_numbered_file(state_dir, STATE_PATTERN)


def resume_map_location():
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
    state = load_training_state(path, resume_map_location())
    for network_path in resume_network_paths(opt, state['iter']):
        load_state_dict(network_path)
    return state


def newest_intact_state(opt, state_dir):
    """(path, state) of the newest training state in ``state_dir`` that loads with its network files, or
    (None, None) if there is none. Those skipped (e.g. truncated by a kill during a save) are said on stderr;
    one that refers to code (UnsafeCheckpointError) stops everything."""
    for folder in (state_dir, opt['path'].get('models')):
        if folder and os.path.isdir(folder):
            OutputFolder(folder, what='run folder', root=opt['path'].get('experiments_root')).remove_partial_files()
    skipped = 0
    for _, path in numbered_files(state_dir, STATE_PATTERN):
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
    """``basicsr.train.load_resume_state`` for our command: with ``--auto_resume`` the newest intact state in
    ``opt['path']['training_states']`` (:func:`newest_intact_state`), else ``path.resume_state``; read
    weights-only; None when there is nothing to resume."""
    from basicsr.utils import check_resume

    if opt['auto_resume']:
        state_dir = opt['path'].get('training_states') or os.path.join('experiments', opt['name'], 'training_states')
        resume_state_path, resume_state = newest_intact_state(opt, state_dir)
        if resume_state_path is not None:
            opt['path']['resume_state'] = resume_state_path
    else:
        resume_state_path = opt['path'].get('resume_state')
        resume_state = load_training_state(resume_state_path, resume_map_location()) if resume_state_path else None

    if resume_state is None:
        return None
    check_resume(opt, resume_state['iter'])
    return resume_state
