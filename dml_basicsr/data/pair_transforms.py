"""Crops and training-time transforms shared by the datasets."""
import random

from basicsr.data.transforms import augment
from basicsr.utils import img2tensor

from .errors import DatasetError


def random_crop_origin(h_lq, w_lq, gt_size, scale, gt_path=''):
    """(top, left) of a random LR patch of side gt_size // scale in an (h_lq, w_lq) LR image.

    Draws ``random.randint`` twice (top, then left), so a crop made from the shapes alone matches
    :func:`paired_random_crop` of the images for the same random state.
    """
    if gt_size % scale:
        raise DatasetError(f'gt_size {gt_size} must be a multiple of scale {scale}')
    lq_size = gt_size // scale
    if h_lq < lq_size or w_lq < lq_size:
        raise DatasetError(f'{gt_path}: LR image {h_lq}x{w_lq} is smaller than the LR patch {lq_size}x{lq_size} '
                           f'(gt_size {gt_size} / scale {scale})')
    return random.randint(0, h_lq - lq_size), random.randint(0, w_lq - lq_size)


def paired_random_crop(gt, lq, gt_size, scale, gt_path=''):
    """Random aligned crop: LR pixel (i, j) stays matched with HR pixel (scale*i, scale*j).

    Args:
        gt: (H, W, C) HR array.
        lq: (ceil(H/s), ceil(W/s), C) LR array, or (H, W, C) when ``scale == 1``.
        gt_size: HR patch side, a multiple of ``scale``.

    Returns:
        (gt_patch, lq_patch) of sides gt_size and gt_size // scale.
    """
    top, left = random_crop_origin(*lq.shape[:2], gt_size, scale, gt_path)
    lq_size = gt_size // scale
    lq = lq[top:top + lq_size, left:left + lq_size]
    gt = gt[top * scale:top * scale + gt_size, left * scale:left * scale + gt_size]
    return gt, lq


def center_crop(img, height, width):
    """The centre (at most) ``height`` x ``width`` of an (H, W, C) array."""
    h, w = min(height, img.shape[0]), min(width, img.shape[1])
    top, left = (img.shape[0] - h) // 2, (img.shape[1] - w) // 2
    return img[top:top + h, left:left + w]


def scaled_size(gt_shape, lq_shape, scale, gt_path, lq_path, dataset, hint=''):
    """Check that the LR is 1/scale of the HR (rounded down or up); the HR size (s*(H//s), s*(W//s)) to keep.

    Args:
        gt_shape, lq_shape: shapes (H, W, ...) and (h, w, ...) of the HR and LR arrays.
        dataset: how the error message starts (e.g. 'DRealSR'); hint: appended to it.

    Returns:
        (H', W'): keeping HR [:H', :W'] and LR [:H'/s, :W'/s] (top-left) makes LR (i, j) HR (s*i, s*j).
    """
    (h, w), (h_lq, w_lq), s = gt_shape[:2], lq_shape[:2], scale
    allowed = {(h // s, w // s), (-(-h // s), -(-w // s))}
    if (h_lq, w_lq) not in allowed:
        expected = ' or '.join(f'{a}x{b}' for a, b in sorted(allowed))
        raise DatasetError(f'{dataset}: LR {lq_path} is {h_lq}x{w_lq}, expected {expected} for HR {gt_path} of '
                           f'{h}x{w}{hint}')
    return h // s * s, w // s * s


def train_augment(gt, lq, opt, scale, gt_path='', flip_default=True):
    """Crop (``gt_size``) and flip/rotate (``use_hflip``, ``use_rot``, default ``flip_default``) a pair for training."""
    gt, lq = paired_random_crop(gt, lq, opt['gt_size'], scale, gt_path)
    gt, lq = augment([gt, lq], opt.get('use_hflip', flip_default), opt.get('use_rot', flip_default))
    return gt, lq


def image_to_tensor(img):
    """An (H, W, C) BGR/Y float array -> a (C, H, W) RGB/Y float tensor."""
    return img2tensor(img, bgr2rgb=img.shape[2] == 3, float32=True)


def pair_to_tensors(gt, lq):
    """(H, W, C) BGR/Y float arrays -> (C, H, W) RGB/Y float tensors."""
    return image_to_tensor(gt), image_to_tensor(lq)
