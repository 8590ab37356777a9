"""Narrow run-time fixes that let basicsr 1.4.2 run on current torch/torchvision.

Applied once, when :mod:`dml_basicsr` is imported, before anything imports :mod:`basicsr`.
Nothing here edits site-packages; each fix only replaces what is broken:

* ``torchvision.transforms.functional_tensor`` was removed in torchvision 0.17, but
  ``basicsr.data.degradations`` imports ``rgb_to_grayscale`` from it. We register a tiny
  alias module, only when the real one is missing.
* ``basicsr.train.load_resume_state`` calls ``torch.cuda.current_device()`` (crashes on a
  machine without CUDA) and looks for states in a path relative to the current directory
  instead of the experiment's ``training_states`` folder. We replace that one function.
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


def load_resume_state(opt):
    """Drop-in replacement for ``basicsr.train.load_resume_state`` that works without CUDA.

    With ``--auto_resume`` it looks in ``opt['path']['training_states']`` (inside the
    experiment root that BasicSR derives from ``root_path``), not in ``./experiments``.
    """
    from basicsr.utils import check_resume

    from dml_basicsr.utils.checkpoint import load_training_state

    if opt['auto_resume']:
        state_dir = opt['path'].get('training_states') or os.path.join('experiments', opt['name'], 'training_states')
        resume_state_path = latest_training_state(state_dir)
        if resume_state_path is not None:
            opt['path']['resume_state'] = resume_state_path
    else:
        resume_state_path = opt['path'].get('resume_state')

    if resume_state_path is None:
        return None
    resume_state = load_training_state(resume_state_path, _resume_map_location())
    check_resume(opt, resume_state['iter'])
    return resume_state


def _patch_basicsr_resume():
    import basicsr.train

    basicsr.train.load_resume_state = load_resume_state


def apply():
    """Apply all fixes (idempotent)."""
    global _APPLIED
    if _APPLIED:
        return
    _install_functional_tensor_alias()
    _patch_basicsr_resume()
    _APPLIED = True
