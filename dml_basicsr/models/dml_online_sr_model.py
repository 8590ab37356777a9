from basicsr.models.sr_model import SRModel
from basicsr.utils import get_root_logger
from basicsr.utils.registry import MODEL_REGISTRY

from dml_basicsr.degradation import DMLDegradation


@MODEL_REGISTRY.register()
class DMLOnlineSRModel(SRModel):
    """BasicSR's SRModel trained on pairs synthesised online by a learned DML degradation.

    WHERE THE DEGRADATION HAPPENS: in :meth:`feed_data`, on the training device, for every
    training batch anew. Items that the dataset marks ``synthetic`` (e.g. from
    :class:`~dml_basicsr.data.SynDMLDataset`) get ``lq = DMLDegradation(gt)``: the learned
    per-pixel blur (and downsampling), then AWGN. Real pairs in the same batch and all
    validation data keep their real LR.

    Options (top-level ``degradation`` section):
        checkpoint (str): a DMLNet ``.pth`` written by ``basicsr train`` (``net_g_*.pth``).
        noise_sigma (float | [low, high]): AWGN sigma on the 0-255 scale (paper: 5).
        clamp (bool): clip to [0, 1] (default true).
        round_8bit (bool): quantise to 8 bits (default false).
        seed (int): noise seed (default: torch's global RNG, seeded by ``manual_seed``).
        param_key (str): key of the weights in the checkpoint (default 'params').

    Everything else (``network_g``, ``train``, ``val``) is as for SRModel.
    """

    def __init__(self, opt):
        super().__init__(opt)
        self.degradation = self._build_degradation(opt) if self.is_train else None

    def _build_degradation(self, opt):
        deg_opt = dict(opt.get('degradation') or {})
        path = deg_opt.pop('checkpoint', None)
        if not path:
            raise ValueError("DMLOnlineSRModel: option 'degradation: checkpoint' (a trained DMLNet .pth) is missing")
        deg = DMLDegradation.from_checkpoint(path, **deg_opt).to(self.device)
        get_root_logger().info(f'Online DML degradation from {path}: scale {deg.scale}, '
                               f'noise_sigma {deg.noise_sigma}')
        return deg

    def feed_data(self, data):
        super().feed_data(data)
        synthetic = data.get('synthetic')
        if self.degradation is None or synthetic is None or not bool(synthetic.any()):
            return
        mask = synthetic.to(self.device).bool()
        lq = self.degradation(self.gt[mask])
        if lq.shape[1:] != self.lq.shape[1:]:
            raise ValueError(f'DMLOnlineSRModel: the degradation gives LR patches of {tuple(lq.shape[1:])}, the '
                             f'dataset expects {tuple(self.lq.shape[1:])}: the DML checkpoint has scale '
                             f'{self.degradation.scale}; match the dataset\'s scale/lr_grid to it')
        self.lq = self.lq.clone()
        self.lq[mask] = lq.to(self.lq.dtype)
