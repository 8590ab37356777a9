"""BasicSR's checkpoints and training states, written atomically, and a failed save that stops the training.

BasicSR's ``BaseModel.save_network``/``save_training_state`` ``torch.save`` straight to the final name (a kill
during a save leaves a truncated ``net_g_<iter>.pth`` or ``<iter>.state`` that ``--auto_resume`` then trips on),
and when a save fails three times (e.g. the disk is full) they log "Still cannot save ... Just ignore it." and
train on: the run ends with exit status 0 and without its checkpoints. The functions below (methods of this project's
models, and of every model during our `basicsr train`: :mod:`dml_basicsr.commands.basicsr_scope`) keep BasicSR's file
names and contents, write each file whole or not at all, and raise :class:`CheckpointSaveError` (naming the file
and the newest intact checkpoint) when the tries fail; ``basicsr train`` stops with that one line (exit status 1).
"""
import os
import time

from basicsr.utils import get_root_logger
from basicsr.utils.dist_util import master_only

from .checkpoint import latest_numbered_file, save_checkpoint

SAVE_TRIES = 3  # as BasicSR: a save is tried three times, a second apart
SAVE_RETRY_DELAY_S = 1


class CheckpointSaveError(OSError):
    """A checkpoint or training state could not be written; the message names it and the newest intact one."""


def newest_other_file(path, pattern):
    """The newest file in ``path``'s folder matching ``pattern`` (a regex with one ``(\\d+)`` group), other than
    ``path`` itself; None if there is none."""
    folder = os.path.dirname(path)
    newest = latest_numbered_file(folder, pattern)
    return newest if newest and os.path.abspath(newest) != os.path.abspath(path) else None


def save_with_retries(obj, path, what, pattern, root=None):
    """:func:`~.checkpoint.save_checkpoint` (inside the run folder ``root``), tried :data:`SAVE_TRIES` times;
    CheckpointSaveError if all fail. ``pattern`` finds the previous files of the same kind, named in the error.
    A link on the way (OutputFolderError) is refused at once."""
    logger = get_root_logger()
    for remaining in range(SAVE_TRIES - 1, -1, -1):
        try:
            save_checkpoint(obj, path, root=root)
            return
        except OSError as e:
            error = e
            logger.warning(f'Save {what} error: {e}, remaining retry times: {remaining}')
            if remaining:
                time.sleep(SAVE_RETRY_DELAY_S)
    previous = newest_other_file(path, pattern)
    kept = f'the newest intact one, {previous}, is unchanged' if previous else f'no earlier {what} was saved'
    raise CheckpointSaveError(f'cannot save the {what} {path} ({error.strerror or error}); the training stopped '
                              f'there; {kept}: free space and rerun with --auto_resume')


@master_only
def save_network(self, net, net_label, current_iter, param_key='params'):
    """``BaseModel.save_network``: ``<models>/<net_label>_<iter>.pth`` (``_latest`` for iteration -1)."""
    nets = net if isinstance(net, list) else [net]
    keys = param_key if isinstance(param_key, list) else [param_key]
    if len(nets) != len(keys):
        raise ValueError('save_network: the lengths of net and param_key differ')
    save_dict = {}
    for one, key in zip(nets, keys):
        state = self.get_bare_model(one).state_dict()
        save_dict[key] = {(k[7:] if k.startswith('module.') else k): v.cpu() for k, v in state.items()}
    label = 'latest' if current_iter == -1 else current_iter
    save_with_retries(save_dict, os.path.join(self.opt['path']['models'], f'{net_label}_{label}.pth'), 'model',
                      rf'{net_label}_(\d+)\.pth', self.opt['path'].get('experiments_root'))


@master_only
def save_training_state(self, epoch, current_iter):
    """``BaseModel.save_training_state``: ``<training_states>/<iter>.state`` (none for iteration -1)."""
    if current_iter == -1:
        return
    state = {'epoch': epoch, 'iter': current_iter, 'optimizers': [o.state_dict() for o in self.optimizers],
             'schedulers': [s.state_dict() for s in self.schedulers]}
    save_with_retries(state, os.path.join(self.opt['path']['training_states'], f'{current_iter}.state'),
                      'training state', r'(\d+)\.state', self.opt['path'].get('experiments_root'))
