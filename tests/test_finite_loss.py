"""dml_basicsr.models.finite_loss: a NaN/inf loss stops the training with one line, and non-finite weights are never
saved."""
import pytest
import torch

from conftest import last_error_line, run_cli, tiny_run
from dml_basicsr.utils.checkpoint import load_state_dict


def test_non_finite_loss_stops_training_and_saves_nothing_of_it(tmp_path):
    opt_file = tiny_run(tmp_path, name='nan_run')
    proc = run_cli(['train', '-opt', str(opt_file), '--force_yml', 'train:optim_g:lr=1000000.0',
                    'logger:save_checkpoint_freq=1'], cwd=tmp_path)
    line = last_error_line(proc, 'train')
    assert proc.returncode == 1 and 'training diverged at iteration 2: l_pix is nan' in line
    models = tmp_path / 'experiments' / 'nan_run' / 'models'
    assert sorted(p.name for p in models.iterdir()) == ['net_g_1.pth'] and 'net_g_1.pth' in line
    load_state_dict(str(models / 'net_g_1.pth'))  # finite
    assert sorted(p.name for p in (models.parent / 'training_states').iterdir()) == ['1.state']


def test_non_finite_weights_are_never_saved():
    from dml_basicsr.models.finite_loss import FiniteLossMixin, TrainingDivergedError

    class Saver:
        def save_network(self, *args):
            raise AssertionError('must not be reached')

    class Model(FiniteLossMixin, Saver):
        opt = {'path': {}, 'train': {'optim_g': {'lr': 1.0}}}
        log_dict = {'l_pix': 0.5}

        def get_bare_model(self, net):
            return net

    net = torch.nn.Conv2d(1, 1, 3)
    with torch.no_grad():
        net.weight[0, 0, 0, 0] = float('inf')
    with pytest.raises(TrainingDivergedError, match=r'at iteration 7: the weights of net_g hold NaN/inf \(weight\)'):
        Model().save_network(net, 'net_g', 7)
    Model.log_dict = {'l_pix': 0.5, 'l_percep': float('inf')}
    with pytest.raises(TrainingDivergedError, match='at iteration 3: l_percep is inf'):
        Model().check_finite_losses(3)
