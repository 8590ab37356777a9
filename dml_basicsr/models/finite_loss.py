"""Training that stops at the first non-finite loss or weights, before anything non-finite is saved."""
import math

from basicsr.utils import get_root_logger

from dml_basicsr.utils.checkpoint import latest_numbered_file, non_finite_tensors


class TrainingDivergedError(RuntimeError):
    """A loss or the weights became NaN/inf; the message names the iteration. Nothing non-finite was saved."""


class FiniteLossMixin:
    """For BasicSR models: :meth:`check_finite_losses` after each optimisation step, and no non-finite weights saved.

    The error stops BasicSR's training loop before it saves that iteration, so the newest files in ``models/``
    and ``training_states/`` stay those of the last good iteration, the ones ``--auto_resume`` takes.
    """

    def check_finite_losses(self, current_iter):
        """TrainingDivergedError if a loss of this iteration (``self.log_dict``) is NaN or infinite."""
        bad = [f'{name} is {value}' for name, value in self.log_dict.items() if not math.isfinite(value)]
        if bad:
            lr = self.opt.get('train', {}).get('optim_g', {}).get('lr')
            self.diverged(current_iter, f'{", ".join(bad)} (a learning rate too high? train.optim_g.lr is {lr})')

    def save_network(self, net, net_label, current_iter, param_key='params'):
        """BasicSR's ``save_network``, refused (TrainingDivergedError) for weights that hold NaN/inf."""
        for one in net if isinstance(net, list) else [net]:
            bad = non_finite_tensors(self.get_bare_model(one).state_dict())
            if bad:
                self.diverged(current_iter, f'the weights of {net_label} hold NaN/inf ({", ".join(bad[:3])})')
        super().save_network(net, net_label, current_iter, param_key)

    def diverged(self, current_iter, what):
        """Log and raise TrainingDivergedError: what went wrong, and which checkpoint is now the newest."""
        models = self.opt['path'].get('models')
        last = latest_numbered_file(models, r'net_g_(\d+)\.pth') if models else None
        kept = f'the newest checkpoint is {last}, from before it' if last else 'no checkpoint was saved before it'
        when = 'at the end of training' if current_iter == -1 else f'at iteration {current_iter}'
        message = f'training diverged {when}: {what}; nothing of it was saved, {kept}'
        get_root_logger().error(message)
        raise TrainingDivergedError(message)
