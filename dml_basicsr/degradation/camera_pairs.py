"""A user's own aligned camera pairs, read and checked against a DML model before anything is trained on them.

    pairs = load_camera_pairs('my_camera/', scale=4, channels=1)      # DatasetError naming a bad file
    problem = alignment_problem(model, pairs[0])                        # None, or why the pair is refused
    train, held_out = split_pairs(pairs, seed=0)                        # [(pair, columns)]
    folds = evaluation_folds(pairs, seed=0)                             # [(train, held_out)]: leave-one-out of 2
"""
import math
import random
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from dml_basicsr.data.errors import DatasetError
from dml_basicsr.data.image_io import convert_color, raw_to_float, read_raw
from dml_basicsr.data.pair_folder import find_pairs
from dml_basicsr.data.pair_transforms import image_to_tensor

# A pair whose real LR lies further than this from the model's LR of its HR (HR pixels, over the whole image) is
# refused as misaligned. The 70 aligned RealSR x4 pairs measured within 0.32 LR pixels (1.3 HR pixels) of a Canon-only
# model's LR; a 4-HR-pixel shift read 0.9-1.0 LR pixels.
MAX_SHIFT_HR = 2.0
# Another scale or a rotation moves the quadrants apart: refused when two or more quadrants lie further than this
# (HR pixels) from the whole image's shift. On the 70 RealSR pairs the second largest quadrant deviation was at most
# 0.41 LR pixels (1.6 HR pixels); one quadrant alone reached 0.87 (local parallax or texture, not a scale).
MAX_QUADRANT_SPREAD_HR = 3.0
# Below this phase-correlation peak the two LRs are not one scene (aligned pairs: 0.82-0.94; a wrong pairing: 0.05).
MIN_CORRELATION = 0.2
# The held-out band of a single pair (no pair can be spared): its right third.
HELD_OUT_COLUMNS = (2 / 3, 1.0)
WHOLE = (0.0, 1.0)
MIN_PAIRS_TO_HOLD_ONE_OUT = 3
HELD_OUT_FRACTION = 0.2


@dataclass
class CameraPair:
    """One aligned pair: ``hr`` (1, C, H, W) and ``lr`` (1, C, H/s, W/s), float32 in [0, 1] (Y or RGB), cropped
    top-left so that LR (i, j) is HR (s*i, s*j)."""
    name: str
    hr_path: str
    lr_path: str
    hr: torch.Tensor
    lr: torch.Tensor


