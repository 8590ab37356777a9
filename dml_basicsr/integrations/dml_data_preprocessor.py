"""``DMLDataPreprocessor``: mmengine's image data preprocessor that makes training inputs from ground truth with DML."""
import math

import torch
from mmengine.model import ImgDataPreprocessor

from .degradation_options import component_degradation, degradation_repr, refuse_unknown_options
from .registry import MODELS


def describe_inputs(inputs):
    """'shape (B, C, H, W)', 'shapes [(C, H, W), ...]' or the type name of ``data['inputs']``, for errors."""
    if isinstance(inputs, torch.Tensor):
        return f'shape {tuple(inputs.shape)}'
    if isinstance(inputs, (list, tuple)) and all(isinstance(x, torch.Tensor) for x in inputs):
        return f'shapes {[tuple(x.shape) for x in inputs]}'
    return type(inputs).__name__


def stack_gt(inputs):
    """Training ``data['inputs']`` (a (B, C, H, W) tensor or B (C, H, W) tensors of one size, C = 1 or 3) as one
    float32 (B, C, H, W) tensor; ValueError naming ``data['inputs']`` otherwise."""
    batch = inputs
    if isinstance(inputs, (list, tuple)) and inputs and all(isinstance(x, torch.Tensor) for x in inputs):
        if len({x.shape for x in inputs}) == 1:
            batch = torch.stack(list(inputs))
    if not isinstance(batch, torch.Tensor) or batch.dim() != 4 or batch.shape[1] not in (1, 3):
        raise ValueError("DMLDataPreprocessor: in training, data['inputs'] must be the ground-truth images, a "
                         '(B, C, H, W) tensor or a list of (C, H, W) tensors of one size, C = 1 or 3; got '
                         f'{describe_inputs(inputs)}')
    return batch.float()


def flip_colour(batch):
    """(B, 3, H, W) RGB <-> BGR; (B, 1, H, W) unchanged."""
    return batch.flip(1) if batch.shape[1] == 3 else batch


