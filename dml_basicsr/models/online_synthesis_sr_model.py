from os import path as osp

from basicsr.models.sr_model import SRModel
from basicsr.utils import get_root_logger, tensor2img
from basicsr.utils.registry import MODEL_REGISTRY

from dml_basicsr.degradation import build_degradation
from dml_basicsr.degradation.sources import describe_degradation
from .finite_loss import FiniteLossMixin
from .per_image_metrics import PerImageMetricsMixin, image_metrics
from .safe_training import SafeTrainingMixin


@MODEL_REGISTRY.register()
class OnlineSynthesisSRModel(FiniteLossMixin, SafeTrainingMixin, PerImageMetricsMixin, SRModel):
    """BasicSR's SRModel trained on pairs synthesised online by a learned DML degradation (or a baseline one).

    WHERE THE DEGRADATION HAPPENS: in :meth:`feed_data`, on the training device, for every
    training batch anew. Items that the dataset marks ``synthetic`` (e.g. from
    :class:`~dml_basicsr.data.OnlineSynthesisDataset`) get ``lq = DMLDegradation(gt)``: the learned
    per-pixel blur (and downsampling), then AWGN; or ``lq = RealESRGANDegradation(gt)`` with
    ``real_esrgan``. Real pairs in the same batch and all validation data keep their real LR.

    Validation and ``basicsr test`` compute ``val.metrics`` (PSNR/SSIM, and LPIPS with
    ``type: calculate_lpips``) per image, log their means as SRModel does, and append the
    per-image values to ``<log dir>/metrics_<dataset>.csv`` (read by ``basicsr report``).

    Options (top-level ``degradation`` section; without it the model trains on real pairs only):
        checkpoint (str): a DMLNet ``.pth`` written by ``basicsr train`` (``net_g_*.pth``); or
        pretrained (str): the name of a DML model shipped with the package, e.g. 'city100-nikon-x2'; or
        fixed_kernel (dict): a non-learned kernel instead of DML (:class:`~dml_basicsr.archs.FixedKernelNet`
            options, e.g. ``{kernel: gaussian, sigma: 1.5, scale: 1}``): the Syn-Gaussian / Syn-bicubic baseline; or
        real_esrgan (dict): Real-ESRGAN's second-order degradation instead (Syn-Real-ESRGAN; RGB patches):
            ``scale`` (default 4) and any setting of Real-ESRGAN's ``train_realesrnet_x4plus.yml``, which are the
            defaults (:class:`~dml_basicsr.degradation.RealESRGANDegradation`), e.g. ``{scale: 4}``; it has its own
            noise and 8-bit rounding, so the next four keys are errors beside it.
        noise_sigma (float | [low, high]): AWGN sigma on the 0-255 scale (paper: 5).
        clamp (bool): clip to [0, 1] (default true).
        round_8bit (bool): quantise to 8 bits (default false).
        param_key (str): key of the weights in the checkpoint (default 'params').
        seed (int): seed of the degradation's random draws, plus the process rank (default: the global RNGs,
            seeded by ``manual_seed``).

    Everything else (``network_g``, ``train``, ``val``) is as for SRModel; in addition a NaN/inf loss stops
    the training (:class:`~.finite_loss.TrainingDivergedError`) and checkpoints are written atomically.
    """

    def __init__(self, opt):
        super().__init__(opt)
        self.degradation = self._build_degradation(opt) if self.is_train and opt.get('degradation') else None

    def _build_degradation(self, opt):
        # with several processes, each draws its own noise: the seed plus the rank
        deg = build_degradation(opt['degradation'], seed_offset=opt.get('rank', 0)).to(self.device)
        get_root_logger().info(f'Online {describe_degradation(opt["degradation"], deg)}')
        return deg

    def feed_data(self, data):
        super().feed_data(data)
        synthetic = data.get('synthetic')
        if synthetic is None or not bool(synthetic.any()):
            return
        if self.degradation is None:
            raise ValueError("OnlineSynthesisSRModel: the training data has synthetic items (e.g. "
                             "OnlineSynthesisDataset) but the option file has no 'degradation' section (a DMLNet "
                             "checkpoint etc.) that makes their LR")
        mask = synthetic.to(self.device).bool()
        lq = self.degradation(self.gt[mask])
        if lq.shape[1:] != self.lq.shape[1:]:
            raise ValueError(f'OnlineSynthesisSRModel: the degradation gives LR patches of {tuple(lq.shape[1:])}, the '
                             f'dataset expects {tuple(self.lq.shape[1:])}: the degradation has scale '
                             f'{self.degradation.scale}; match the dataset\'s scale/lr_grid to it')
        self.lq = self.lq.clone()
        self.lq[mask] = lq.to(self.lq.dtype)

    def optimize_parameters(self, current_iter):
        super().optimize_parameters(current_iter)
        self.check_finite_losses(current_iter)

    def nondist_validation(self, dataloader, current_iter, tb_logger, save_img):
        """Per-image metrics of aligned pairs; for LR-only and unaligned items (no ``gt``, or
        ``aligned`` false, e.g. LRFolderDataset, SRRGBDataset) the SR image is saved instead."""
        dataset_name = dataloader.dataset.opt['name']
        metric_opts = self.opt['val'].get('metrics') or {}
        self.init_best_records(dataset_name, metric_opts)
        rows, pictures_only = [], 0
        for val_data in dataloader:
            img_name = val_data['image_name'][0] if 'image_name' in val_data else \
                osp.splitext(osp.basename(val_data['lq_path'][0]))[0]
            self.__dict__.pop('gt', None)  # a training batch's gt must not pass for this image's
            self.feed_data(val_data)
            self.test()
            sr_img = tensor2img([self.output.detach().cpu()])
            aligned = hasattr(self, 'gt') and bool(val_data.get('aligned', [True])[0])
            if save_img or not aligned:
                self.save_validation_image(sr_img, dataset_name, img_name, current_iter)
            if aligned and metric_opts:
                gt_img = tensor2img([self.gt.detach().cpu()])
                rows.append(dict(iter=current_iter, image=img_name, **image_metrics(sr_img, gt_img, metric_opts)))
            pictures_only += not aligned
            del self.lq, self.output
        if pictures_only:
            get_root_logger().info(f'{dataset_name}: {pictures_only} image(s) without an aligned ground truth: '
                                   f'SR images saved under {self.opt["path"]["visualization"]}, no metrics')
        if rows:
            self.finish_validation(dataset_name, rows, current_iter, tb_logger)


@MODEL_REGISTRY.register()
class DMLOnlineSRModel(OnlineSynthesisSRModel):
    """The earlier name of :class:`OnlineSynthesisSRModel` (it serves every degradation source, not only DML), kept
    so that existing option files (``model_type: DMLOnlineSRModel``) still run."""
