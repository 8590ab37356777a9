"""Checkpoint files: the one place where this package calls ``torch.load`` (and writes ``torch.save`` files).

Network weights and training states are read with ``weights_only=True`` (tensors and plain containers,
never code) from regular files of at most :data:`~.bounded_read.MAX_CHECKPOINT_BYTES`; every failure is a
:class:`CheckpointError` that names the file. Files are written atomically.
"""
import collections
import hashlib
import os
import pickle
import re
import zipfile

import torch

from .bounded_read import MAX_CHECKPOINT_BYTES, open_regular_file
from .output_folder import OutputFolder

# What BasicSR's training states hold besides tensors, numbers, strings, lists and dicts (checked by saving the
# states of Adam with MultiStepLR and CosineAnnealingRestartLR, the optimizer/schedulers of this package's option
# files): MultiStepRestartLR keeps its milestones in a Counter; OrderedDict for state dicts. torch 2.14 allows
# both by default; naming them keeps the allow-list explicit whatever a later torch allows.
TRAINING_STATE_GLOBALS = (collections.Counter, collections.OrderedDict)


class CheckpointError(ValueError):
    """A checkpoint is missing, unreadable or holds no usable weights; the message names the file."""


class UnsafeCheckpointError(CheckpointError):
    """A checkpoint refers to Python code (e.g. ``os.system``) that unpickling it would run; it is refused."""


def _first_line(error):
    return (str(error).strip().splitlines() or [''])[0]


def _unsafe_globals(file):
    """The globals of an open torch zip file that the weights-only unpickler does not allow (none if unreadable)."""
    try:
        file.seek(0)
        with torch.serialization.safe_globals(list(TRAINING_STATE_GLOBALS)):
            return torch.serialization.get_unsafe_globals_in_checkpoint(file)
    except Exception:  # noqa: BLE001  (not a zip file: it is reported as unreadable instead)
        return []


# torch.save writes its records uncompressed; a zip whose records inflate to more than this many times the file is a
# zip bomb (a few kB that torch.load would inflate to gigabytes).
MAX_INFLATION = 4
# The tensors of a checkpoint may share storage (tied weights) but not expand it: a 1 kB file can declare a stride-0
# view of 10^9 elements, which the first ``.float()`` or ``isfinite`` of it turns into gigabytes.
MAX_TENSOR_BYTES_PER_STORAGE_BYTE = 4
SLACK_BYTES = 1 << 20
# The most values (items of dicts, lists and tuples) a loaded checkpoint's containers may hold: far above any network
# or training state (thousands), far below what a shared object graph expands to (2^60 for a few kB).
MAX_CHECKPOINT_VALUES = 10_000_000


def _check_archive(file, path, what):
    """CheckpointError unless the open ``file`` of ``path`` is a torch zip archive whose records inflate to at most
    MAX_INFLATION x its size (checked on the zip directory, before anything is inflated)."""
    try:
        with zipfile.ZipFile(file) as archive:
            inflated = sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, OSError) as e:
        raise CheckpointError(f'{path}: cannot load a {what} (not a zip archive as torch.save writes it: '
                              f'{_first_line(e)})') from None
    size = os.fstat(file.fileno()).st_size
    if inflated > MAX_INFLATION * size + SLACK_BYTES:
        raise CheckpointError(f'{path}: refused to load this {what}: its {size} bytes declare {inflated} bytes of '
                              f'compressed records (torch.save writes them uncompressed): a zip bomb')


def _tensors_in(obj, path, what):
    """The tensors in the dicts, lists and tuples of a loaded checkpoint, once per place they are held in. Each
    container is walked once, however often it is shared: a few kB of pickle can hold a=[a, a] nested 60 times, 61
    lists that a walk as a tree would visit 2^60 times. CheckpointError naming ``path`` if the containers hold more
    than :data:`MAX_CHECKPOINT_VALUES` values."""
    tensors, walked, stack, visited = [], set(), [obj], 1
    while stack:
        item = stack.pop()
        if torch.is_tensor(item):
            tensors.append(item)
        elif isinstance(item, (dict, list, tuple)) and id(item) not in walked:
            walked.add(id(item))
            values = item.values() if isinstance(item, dict) else item
            visited += len(values)
            if visited > MAX_CHECKPOINT_VALUES:
                raise CheckpointError(f'{path}: refused to load this {what}: its containers hold more than '
                                      f'{MAX_CHECKPOINT_VALUES} values (network weights and training states hold '
                                      'thousands)')
            stack.extend(values)
    return tensors