@MODELS.register_module()
class DMLDataPreprocessor(ImgDataPreprocessor):
    """mmengine's ``ImgDataPreprocessor`` whose training batches are synthesised: ground truth -> DML LR inputs.

    Data layout (dataset items ``dict(inputs=..., data_samples=...)`` through mmengine's collate functions):

    * training: ``data['inputs']`` are the ground-truth HR images, a (B, C, H, W) tensor or a list of B
      (C, H, W) tensors of one size, C = 3 or 1, on the 0-255 scale (uint8 or float, as mmengine's loaders give);
      no ``data_samples``. Returns ``{'inputs': LR (B, C, ceil(H/s), ceil(W/s)), 'data_samples': GT (B, C, H, W)}``,
      float32, both in the model's space (channel conversion, then ``(x - mean) / std``): the model's input and
      its loss target.
    * validation and test (``training=False``): exactly ``ImgDataPreprocessor``'s result; ``data['inputs']`` (real
      LR images) are not degraded and ``data_samples`` pass through untouched.

    Order in training: cast to the preprocessor's device (the model's: the DML network is a submodule and follows
    ``model.to()``), the degradation applied in [0, 1] RGB (GT / 255; with ``bgr_to_rgb`` the BGR inputs are
    converted first, with ``rgb_to_bgr`` the RGB LR and GT are converted after), LR * 255, then normalisation.
    ``pad_size_divisor`` pads validation inputs only: training crops should already suit the model.

    Args:
        checkpoint, pretrained, fixed_kernel, noise_sigma, noise, clamp, round_8bit, seed, param_key: as
            :class:`DMLDegrade` (exactly one of checkpoint, pretrained and fixed_kernel). ``seed`` gives one
            generator per device, for reproducible noise.
        mean, std, pad_size_divisor, pad_value, bgr_to_rgb, rgb_to_bgr, non_blocking: as ``ImgDataPreprocessor``;
            e.g. ``mean=[0, 0, 0], std=[255, 255, 255]`` for a model working in [0, 1].

    With the same seed, the training ``inputs`` are ``(DMLDegradation(...)(gt_rgb / 255) * 255 - mean) / std``.
    """

    def __init__(self, checkpoint=None, pretrained=None, noise_sigma=5.0, clamp=True, round_8bit=False, seed=None,
                 param_key='params', mean=None, std=None, pad_size_divisor=1, pad_value=0, bgr_to_rgb=False,
                 rgb_to_bgr=False, non_blocking=False, fixed_kernel=None, noise=None, **unknown):
        refuse_unknown_options('DMLDataPreprocessor', DMLDataPreprocessor.__init__, unknown)
        if bgr_to_rgb and rgb_to_bgr:
            raise ValueError('DMLDataPreprocessor: set at most one of bgr_to_rgb and rgb_to_bgr')
        if (mean is None) != (std is None):
            raise ValueError('DMLDataPreprocessor: give both mean and std (1 or 3 values each), or neither')
        if std is not None and not all(isinstance(s, (int, float)) and 0 < s < math.inf for s in
                                       (std if isinstance(std, (list, tuple)) else [std])):
            raise ValueError(f'DMLDataPreprocessor: std must be finite numbers > 0 (it divides), got {std!r}')
        super().__init__(mean, std, pad_size_divisor, pad_value, bgr_to_rgb, rgb_to_bgr, non_blocking)
        self.source = dict(checkpoint=checkpoint, pretrained=pretrained, fixed_kernel=fixed_kernel)
        self.degradation = component_degradation('DMLDataPreprocessor', self.source, param_key, noise_sigma, clamp,
                                                 round_8bit, seed, noise)
        self.bgr_inputs = bgr_to_rgb
        self.bgr_outputs = rgb_to_bgr

    def forward(self, data, training=False):
        if not training:
            return super().forward(data, training)
        data = self.cast_data(data)
        if data.get('data_samples') is not None:
            raise ValueError("DMLDataPreprocessor: in training, data['inputs'] hold the ground truth and "
                             "data['data_samples'] receives it; leave data_samples out of the training items "
                             f"(got {type(data['data_samples']).__name__})")
        gt = stack_gt(data['inputs'])
        self._check_channels(gt)
        self._check_range(gt)
        gt_rgb = flip_colour(gt) if self.bgr_inputs else gt
        lr_rgb = self.degradation(gt_rgb / 255.) * 255.
        lr, gt = (flip_colour(lr_rgb), flip_colour(gt_rgb)) if self.bgr_outputs else (lr_rgb, gt_rgb)
        data['inputs'] = self.normalize(lr)
        data['data_samples'] = self.normalize(gt)
        return data

    def normalize(self, batch):
        """(B, C, H, W) on the 0-255 scale -> ``(batch - mean) / std`` (unchanged without mean/std)."""
        return (batch - self.mean) / self.std if self._enable_normalize else batch

    @staticmethod
    def _check_range(gt):
        """A floating-point batch whose values all lie in (0, 1] is a [0, 1] image, not the 0-255 one this takes."""
        if gt.is_floating_point() and gt.numel() and 0 < float(gt.max()) <= 1:
            raise ValueError("DMLDataPreprocessor: data['inputs'] hold values in [0, 1]; it takes 0-255 images (uint8 "
                             'or float), as mmengine\'s ImgDataPreprocessor: multiply by 255')

    def _check_channels(self, gt):
        if self._enable_normalize and self.mean.shape[0] != 1 and self.mean.shape[0] != gt.shape[1]:
            raise ValueError(f'DMLDataPreprocessor: mean/std have {self.mean.shape[0]} values but the training '
                             f"data['inputs'] have {gt.shape[1]} channel(s)")

    def extra_repr(self):
        return degradation_repr(self.degradation, self.source)
