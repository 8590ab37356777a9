"""``DMLDegrade``: the pipeline transform that makes a sample's LR image from its ground truth with a DML model."""
import numpy as np
import torch

from .base_transform import BaseTransform
from .degradation_options import component_degradation, degradation_repr, refuse_unknown_options
from .registry import TRANSFORMS

CHANNEL_ORDERS = ('rgb', 'bgr')
# What MMagic's LoadImageFromFile (and OpenCV) hand out when the results do not say.
DEFAULT_CHANNEL_ORDER = 'bgr'


def check_channel_order(order, where):
    """``order`` in lower case; ValueError naming ``where`` unless it is 'rgb' or 'bgr'."""
    if not isinstance(order, str) or order.lower() not in CHANNEL_ORDERS:
        raise ValueError(f"DMLDegrade: {where} must be 'rgb' or 'bgr', got {order!r}")
    return order.lower()


def image_to_batch(image, max_value, order):
    """(H, W, C) numpy image on the [0, max_value] scale -> (1, C, H, W) float32 tensor in [0, 1], RGB if C = 3."""
    batch = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32)).permute(2, 0, 1).unsqueeze(0) / max_value
    return batch.flip(1) if order == 'bgr' and batch.shape[1] == 3 else batch


def batch_to_image(batch, max_value, order):
    """Inverse of :func:`image_to_batch`: (1, C, h, w) tensor in [0, 1] -> (h, w, C) float32 numpy image."""
    if order == 'bgr' and batch.shape[1] == 3:
        batch = batch.flip(1)
    return (batch[0].permute(1, 2, 0) * max_value).contiguous().numpy()


@TRANSFORMS.register_module()
class DMLDegrade(BaseTransform):
    """``results[gt_key]`` (an HR image) -> ``results[lr_key]``, its LR image under a learned DML degradation.

    Images are held the way MMagic's ``LoadImageFromFile`` leaves them: numpy (H, W, C), C = 3 or 1 (an (H, W)
    array is one channel), uint8 or float, on the 0-255 scale (``max_value=255``, MMagic's default) or in [0, 1]
    (``max_value=1``, after ``RescaleToZeroOne``). The LR is float32 (ceil(H/s), ceil(W/s), C) on the same scale,
    in the same channel order; ``<lr_key>_channel_order`` and ``<lr_key>_color_type`` are copied from the gt's, as
    MMagic's ``RandomDownSampling`` does.

    Colour: a Y-trained model (the shipped ones) predicts its per-pixel kernels from the luma of the RGB image,
    so the channel order matters: ``channel_order`` if given, else ``results['<gt_key>_channel_order']`` (written by
    MMagic's loader), else 'bgr' (that loader's and OpenCV's default). The same kernels blur every channel.

    Args:
        checkpoint: a trained DMLNet ``.pth`` (``basicsr train``'s ``net_g_*.pth``); exactly one of this,
            ``pretrained`` and ``fixed_kernel``.
        pretrained: the name of a DML model shipped with the package, e.g. ``'city100-nikon-x2'``.
        fixed_kernel: instead, the options of a non-learned kernel (``dict(kernel='gaussian', sigma=1.5, scale=2)``,
            see ``DMLDegradation.fixed_kernel``): the Syn-Gaussian baseline through the same pipeline.
        noise_sigma, noise, clamp, round_8bit, seed, param_key: as :class:`DMLDegradation`. ``seed`` gives the transform
            its own generator; DataLoader workers forked from one seeded transform then draw the same noise, so
            leave it None (torch's RNG, seeded per worker by mmengine) for training.
        gt_key: the key of the HR image read. Default: 'gt'.
        lr_key: the key the LR image is written to. Default: 'img' (MMagic's input key).
        channel_order: 'rgb', 'bgr' or None (read from the results, see above).
        max_value: the value of white in the images: 255 (uint8 or float) or 1 (float).

    With the same seed, ``results[lr_key]`` is ``DMLDegradation(...)(x)`` for x the image as a (1, C, H, W) RGB
    tensor in [0, 1], brought back to the image's layout and scale.
    """

    def __init__(self, checkpoint=None, pretrained=None, noise_sigma=5.0, clamp=True, round_8bit=False, seed=None,
                 param_key='params', gt_key='gt', lr_key='img', channel_order=None, max_value=255., fixed_kernel=None,
                 noise=None, **unknown):
        refuse_unknown_options('DMLDegrade', DMLDegrade.__init__, unknown)
        self.source = dict(checkpoint=checkpoint, pretrained=pretrained, fixed_kernel=fixed_kernel)
        self.degradation = component_degradation('DMLDegrade', self.source, param_key, noise_sigma, clamp,
                                                 round_8bit, seed, noise)
        self.gt_key = gt_key
        self.lr_key = lr_key
        self.channel_order = None if channel_order is None else check_channel_order(channel_order, 'channel_order')
        if isinstance(max_value, bool) or not isinstance(max_value, (int, float)) or max_value <= 0:
            raise ValueError(f'DMLDegrade: max_value must be a positive number (255 or 1), got {max_value!r}')
        self.max_value = float(max_value)

    def transform(self, results):
        """Adds ``results[lr_key]`` (and its channel order/colour type); returns ``results``."""
        image = self._gt_image(results)
        order = self._channel_order(results)
        try:
            lr = self.degradation(image_to_batch(image, self.max_value, order))
        except ValueError as e:  # e.g. a grey image for an RGB-trained model
            raise ValueError(f'DMLDegrade: results[{self.gt_key!r}]: {e}') from e
        results[self.lr_key] = batch_to_image(lr, self.max_value, order)
        for suffix in ('_channel_order', '_color_type'):
            if self.gt_key + suffix in results:
                results[self.lr_key + suffix] = results[self.gt_key + suffix]
        return results

    def _gt_image(self, results):
        """results[gt_key] as an (H, W, C) array; ValueError naming the key if it is missing or not an image."""
        key = self.gt_key
        if key not in results:
            raise ValueError(f'DMLDegrade: the results have no {key!r} (gt_key); keys: {", ".join(map(str, results))}')
        image = results[key]
        if not isinstance(image, np.ndarray):
            raise ValueError(f'DMLDegrade: results[{key!r}] must be a numpy (H, W, C) image, '
                             f'got {type(image).__name__}')
        if image.ndim == 2:
            image = image[:, :, None]
        if image.ndim != 3 or image.shape[2] not in (1, 3):
            raise ValueError(f'DMLDegrade: results[{key!r}] must be an (H, W, C) image with C = 1 or 3, '
                             f'got shape {image.shape}')
        if image.dtype == np.uint8 and self.max_value != 255:
            raise ValueError(f'DMLDegrade: results[{key!r}] is uint8 (0-255) but max_value is {self.max_value:g}')
        if image.dtype != np.uint8 and not np.issubdtype(image.dtype, np.floating):
            raise ValueError(f'DMLDegrade: results[{key!r}] must be uint8 or float, got {image.dtype}')
        return image

    def _channel_order(self, results):
        if self.channel_order is not None:
            return self.channel_order
        where = f'{self.gt_key}_channel_order'
        return check_channel_order(results.get(where, DEFAULT_CHANNEL_ORDER), f'results[{where!r}]')

    def __repr__(self):
        return (f'{type(self).__name__}({degradation_repr(self.degradation, self.source)}, '
                f'gt_key={self.gt_key!r}, lr_key={self.lr_key!r}, channel_order={self.channel_order!r}, '
                f'max_value={self.max_value:g})')
