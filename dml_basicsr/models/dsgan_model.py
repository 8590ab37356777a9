"""DSGAN's training (Fritsche, Gu, Timofte, ICCVW 2019) as a BasicSR model: a degradation learned from unpaired
images, the competitor of DML in the paper's Table 2."""
from collections import OrderedDict

import torch
import torch.nn.functional as F
from basicsr.archs import build_network
from basicsr.utils import get_root_logger
from basicsr.utils.registry import MODEL_REGISTRY

from dml_basicsr.ops.frequency_split import box_lowpass
from dml_basicsr.utils.checkpoint import load_state_dict
from .dml_model import DMLModel

LOSS_WEIGHTS = {'low_weight': 1.0, 'gan_weight': 0.005, 'lpips_weight': 0.01}  # the paper's
MIN_LPIPS_SIDE = 64  # AlexNet's strides and pools leave nothing of a smaller image


@MODEL_REGISTRY.register()
class DSGANModel(DMLModel):
    """Trains ``network_g`` (a :class:`~dml_basicsr.archs.DSGANDegradation`: bicubic downscale, then the generator)
    against ``network_d`` (a :class:`~dml_basicsr.archs.DSGANDiscriminator`, which sees high frequencies only).

    Generator loss: ``low_weight`` x L1 between the ``box_size`` box low-passes of its output and of the bicubic
    input + ``gan_weight`` x the non-saturating BCE of the discriminator on its output + ``lpips_weight`` x LPIPS
    (AlexNet, the project's offline weights) between output and bicubic input. Discriminator: BCE, the real LR of the
    batch as real, the generator's output as fake. The real LR is used unpaired: each HR crop is matched with the real
    LR of another item of the batch (a random cyclic shift), never its own. Validation is ``DMLModel``'s: the
    synthetic LR of the validation HR against its real LR (Table 1's protocol).

    Options (``train``): ``optim_g``, ``optim_d`` (the paper: Adam 2e-4, betas [0.5, 0.999]), ``scheduler``,
    ``low_weight``, ``gan_weight``, ``lpips_weight``, ``box_size`` (5); ``path.pretrain_network_d`` (with
    ``strict_load_d``, ``param_key_d``), read like every network through the checked loader.
    """

    def init_training_settings(self):
        train_opt = self.opt['train']
        self.net_g.train()
        self.ema_decay = 0
        self.net_d = self.model_to_device(build_network(self.opt['network_d']))
        self.print_network(self.net_d)
        load_path = self.opt['path'].get('pretrain_network_d')
        if load_path is not None:
            self.load_network(self.net_d, load_path, self.opt['path'].get('strict_load_d', True),
                              self.opt['path'].get('param_key_d', 'params'))
        self.net_d.train()
        self.weights = {key: float(train_opt.get(key, default)) for key, default in LOSS_WEIGHTS.items()}
        self.box_size = int(train_opt.get('box_size', 5))
        self.lpips = None
        if self.weights['lpips_weight']:
            gt_size = (self.opt['datasets'].get('train') or {}).get('gt_size')
            if isinstance(gt_size, int) and gt_size // self.opt['scale'] < MIN_LPIPS_SIDE:
                raise ValueError(f'train.lpips_weight: LPIPS (AlexNet) needs LR crops of at least {MIN_LPIPS_SIDE} '
                                 f'pixels, datasets.train.gt_size {gt_size} gives {gt_size // self.opt["scale"]} at '
                                 f'x{self.opt["scale"]}: raise gt_size or set lpips_weight: 0')
            from dml_basicsr.metrics.lpips_metric import get_lpips_model
            self.lpips = get_lpips_model('alex', self.device)
        self.setup_optimizers()
        self.setup_schedulers()

    def load_network(self, net, load_path, strict=True, param_key='params'):
        """BasicSR's ``load_network`` (``module.`` prefixes removed; not ``strict``, the tensors of another shape are
        dropped) through the checked loader (:func:`~dml_basicsr.utils.checkpoint.load_state_dict`: weights only,
        bounded, finite; CheckpointError naming the file) instead of a raw ``torch.load``."""
        net = self.get_bare_model(net)
        state = {(k[7:] if k.startswith('module.') else k): v for k, v in load_state_dict(load_path, param_key).items()}
        get_root_logger().info(f'Loading {type(net).__name__} model from {load_path}, with param key: [{param_key}].')
        self._print_different_keys_loading(net, state, strict)
        net.load_state_dict(state, strict=strict)

    def setup_optimizers(self):
        train_opt = self.opt['train']
        for key, net in (('optim_g', self.net_g), ('optim_d', self.net_d)):
            optim = dict(train_opt[key])
            optimizer = self.get_optimizer(optim.pop('type'), [p for p in net.parameters() if p.requires_grad],
                                           **optim)
            setattr(self, f'optimizer_{key[-1]}', optimizer)
            self.optimizers.append(optimizer)

    def unpaired_real(self):
        """The real LR of the batch, each item's replaced by another item's (a random cyclic shift by 1..B-1)."""
        b = self.lq.shape[0]
        if b < 2:
            return self.lq
        shift = int(torch.randint(1, b, (1,)))
        return torch.roll(self.lq, shifts=shift, dims=0)

    def perceptual(self, output, target):
        if output.shape[1] == 1:
            output, target = output.repeat(1, 3, 1, 1), target.repeat(1, 3, 1, 1)
        return self.lpips(output, target, normalize=True).mean()

    def optimize_parameters(self, current_iter):
        net = self.get_bare_model(self.net_g)
        with torch.no_grad():
            bicubic = net.downscale(self.gt)
        real = self.unpaired_real()
        for p in self.net_d.parameters():
            p.requires_grad_(False)
        self.optimizer_g.zero_grad()
        self.output = self.net_g(self.gt)
        self._check_output_shape()
        losses = OrderedDict()
        k = self.box_size
        losses['l_low'] = F.l1_loss(box_lowpass(self.output, k), box_lowpass(bicubic, k))
        fake_pred = self.net_d(self.output)
        losses['l_gan'] = F.binary_cross_entropy(fake_pred, torch.ones_like(fake_pred))
        total = self.weights['low_weight'] * losses['l_low'] + self.weights['gan_weight'] * losses['l_gan']
        if self.lpips is not None:
            losses['l_lpips'] = self.perceptual(self.output, bicubic)
            total = total + self.weights['lpips_weight'] * losses['l_lpips']
        for p in self.net_d.parameters():
            p.requires_grad_(True)
        real_pred, fake_pred = self.net_d(real), self.net_d(self.output.detach())
        losses['l_d'] = (F.binary_cross_entropy(real_pred, torch.ones_like(real_pred)) +
                         F.binary_cross_entropy(fake_pred, torch.zeros_like(fake_pred)))
        self.log_dict = self.reduce_loss_dict(losses)
        self.check_finite_losses(current_iter)
        total.backward()
        self.optimizer_g.step()
        self.optimizer_d.zero_grad()
        losses['l_d'].backward()
        self.optimizer_d.step()

    def save(self, epoch, current_iter):
        self.save_network(self.net_g, 'net_g', current_iter)
        self.save_network(self.net_d, 'net_d', current_iter)
        self.save_training_state(epoch, current_iter)