def size_problem(hr_shape, lr_shape, scale):
    """None if the LR (h, w) is 1/``scale`` of the HR (H, W) (rounded down or up), else what is wrong."""
    (h, w), (h_lr, w_lr) = hr_shape[:2], lr_shape[:2]
    allowed = {(h // scale, w // scale), (-(-h // scale), -(-w // scale))}
    if (h_lr, w_lr) in allowed:
        return None
    expected = ' or '.join(f'{b}x{a}' for a, b in sorted(allowed))
    ratios = (h / h_lr, w / w_lr) if h_lr and w_lr else (0., 0.)
    if abs(ratios[0] - ratios[1]) < 0.05 * max(ratios) and abs(ratios[0] - scale) > 0.25:
        return (f'HR {w}x{h} and LR {w_lr}x{h_lr} are a x{ratios[0]:.3g} pair; the model is x{scale} (LR {expected} '
                'expected)')
    return f'LR {w_lr}x{h_lr} is not 1/{scale} of HR {w}x{h} (expected {expected})'


def read_pair(name, hr_path, lr_path, scale, channels):
    """The :class:`CameraPair` of two files; DatasetError naming the LR file if the sizes are not at ``scale``."""
    hr, lr = read_raw(hr_path), read_raw(lr_path)
    problem = size_problem(hr.shape, lr.shape, scale)
    if problem:
        raise DatasetError(f'{lr_path}: {problem}')
    h, w = hr.shape[0] // scale * scale, hr.shape[1] // scale * scale
    color = 'y' if channels == 1 else None
    hr_t, lr_t = (image_to_tensor(convert_color(raw_to_float(img), color))[None]
                  for img in (hr[:h, :w], lr[:h // scale, :w // scale]))
    return CameraPair(name, hr_path, lr_path, hr_t, lr_t)


def load_camera_pairs(root, scale, channels):
    """Every pair of the folder ``root`` (layouts: :mod:`dml_basicsr.data.pair_folder`), as the model of ``scale``
    and input ``channels`` (1: Y, 3: RGB) reads them; DatasetError naming the first bad file."""
    return [read_pair(name, hr, lr, scale, channels) for name, hr, lr in find_pairs(root)]


def _mean_plane(x):
    """(1, C, h, w) -> float64 (h, w) numpy: the channel mean (Y already for 1-channel pairs)."""
    return x[0].mean(0).double().numpy()


def phase_shift(model_lr, real_lr):
    """((dx, dy), peak) of ``real_lr`` against ``model_lr`` (2-D float64 arrays of one size), by phase correlation
    (sub-pixel, Hann window)."""
    window = cv2.createHanningWindow(model_lr.shape[::-1], cv2.CV_64F)
    shift, peak = cv2.phaseCorrelate(np.ascontiguousarray(model_lr), np.ascontiguousarray(real_lr), window)
    return shift, peak


def quadrant_shifts(model_lr, real_lr, min_side=32):
    """The phase shifts of the four quadrants (those with a clear peak), if each is at least ``min_side`` wide."""
    h, w = model_lr.shape
    if min(h, w) < 2 * min_side:
        return []
    shifts = []
    for rows in (slice(0, h // 2), slice(h // 2, h)):
        for cols in (slice(0, w // 2), slice(w // 2, w)):
            shift, peak = phase_shift(model_lr[rows, cols], real_lr[rows, cols])
            if peak >= MIN_CORRELATION:
                shifts.append(shift)
    return shifts


def alignment_problem(degradation, pair):
    """None if the real LR of ``pair`` lies where ``degradation``'s (a noise-free DMLDegradation) LR of its HR lies:
    within :data:`MAX_SHIFT_HR` HR pixels over the whole image, and with at most one quadrant further than
    :data:`MAX_QUADRANT_SPREAD_HR` from that shift (a scale or rotation mismatch moves them all apart); else what is
    wrong."""
    s = degradation.scale
    with torch.no_grad():
        model_lr = _mean_plane(degradation.degrade_clean(pair.hr))
    real_lr = _mean_plane(pair.lr)
    (dx, dy), peak = phase_shift(model_lr, real_lr)
    if peak < MIN_CORRELATION:
        return (f'its LR does not match the model\'s LR of its HR (phase-correlation peak {peak:.2f} < '
                f'{MIN_CORRELATION}): not the same scene, or far from aligned')
    limit = MAX_SHIFT_HR / s
    if math.hypot(dx, dy) > limit:
        return (f'misaligned: its LR is shifted by ({dx:+.2f}, {dy:+.2f}) LR pixels against the model\'s LR of its HR '
                f'(at most {limit:.2g} accepted); align the pair first')
    spread = sorted(math.hypot(qx - dx, qy - dy) for qx, qy in quadrant_shifts(model_lr, real_lr))
    spread_limit = MAX_QUADRANT_SPREAD_HR / s
    if len(spread) >= 2 and spread[-2] > spread_limit:
        return (f'misaligned: the shift between its LR and the model\'s LR varies by {spread[-2]:.2f} to '
                f'{spread[-1]:.2f} LR pixels between quadrants (at most {spread_limit:.2g} accepted): another scale or '
                'a rotation; align the pair first')
    return None


def split_pairs(pairs, seed=0):
    """``(train, held_out)``, lists of ``(pair, columns)`` (columns: the fractions of the width used).

    With 3 or more pairs, ``max(1, round(0.2 n))`` whole pairs drawn with ``seed`` are held out; with fewer, every
    pair's right third (:data:`HELD_OUT_COLUMNS`) is held out and its left two thirds train (basicsr adapt holds 2
    pairs out in turn instead: :func:`evaluation_folds`)."""
    if len(pairs) >= MIN_PAIRS_TO_HOLD_ONE_OUT:
        count = max(1, round(HELD_OUT_FRACTION * len(pairs)))
        held = set(random.Random(seed).sample(range(len(pairs)), count))
        return ([(p, WHOLE) for i, p in enumerate(pairs) if i not in held],
                [(p, WHOLE) for i, p in enumerate(pairs) if i in held])
    train_columns = (0.0, HELD_OUT_COLUMNS[0])
    return [(p, train_columns) for p in pairs], [(p, HELD_OUT_COLUMNS) for p in pairs]


def evaluation_folds(pairs, seed=0):
    """The ``[(train, held_out)]`` whose held-out parts measure an adaptation: with 2 pairs, leave-one-out (each pair
    held out whole in turn, the other trains); otherwise the one split of :func:`split_pairs`."""
    if len(pairs) == 2:
        return [([(pairs[1 - i], WHOLE)], [(pairs[i], WHOLE)]) for i in range(2)]
    return [split_pairs(pairs, seed)]