def _check_tensor_sizes(obj, path, what):
    """CheckpointError if a tensor views more elements than its storage holds (an expanded, stride-0 view) or the
    tensors together declare far more bytes than their storages: both cost memory the file never paid for."""
    storages, declared = {}, 0
    for tensor in _tensors_in(obj, path, what):
        storage = tensor.untyped_storage()
        tensor_bytes = tensor.numel() * tensor.element_size()
        if tensor_bytes > storage.nbytes():
            raise CheckpointError(f'{path}: refused to load this {what}: a tensor of shape {tuple(tensor.shape)} '
                                  f'views {tensor_bytes} bytes over a storage of {storage.nbytes()} (an expanded '
                                  'view, which would take memory the file does not hold)')
        storages[storage.data_ptr(), storage.nbytes()] = storage.nbytes()
        declared += tensor_bytes
    held = sum(storages.values())
    if declared > MAX_TENSOR_BYTES_PER_STORAGE_BYTE * held + SLACK_BYTES:
        raise CheckpointError(f'{path}: refused to load this {what}: its tensors declare {declared} bytes over '
                              f'{held} bytes of storage (the same data repeated under many names)')


def _torch_load(path, what, map_location='cpu', safe_globals=()):
    """``torch.load(path, weights_only=True)``; CheckpointError (UnsafeCheckpointError for code) naming the file.

    The file must be a regular file of at most :data:`MAX_CHECKPOINT_BYTES`; the zip directory is checked before
    loading (no zip bomb) and the tensors after (no expanded views): a checkpoint takes about the memory its file size
    says.
    """
    with _open_checkpoint(path, what) as f:
        _check_archive(f, path, what)
        f.seek(0)
        return _load_opened(f, path, what, map_location, safe_globals)


def _open_checkpoint(path, what):
    """The binary file of the checkpoint ``path``; CheckpointError naming it unless it is a regular file of at most
    :data:`MAX_CHECKPOINT_BYTES` (a FIFO is refused without blocking)."""
    try:
        return open_regular_file(path, MAX_CHECKPOINT_BYTES, CheckpointError, f'{what}s')
    except (FileNotFoundError, NotADirectoryError):
        raise CheckpointError(f'{path}: {what} not found') from None
    except OSError as e:
        raise CheckpointError(f'{path}: cannot read this {what} ({e.strerror or e})') from None


def _load_opened(f, path, what, map_location, safe_globals):
    """``torch.load`` of the open checkpoint file ``f`` of ``path``, weights only, its tensor sizes checked."""
    try:
        with torch.serialization.safe_globals(list(safe_globals)):
            loaded = torch.load(f, map_location=map_location, weights_only=True)
        _check_tensor_sizes(loaded, path, what)
        return loaded
    except CheckpointError:
        raise
    except pickle.UnpicklingError as e:
        unsafe = _unsafe_globals(f)
        if unsafe:
            raise UnsafeCheckpointError(
                f'{path}: refused to load this {what}: it refers to {", ".join(unsafe)}, code that loading it would '
                f'run (a {what} holds only tensors, numbers and containers); delete it unless you know who wrote it'
            ) from None
        raise CheckpointError(f'{path}: cannot load a {what} ({type(e).__name__}: {_first_line(e)})') from e
    except Exception as e:  # noqa: BLE001  (torch.load fails in many ways on a file that is not a checkpoint)
        raise CheckpointError(f'{path}: cannot load a {what} ({type(e).__name__}: {_first_line(e)})') from e


def load_checkpoint(path):
    """The object saved in ``path`` (dicts, lists, tensors, numbers), with every tensor on the CPU."""
    return _torch_load(path, 'checkpoint')


def save_checkpoint(obj, path, inputs=(), root=None):
    """``torch.save(obj)`` to ``path`` through the :class:`~.output_folder.OutputFolder` of its folder (which neither
    holds nor lies inside ``inputs``; with ``root``, the run folder holding it: real folders down to it): atomically
    (a kill during the save leaves the previous file, or none), never through a link (OutputFolderError)."""
    folder = OutputFolder(os.path.dirname(os.path.abspath(path)), inputs, what='checkpoint folder', root=root)
    with folder.open_atomic(os.path.basename(path)) as f:
        torch.save(obj, f)


