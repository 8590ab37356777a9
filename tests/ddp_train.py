"""``torchrun ... tests/ddp_train.py train -opt X --launcher pytorch``: what ``torchrun ... -m dml_basicsr`` runs,
plus, at the end, each rank's trained ``net_g`` weights in ``$DDP_WEIGHTS_DIR/rank<RANK>.pth``.

Only rank 0 saves checkpoints, so this is how a test sees that the other ranks hold the same weights.
"""
import os
import sys

import dml_basicsr  # noqa: F401  (its compat fixes go in before basicsr is imported)
import basicsr.train
import torch

from dml_basicsr.cli import main

_models = []
_build_model = basicsr.train.build_model


def _recording_build_model(opt):
    model = _build_model(opt)
    _models.append(model)
    return model


if __name__ == '__main__':
    basicsr.train.build_model = _recording_build_model
    status = main()
    if status == 0:
        net = _models[-1].get_bare_model(_models[-1].net_g)
        torch.save(net.state_dict(), os.path.join(os.environ['DDP_WEIGHTS_DIR'], f"rank{os.environ['RANK']}.pth"))
    sys.exit(status)
