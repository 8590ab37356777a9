"""BasicSR's checkpoints and training states, written atomically.

BasicSR's ``save_network``/``save_training_state`` ``torch.save`` straight to the final name: a kill during
a save leaves a truncated ``net_g_<iter>.pth`` or ``<iter>.state`` that ``--auto_resume`` then trips on.
"""
import os
import time

from basicsr.utils import get_root_logger
from basicsr.utils.dist_util import master_only

from dml_basicsr.utils.checkpoint import save_checkpoint

SAVE_TRIES = 3  # as BasicSR: a failed save is retried, then logged and skipped


def save_with_retries(obj, path, what):
    """:func:`save_checkpoint`, retried as BasicSR retries its saves; a warning in the log if all tries fail."""
    logger = get_root_logger()
    for remaining in range(SAVE_TRIES - 1, -1, -1):
        try:
            save_checkpoint(obj, path)
            return
        except Exception as e:  # noqa: BLE001  (BasicSR's policy: a failed save does not stop the training)
            logger.warning(f'Save {what} error: {e}, remaining retry times: {remaining}')
            if remaining:
                time.sleep(1)
    logger.warning(f'Still cannot save {path}. Just ignore it.')


class AtomicSavingMixin:
    """For BasicSR models: ``save_network`` and ``save_training_state`` with BasicSR's file names and contents
    (``models/net_g_<iter>.pth``, ``net_g_latest.pth``, ``training_states/<iter>.state``), written atomically."""

    @master_only
    def save_network(self, net, net_label, current_iter, param_key='params'):
        nets = net if isinstance(net, list) else [net]
        keys = param_key if isinstance(param_key, list) else [param_key]
        if len(nets) != len(keys):
            raise ValueError('save_network: the lengths of net and param_key differ')
        save_dict = {}
        for one, key in zip(nets, keys):
            state = self.get_bare_model(one).state_dict()
            save_dict[key] = {(k[7:] if k.startswith('module.') else k): v.cpu() for k, v in state.items()}
        label = 'latest' if current_iter == -1 else current_iter
        save_with_retries(save_dict, os.path.join(self.opt['path']['models'], f'{net_label}_{label}.pth'), 'model')

    @master_only
    def save_training_state(self, epoch, current_iter):
        if current_iter == -1:
            return
        state = {'epoch': epoch, 'iter': current_iter, 'optimizers': [o.state_dict() for o in self.optimizers],
                 'schedulers': [s.state_dict() for s in self.schedulers]}
        save_with_retries(state, os.path.join(self.opt['path']['training_states'], f'{current_iter}.state'),
                          'training state')