def non_finite_tensors(state):
    """The names of the floating-point tensors of a state dict that hold a NaN or an infinity."""
    return [name for name, tensor in state.items()
            if torch.is_tensor(tensor) and tensor.is_floating_point() and not bool(torch.isfinite(tensor).all())]


def check_finite(state, path):
    """CheckpointError naming ``path`` and the tensors if a state dict holds NaN/inf (a diverged training)."""
    bad = non_finite_tensors(state)
    if bad:
        more = f' (and {len(bad) - 3} more)' if len(bad) > 3 else ''
        raise CheckpointError(f'{path}: {len(bad)} of its {len(state)} weight tensors hold NaN/inf values '
                              f'({", ".join(bad[:3])}{more}): the training that wrote it diverged; use an earlier '
                              'checkpoint')


def file_sha256(path):
    """The SHA-256 hex digest of a file's bytes; CheckpointError naming it unless it is a regular file of at most
    :data:`MAX_CHECKPOINT_BYTES` (a FIFO is refused without blocking); OSError if it cannot be opened."""
    digest = hashlib.sha256()
    with open_regular_file(path, MAX_CHECKPOINT_BYTES, CheckpointError, 'hashed files') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def _is_state_dict(obj):
    return isinstance(obj, dict) and bool(obj) and all(torch.is_tensor(v) for v in obj.values())


def state_dict_key(checkpoint, param_key='params', path='checkpoint'):
    """The entry of a loaded checkpoint that holds the network weights, or None for a checkpoint that is itself a
    dict of tensors: the ``param_key_g`` that makes BasicSR's ``load_network`` read what :func:`state_dict_of` reads.

    Looks, in this order, for ``param_key``, for ``'params'`` (what ``basicsr train`` saves) and for
    ``'state_dict'``; CheckpointError naming ``path`` if none holds tensors.
    """
    if isinstance(checkpoint, dict):
        for key in dict.fromkeys((param_key, 'params', 'state_dict')):
            if _is_state_dict(checkpoint.get(key)):
                return key
    if _is_state_dict(checkpoint):
        return None
    keys = ', '.join(map(repr, checkpoint)) if isinstance(checkpoint, dict) else type(checkpoint).__name__
    raise CheckpointError(f'{path}: no network weights in it (no {param_key!r}/"params" entry of tensors; '
                          f'found {keys or "nothing"})')


def state_dict_of(checkpoint, param_key='params', path='checkpoint'):
    """The network weights inside a loaded checkpoint: the entry :func:`state_dict_key` names, or the checkpoint
    itself when it is a dict of tensors."""
    key = state_dict_key(checkpoint, param_key, path)
    return checkpoint if key is None else checkpoint[key]


def load_state_dict(path, param_key='params'):
    """The network weights of the checkpoint file ``path`` (see :func:`state_dict_of`), all finite."""
    state = state_dict_of(load_checkpoint(path), param_key, path)
    check_finite(state, path)
    return state


def numbered_files(folder, pattern):
    """The files in ``folder`` whose names match ``pattern`` (a regex with one ``(\\d+)`` group), as
    [(number, path)], the largest number first."""
    if not os.path.isdir(folder):
        return []
    regex = re.compile(pattern)
    numbered = [(int(m[1]), name) for name in os.listdir(folder) for m in [regex.fullmatch(name)] if m]
    return [(number, os.path.join(folder, name)) for number, name in sorted(numbered, reverse=True)]


def latest_numbered_file(folder, pattern):
    """The file of :func:`numbered_files` with the largest number, or None."""
    numbered = numbered_files(folder, pattern)
    return numbered[0][1] if numbered else None


def load_training_state(path, map_location='cpu'):
    """A BasicSR training state (``<iter>.state``: epoch, iteration, optimizer and scheduler states).

    Read with the weights-only unpickler and :data:`TRAINING_STATE_GLOBALS`: a state that refers to anything
    else (code) is an :class:`UnsafeCheckpointError`; an unreadable one (e.g. truncated) a CheckpointError.
    """
    state = _torch_load(path, 'training state', map_location, TRAINING_STATE_GLOBALS)
    if not isinstance(state, dict) or not {'epoch', 'iter', 'optimizers', 'schedulers'} <= set(state):
        raise CheckpointError(f'{path}: not a BasicSR training state (expected a dict with epoch, iter, optimizers '
                              'and schedulers)')
    return state
