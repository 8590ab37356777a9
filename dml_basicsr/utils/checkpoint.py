"""Checkpoint files: the one place where this package calls ``torch.load``.

Network weights are read with ``weights_only=True`` (tensors and plain containers, never code),
on the CPU; every failure is a :class:`CheckpointError` that names the file.
"""
import os
import re

import torch


class CheckpointError(ValueError):
    """A checkpoint is missing, unreadable or holds no usable weights; the message names the file."""


def load_checkpoint(path):
    """The object saved in ``path`` (dicts, lists, tensors, numbers), with every tensor on the CPU."""
    if not os.path.isfile(path):
        raise CheckpointError(f'{path}: checkpoint not found')
    try:
        return torch.load(path, map_location='cpu', weights_only=True)
    except Exception as e:  # noqa: BLE001  (torch.load fails in many ways on a file that is not a checkpoint)
        raise CheckpointError(f'{path}: cannot load a checkpoint ({type(e).__name__}: {e})') from e


def _is_state_dict(obj):
    return isinstance(obj, dict) and bool(obj) and all(torch.is_tensor(v) for v in obj.values())


def state_dict_of(checkpoint, param_key='params', path='checkpoint'):
    """The network weights inside a loaded checkpoint.

    Looks, in this order, for ``param_key``, for ``'params'`` (what ``basicsr train`` saves) and for
    ``'state_dict'``; a checkpoint that is itself a dict of tensors is returned as it is.
    """
    if isinstance(checkpoint, dict):
        for key in dict.fromkeys((param_key, 'params', 'state_dict')):
            if _is_state_dict(checkpoint.get(key)):
                return checkpoint[key]
    if _is_state_dict(checkpoint):
        return checkpoint
    keys = ', '.join(map(repr, checkpoint)) if isinstance(checkpoint, dict) else type(checkpoint).__name__
    raise CheckpointError(f'{path}: no network weights in it (no {param_key!r}/"params" entry of tensors; '
                          f'found {keys or "nothing"})')


def load_state_dict(path, param_key='params'):
    """The network weights of the checkpoint file ``path`` (see :func:`state_dict_of`)."""
    return state_dict_of(load_checkpoint(path), param_key, path)


def latest_numbered_file(folder, pattern):
    """The file in ``folder`` whose name matches ``pattern`` (a regex with one ``(\\d+)`` group) with
    the largest number, or None."""
    if not os.path.isdir(folder):
        return None
    regex = re.compile(pattern)
    numbered = [(int(m[1]), name) for name in os.listdir(folder) for m in [regex.fullmatch(name)] if m]
    return os.path.join(folder, max(numbered)[1]) if numbered else None


def load_training_state(path, map_location):
    """A BasicSR training state (``<iter>.state``: iteration, optimizer and scheduler states)."""
    # A training state holds optimizer/scheduler state (e.g. collections.Counter), which the
    # weights-only unpickler of torch >= 2.6 refuses; it is a file this training run wrote.
    return torch.load(path, map_location=map_location, weights_only=False)
