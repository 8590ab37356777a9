import logging
from collections import OrderedDict
from os import path as osp

import torch
from basicsr.models.sr_model import SRModel
from basicsr.utils import get_root_logger, tensor2img
from basicsr.utils.registry import MODEL_REGISTRY

from dml_basicsr.ops import center_pad, relative_kernel_error
from dml_basicsr.visualization.kernel_pictures import kernel_comparison, kernel_grid, weight_map_grid
from .finite_loss import FiniteLossMixin
from .per_image_metrics import PerImageMetricsMixin, image_metrics
from .safe_training import SafeTrainingMixin


class FrozenParamsWarnings(logging.Filter):
    """Drops (and counts) BasicSR's 'Params <name> will not be optimized.' warnings."""

    def __init__(self):
        super().__init__()
        self.dropped = 0

    def filter(self, record):
        if record.getMessage().startswith('Params ') and record.getMessage().endswith(' will not be optimized.'):
            self.dropped += 1
            return False
        return True


def freeze_all_but(net, prefixes):
    """Stop the gradients of every parameter of ``net`` whose name (of the bare network) starts with none of
    ``prefixes``; ValueError if ``prefixes`` is no list of names or one of them matches no parameter."""
    if not isinstance(prefixes, (list, tuple)) or not prefixes or not all(isinstance(p, str) for p in prefixes):
        raise ValueError(f'train.trainable must be a list of parameter name prefixes (e.g. [basis]), got {prefixes!r}')
    named = [(name.removeprefix('module.'), param) for name, param in net.named_parameters()]
    for prefix in prefixes:
        if not any(name.startswith(prefix) for name, _ in named):
            raise ValueError(f'train.trainable: no parameter of network_g is named {prefix}...; its parameters: '
                             f'{", ".join(sorted({name.split(".")[0] for name, _ in named}))} (and their sub-names)')
    for name, param in named:
        param.requires_grad_(any(name.startswith(prefix) for prefix in prefixes))


@MODEL_REGISTRY.register()
class DMLModel(FiniteLossMixin, SafeTrainingMixin, PerImageMetricsMixin, SRModel):
    """Learns a degradation: HR (``gt``) -> synthetic LR, fitted to the real LR (``lq``).

    Training minimises ``pixel_opt`` (L2 in the paper) between ``net_g(gt)`` and ``lq``.
    Validation reports ``val.metrics`` (PSNR/SSIM of synthetic vs real LR; the paper's Table 1
    uses the Y channel with a 7-pixel crop), appends per-image rows to
    ``<log dir>/metrics_<dataset>.csv``, and saves pictures of the basis kernels and of the
    first image's weight maps under ``visualization/<dataset>/``. When the validation data
    carries true kernels (``kernel_points``/``kernel_true``, e.g. ``SyntheticLensDataset``), it
    also logs ``kernel_err``, the mean relative L2 error of the learned per-pixel kernels, beside
    ``kernel_err_invariant``, the error of the best single kernel (the mean true kernel).

    ``train.trainable`` (optional): the parameters to train, as a list of name prefixes (``basis``,
    ``weight_net.conv_last``, ...); the others stay as loaded (default: all are trained). ``basicsr adapt`` uses it.

    A NaN/inf loss stops the training (:class:`~.finite_loss.TrainingDivergedError`) before the update;
    checkpoints and training states are written atomically, a failed save stops the training
    (:mod:`dml_basicsr.utils.training_saves`, through :class:`~.safe_training.SafeTrainingMixin`).
    """

    def setup_optimizers(self):
        prefixes = self.opt['train'].get('trainable')
        if prefixes is None:
            return super().setup_optimizers()
        freeze_all_but(self.net_g, prefixes)
        logger = get_root_logger()
        one_per_frozen_tensor = FrozenParamsWarnings()
        logger.addFilter(one_per_frozen_tensor)  # BasicSR warns once per frozen tensor; one line says it all
        try:
            super().setup_optimizers()
        finally:
            logger.removeFilter(one_per_frozen_tensor)
        params = list(self.net_g.parameters())
        trained = sum(p.numel() for p in params if p.requires_grad)
        logger.info(f'train.trainable {list(prefixes)}: {trained} of {sum(p.numel() for p in params)} parameters '
                    f'trained, {one_per_frozen_tensor.dropped} tensors frozen')

    def feed_data(self, data):
        self.gt = data['gt'].to(self.device)
        self.lq = data['lq'].to(self.device) if 'lq' in data else None
        self.kernel_points = data.get('kernel_points')
        self.kernel_true = data.get('kernel_true')
        in_ch = getattr(self.get_bare_model(self.net_g), 'num_in_ch', self.gt.shape[1])
        if self.gt.shape[1] != in_ch:
            raise ValueError(f'the dataset gives {self.gt.shape[1]}-channel images but network_g expects '
                             f'{in_ch} (num_in_ch): set the datasets\' color option (y = 1 channel) to match')

    def _check_output_shape(self):
        if self.lq is not None and self.output.shape != self.lq.shape:
            raise ValueError(f'synthetic LR {tuple(self.output.shape)} and real LR {tuple(self.lq.shape)} differ: '
                             f'check that network_g.scale matches the LR grid of the data (scale, lr_grid)')

    def optimize_parameters(self, current_iter):
        self.optimizer_g.zero_grad()
        self.output = self.net_g(self.gt)
        self._check_output_shape()
        loss_dict = OrderedDict()
        l_pix = self.cri_pix(self.output, self.lq)
        loss_dict['l_pix'] = l_pix
        self.log_dict = self.reduce_loss_dict(loss_dict)
        self.check_finite_losses(current_iter)
        l_pix.backward()
        self.optimizer_g.step()
        if self.ema_decay > 0:
            self.model_ema(decay=self.ema_decay)

    def _eval_net(self):
        return self.net_g_ema if hasattr(self, 'net_g_ema') else self.get_bare_model(self.net_g)

    def test(self):
        net = self._eval_net()
        was_training = net.training
        net.eval()
        with torch.no_grad():
            self.output = net(self.gt)
        net.train(was_training)
        self._check_output_shape()

    def get_current_visuals(self):
        out = OrderedDict(result=self.output.detach().cpu())
        if self.lq is not None:
            out['gt'] = self.lq.detach().cpu()  # the real LR is the target of a degradation model
        return out

    def nondist_validation(self, dataloader, current_iter, tb_logger, save_img):
        dataset_name = dataloader.dataset.opt['name']
        metric_opts = self.opt['val'].get('metrics') or {}
        self.init_best_records(dataset_name, metric_opts, extra_lower_better=('kernel_err', 'kernel_err_invariant'))
        rows = []
        for idx, val_data in enumerate(dataloader):
            img_name = osp.splitext(osp.basename(val_data['gt_path'][0]))[0]
            self.feed_data(val_data)
            self.test()
            row = self._image_metrics(metric_opts)
            if idx == 0:
                self._save_pictures(dataset_name, img_name, current_iter, tb_logger)
            if save_img:
                self.save_validation_image(tensor2img([self.output.cpu()]), dataset_name, img_name, current_iter)
            rows.append(dict(iter=current_iter, image=img_name, **row))
        self.finish_validation(dataset_name, rows, current_iter, tb_logger)

    def _image_metrics(self, metric_opts):
        row = {}
        if self.lq is not None and metric_opts:
            row.update(image_metrics(tensor2img([self.output.cpu()]), tensor2img([self.lq.cpu()]), metric_opts))
        if self.kernel_true is not None and hasattr(self._eval_net(), 'kernels_at'):
            with torch.no_grad():
                learned = self._eval_net().kernels_at(self.gt, self.kernel_points[0].to(self.device))
            true = self.kernel_true[0].float()
            row['kernel_err'] = float(relative_kernel_error(learned[0].cpu(), true))
            # Reference: the best single (spatially invariant) kernel for these points.
            row['kernel_err_invariant'] = float(relative_kernel_error(true.mean(0).expand_as(true), true))
            size = max(true.shape[-1], learned.shape[-1])
            self._last_kernels = (center_pad(true, size), center_pad(learned[0].cpu(), size))
        return row

    def _save_pictures(self, dataset_name, img_name, current_iter, tb_logger=None):
        """Basis kernels, weight maps of this image and true vs learned kernels, as far as the net has them."""
        net = self._eval_net()
        folder = self.output_folder(osp.join(self.opt['path']['visualization'], dataset_name))
        pictures = {}
        with torch.no_grad():
            if hasattr(net, 'basis_kernels'):
                pictures['basis'] = kernel_grid(net.basis_kernels())
            if hasattr(net, 'predict_weights'):
                pictures[f'weights_{img_name}'] = weight_map_grid(net.predict_weights(self.gt)[0])
        if self.kernel_true is not None and hasattr(net, 'kernels_at'):
            pictures[f'kernels_true_vs_learned_{img_name}'] = kernel_comparison(*self._last_kernels)
        for name, picture in pictures.items():
            folder.write_png(f'{name}_{current_iter}.png', picture)
            if tb_logger is not None and isinstance(current_iter, int):
                tb_logger.add_image(f'{dataset_name}/{name.split("_")[0]}', picture, current_iter, dataformats='HW')
