"""Real-ESRGAN's second-order degradation (Wang et al., ICCVW 2021) as an HR -> LR batch transform: Syn-Real-ESRGAN.

Exactly what BasicSR 1.4.2 does for Real-ESRNet training, with BasicSR's own functions (``random_mixed_kernels``,
``circular_lowpass_kernel``, ``filter2D``, ``random_add_gaussian_noise_pt``, ``random_add_poisson_noise_pt``,
``DiffJPEG``): the kernels drawn per sample as ``RealESRGANDataset.__getitem__`` draws them, then the batch degraded
as ``RealESRNetModel.feed_data`` degrades it, in the same order of random draws (the tests check that the LR is
BasicSR's, to the bit, for the same seeds). Left out of ``feed_data``: the GT's USM sharpening, the random crop and
the training pair pool (see :class:`RealESRGANDegradation`). The settings default to Real-ESRGAN's
``options/train_realesrnet_x4plus.yml``::

    deg = RealESRGANDegradation(scale=4, seed=0)
    lr = deg(hr)   # (B, 3, H, W) RGB in [0, 1] -> (B, 3, H/4, W/4) on the 8-bit grid, on hr's device
"""
import contextlib
import copy
import math
import random

import numpy as np
import torch
import torch.nn as nn
from basicsr.data.degradations import (circular_lowpass_kernel, random_add_gaussian_noise_pt,
                                       random_add_poisson_noise_pt, random_mixed_kernels)
from basicsr.utils.diffjpeg import DiffJPEG
from basicsr.utils.img_process_util import filter2D
from torch.nn import functional as F

from dml_basicsr.utils.options import check_known_keys, is_int

# RealESRGANDataset's options (datasets.train of Real-ESRGAN's options/train_realesrnet_x4plus.yml).
KERNEL_SETTINGS = {
    'blur_kernel_size': 21,
    'kernel_list': ['iso', 'aniso', 'generalized_iso', 'generalized_aniso', 'plateau_iso', 'plateau_aniso'],
    'kernel_prob': [0.45, 0.25, 0.12, 0.03, 0.12, 0.03],
    'sinc_prob': 0.1,
    'blur_sigma': [0.2, 3],
    'betag_range': [0.5, 4],
    'betap_range': [1, 2],
    'blur_kernel_size2': 21,
    'kernel_list2': ['iso', 'aniso', 'generalized_iso', 'generalized_aniso', 'plateau_iso', 'plateau_aniso'],
    'kernel_prob2': [0.45, 0.25, 0.12, 0.03, 0.12, 0.03],
    'sinc_prob2': 0.1,
    'blur_sigma2': [0.2, 1.5],
    'betag_range2': [0.5, 4],
    'betap_range2': [1, 2],
    'final_sinc_prob': 0.8,
}
# RealESRNetModel's options (the top level of the same file).
DEGRADATION_SETTINGS = {
    'resize_prob': [0.2, 0.7, 0.1],  # up, down, keep
    'resize_range': [0.15, 1.5],
    'gaussian_noise_prob': 0.5,
    'noise_range': [1, 30],
    'poisson_scale_range': [0.05, 3],
    'gray_noise_prob': 0.4,
    'jpeg_range': [30, 95],
    'second_blur_prob': 0.8,
    'resize_prob2': [0.3, 0.4, 0.3],
    'resize_range2': [0.3, 1.2],
    'gaussian_noise_prob2': 0.5,
    'noise_range2': [1, 25],
    'poisson_scale_range2': [0.05, 2.5],
    'gray_noise_prob2': 0.4,
    'jpeg_range2': [30, 95],
}
REAL_ESRNET_X4PLUS = {**KERNEL_SETTINGS, **DEGRADATION_SETTINGS}
OPTIONS = frozenset(REAL_ESRNET_X4PLUS) | {'scale', 'seed'}  # the keys of a degradation.real_esrgan section

# Hard-coded in RealESRGANDataset: kernel sizes 7..21, every kernel zero-padded to 21 x 21 (its blur_kernel_size
# options are read but not used); the pulse is the final "sinc" kernel that does not blur.
KERNEL_SIZE = 21
KERNEL_RANGE = [2 * v + 1 for v in range(3, 11)]
KERNEL_TYPES = ('iso', 'aniso', 'generalized_iso', 'generalized_aniso', 'plateau_iso', 'plateau_aniso')
RESIZE_MODES = ['area', 'bilinear', 'bicubic']


def pulse_kernel():
    """(21, 21) float32: 1 at the centre; filtering with it changes nothing."""
    pulse = torch.zeros(KERNEL_SIZE, KERNEL_SIZE)
    pulse[KERNEL_SIZE // 2, KERNEL_SIZE // 2] = 1
    return pulse


# ------------------------------------------------------------------ kernels: RealESRGANDataset.__getitem__


def draw_blur_kernel(kernel_list, kernel_prob, blur_sigma, betag_range, betap_range, sinc_prob):
    """One kernel1 (or kernel2) of ``RealESRGANDataset.__getitem__``: (21, 21) float64 numpy array.

    A size from 7..21; with probability ``sinc_prob`` a sinc (circular low-pass) kernel, else one of
    ``random_mixed_kernels``; zero-padded to 21 x 21. Draws from Python's and NumPy's global generators.
    """
    kernel_size = random.choice(KERNEL_RANGE)
    if np.random.uniform() < sinc_prob:
        # this sinc filter setting is for kernels ranging from [7, 21]
        if kernel_size < 13:
            omega_c = np.random.uniform(np.pi / 3, np.pi)
        else:
            omega_c = np.random.uniform(np.pi / 5, np.pi)
        kernel = circular_lowpass_kernel(omega_c, kernel_size, pad_to=False)
    else:
        kernel = random_mixed_kernels(kernel_list, kernel_prob, kernel_size, blur_sigma, blur_sigma,
                                      [-math.pi, math.pi], betag_range, betap_range, noise_range=None)
    pad_size = (KERNEL_SIZE - kernel_size) // 2
    return np.pad(kernel, ((pad_size, pad_size), (pad_size, pad_size)))


def draw_sinc_kernel(final_sinc_prob):
    """The final sinc kernel of ``RealESRGANDataset.__getitem__``: (21, 21) float32, a pulse with probability
    ``1 - final_sinc_prob``."""
    if np.random.uniform() < final_sinc_prob:
        kernel_size = random.choice(KERNEL_RANGE)
        omega_c = np.random.uniform(np.pi / 3, np.pi)
        return torch.FloatTensor(circular_lowpass_kernel(omega_c, kernel_size, pad_to=KERNEL_SIZE))
    return pulse_kernel()


def draw_kernels(settings, batch):
    """``(kernel1, kernel2, sinc_kernel)`` for ``batch`` samples, each (B, 21, 21) float32 on the CPU, drawn sample
    by sample in the dataset's order (as ``RealESRGANDataset`` items collated into a batch)."""
    kernels = []
    for _ in range(batch):
        kernel1 = draw_blur_kernel(settings['kernel_list'], settings['kernel_prob'], settings['blur_sigma'],
                                   settings['betag_range'], settings['betap_range'], settings['sinc_prob'])
        kernel2 = draw_blur_kernel(settings['kernel_list2'], settings['kernel_prob2'], settings['blur_sigma2'],
                                   settings['betag_range2'], settings['betap_range2'], settings['sinc_prob2'])
        sinc_kernel = draw_sinc_kernel(settings['final_sinc_prob'])
        kernels.append((torch.FloatTensor(kernel1), torch.FloatTensor(kernel2), sinc_kernel))
    return tuple(torch.stack(group) for group in zip(*kernels))


# ------------------------------------------------------------------ the batch: RealESRNetModel.feed_data


def blur(img, kernel):
    """BasicSR's ``filter2D`` of (B, C, h, w) with per-image (B, 21, 21) kernels, on a contiguous copy of ``img``:
    ``filter2D`` views its padded input as (1, B*C, h', w'), which fails for DiffJPEG's output on the CPU (its
    channels-last strides survive the resize and the padding there; BasicSR runs this on CUDA only). Same values."""
    return filter2D(img.contiguous(), kernel)


def draw_resize_factor(resize_prob, resize_range):
    """'up' (factor in [1, high)), 'down' (in [low, 1)) or 'keep' (1), picked with the weights ``resize_prob``."""
    updown_type = random.choices(['up', 'down', 'keep'], resize_prob)[0]
    if updown_type == 'up':
        return np.random.uniform(1, resize_range[1])
    if updown_type == 'down':
        return np.random.uniform(resize_range[0], 1)
    return 1


def random_noise(img, gaussian_noise_prob, noise_range, poisson_scale_range, gray_noise_prob):
    """(B, 3, h, w) -> the same plus Gaussian noise (probability ``gaussian_noise_prob``) or Poisson noise, clipped
    to [0, 1]; gray (the same in every channel) with probability ``gray_noise_prob``, per image."""
    if np.random.uniform() < gaussian_noise_prob:
        return random_add_gaussian_noise_pt(img, sigma_range=noise_range, clip=True, rounds=False,
                                            gray_prob=gray_noise_prob)
    return random_add_poisson_noise_pt(img, scale_range=poisson_scale_range, gray_prob=gray_noise_prob, clip=True,
                                       rounds=False)


def random_jpeg(img, jpeg_range, jpeger):
    """(B, 3, h, w) -> clamped to [0, 1], then JPEG-compressed by ``jpeger`` (DiffJPEG) at one quality per image."""
    jpeg_p = img.new_zeros(img.size(0)).uniform_(*jpeg_range)
    img = torch.clamp(img, 0, 1)  # clamp to [0, 1], otherwise JPEGer will result in unpleasant artifacts
    return jpeger(img, quality=jpeg_p)


def first_degradation(gt, kernel1, settings, jpeger):
    """Blur (``kernel1``, (B, 21, 21)), random resize by a factor, noise, JPEG: (B, 3, H, W) -> (B, 3, h, w)."""
    out = blur(gt, kernel1)
    scale = draw_resize_factor(settings['resize_prob'], settings['resize_range'])
    mode = random.choice(RESIZE_MODES)
    out = F.interpolate(out, scale_factor=scale, mode=mode)
    out = random_noise(out, settings['gaussian_noise_prob'], settings['noise_range'],
                       settings['poisson_scale_range'], settings['gray_noise_prob'])
    return random_jpeg(out, settings['jpeg_range'], jpeger)


def second_degradation(out, kernel2, settings, lr_size):
    """Blur (``kernel2``) with probability ``second_blur_prob``, random resize relative to ``lr_size`` (h, w),
    noise: (B, 3, h', w') -> (B, 3, int(h * f), int(w * f))."""
    if np.random.uniform() < settings['second_blur_prob']:
        out = blur(out, kernel2)
    scale = draw_resize_factor(settings['resize_prob2'], settings['resize_range2'])
    mode = random.choice(RESIZE_MODES)
    out = F.interpolate(out, size=(int(lr_size[0] * scale), int(lr_size[1] * scale)), mode=mode)
    return random_noise(out, settings['gaussian_noise_prob2'], settings['noise_range2'],
                        settings['poisson_scale_range2'], settings['gray_noise_prob2'])


def final_sinc_and_jpeg(out, sinc_kernel, settings, lr_size, jpeger):
    """[resize to ``lr_size`` + final sinc filter] and JPEG, in a random order (the two orders Real-ESRGAN found
    free of twisted lines): (B, 3, h', w') -> (B, 3, h, w)."""
    if np.random.uniform() < 0.5:
        mode = random.choice(RESIZE_MODES)
        out = F.interpolate(out, size=lr_size, mode=mode)
        out = blur(out, sinc_kernel)
        return random_jpeg(out, settings['jpeg_range2'], jpeger)
    out = random_jpeg(out, settings['jpeg_range2'], jpeger)
    mode = random.choice(RESIZE_MODES)
    out = F.interpolate(out, size=lr_size, mode=mode)
    return blur(out, sinc_kernel)


def degrade_batch(gt, kernels, settings, scale, jpeger):
    """``RealESRNetModel.feed_data``'s LR of ``gt`` (B, 3, H, W) float32 in [0, 1] with ``kernels`` (kernel1,
    kernel2, sinc_kernel, each (B, 21, 21) on gt's device): (B, 3, H // scale, W // scale), rounded to 8 bits.

    Without its USM sharpening of the GT, its random crop and its training pair pool (see
    :class:`RealESRGANDegradation`). Draws from Python's, NumPy's and torch's global generators, as BasicSR does.
    """
    kernel1, kernel2, sinc_kernel = kernels
    ori_h, ori_w = gt.size()[2:4]
    lr_size = (ori_h // scale, ori_w // scale)
    out = first_degradation(gt, kernel1, settings, jpeger)
    out = second_degradation(out, kernel2, settings, (ori_h / scale, ori_w / scale))
    out = final_sinc_and_jpeg(out, sinc_kernel, settings, lr_size, jpeger)
    return torch.clamp((out * 255.0).round(), 0, 255) / 255.


# ------------------------------------------------------------------ settings


def check_probability(key, value):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise ValueError(f'{key} must be a probability in [0, 1], got {value!r}')


def check_pair(key, value, low_bound=0., high_bound=math.inf, low_open=False, high_open=False):
    """``value`` is ``[low, high]`` with ``low_bound <= low <= high <= high_bound`` (bounds open as told)."""
    ok = isinstance(value, (list, tuple)) and len(value) == 2 and \
        all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
    if ok:
        low, high = value
        ok = low <= high and (low > low_bound if low_open else low >= low_bound) and \
            (high < high_bound if high_open else high <= high_bound)
    if not ok:
        bounds = f'{"(" if low_open else "["}{low_bound:g}, {high_bound:g}{")" if high_open else "]"}'
        raise ValueError(f'{key} must be a [low, high] pair with low <= high, both in {bounds}, got {value!r}')


def check_weights(key, value, length):
    if not (isinstance(value, (list, tuple)) and len(value) == length and
            all(isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0 for v in value) and sum(value) > 0):
        raise ValueError(f'{key} must be {length} weights >= 0, not all 0, got {value!r}')


def check_kernel_list(key, value):
    if not (isinstance(value, (list, tuple)) and value and all(v in KERNEL_TYPES for v in value)):
        raise ValueError(f'{key} must be a list of kernel types from {", ".join(KERNEL_TYPES)}, got {value!r}')


def check_settings(settings):
    """ValueError naming the first bad setting (the keys of :data:`REAL_ESRNET_X4PLUS`, all present)."""
    for suffix in ('', '2'):
        if settings['blur_kernel_size' + suffix] != KERNEL_SIZE:
            raise ValueError(f'blur_kernel_size{suffix} must be {KERNEL_SIZE}: BasicSR\'s RealESRGANDataset reads it '
                             f'but draws kernel sizes 7..21 and pads every kernel to 21 x 21, got '
                             f'{settings["blur_kernel_size" + suffix]!r}')
        check_kernel_list('kernel_list' + suffix, settings['kernel_list' + suffix])
        check_weights('kernel_prob' + suffix, settings['kernel_prob' + suffix], len(settings['kernel_list' + suffix]))
        check_pair('blur_sigma' + suffix, settings['blur_sigma' + suffix], low_open=True)
        check_pair('betag_range' + suffix, settings['betag_range' + suffix], low_open=True)
        check_pair('betap_range' + suffix, settings['betap_range' + suffix], low_open=True)
        check_weights('resize_prob' + suffix, settings['resize_prob' + suffix], 3)
        check_pair('noise_range' + suffix, settings['noise_range' + suffix])
        check_pair('poisson_scale_range' + suffix, settings['poisson_scale_range' + suffix])
        check_pair('jpeg_range' + suffix, settings['jpeg_range' + suffix], 1, 100, high_open=True)
        for key in ('sinc_prob', 'gaussian_noise_prob', 'gray_noise_prob'):
            check_probability(key + suffix, settings[key + suffix])
    check_pair('resize_range', settings['resize_range'], low_open=True)
    check_pair('resize_range2', settings['resize_range2'], low_open=True)
    for key in ('resize_range', 'resize_range2'):
        if not settings[key][0] <= 1 <= settings[key][1]:
            raise ValueError(f'{key} must be [low, high] with low <= 1 <= high (down, up), got {settings[key]!r}')
    check_probability('final_sinc_prob', settings['final_sinc_prob'])
    check_probability('second_blur_prob', settings['second_blur_prob'])


def smallest_factor(resize_prob, resize_range):
    """The smallest resize factor that ``draw_resize_factor`` can give: ``low`` if 'down' can be drawn, else 1."""
    return resize_range[0] if resize_prob[1] > 0 else 1


def min_hr_side(settings, scale):
    """The smallest multiple of ``scale`` that every side of the HR must reach: each 21 x 21 filter pads by
    reflection (10 pixels, less than the side) the HR, the second blur's input (the HR resized by the smallest
    first factor) and the LR (H / scale); the second resize must leave a pixel."""
    first = smallest_factor(settings['resize_prob'], settings['resize_range'])
    second = smallest_factor(settings['resize_prob2'], settings['resize_range2'])
    radius = KERNEL_SIZE // 2
    side = scale
    while not (side > radius and side // scale > radius and int(side / scale * second) >= 1 and
               (settings['second_blur_prob'] == 0 or math.floor(side * first) > radius)):
        side += scale
    return side


# ------------------------------------------------------------------ generators owned by a seeded degradation


class OwnedGenerators:
    """The states of Python's, NumPy's and torch's (per device) global generators of one seeded degradation.

    BasicSR's functions draw from the global generators; :meth:`active` installs these states for the time of a
    call and puts the global ones back after it (not thread-safe: one degradation at a time per process).
    """

    def __init__(self, seed):
        self.seed = seed
        self.python = random.Random(seed).getstate()
        self.numpy = np.random.RandomState(seed).get_state()
        self.torch = {}

    @contextlib.contextmanager
    def active(self, device):
        if device.type not in ('cpu', 'cuda'):
            raise ValueError(f'RealESRGANDegradation: a seed works on CPU and CUDA tensors only, got {device}')
        if device not in self.torch:
            self.torch[device] = torch.Generator(device=device).manual_seed(self.seed).get_state()
        python, numpy = random.getstate(), np.random.get_state()
        random.setstate(self.python)
        np.random.set_state(self.numpy)
        try:
            with torch.random.fork_rng(devices=[device] if device.type == 'cuda' else []):
                if device.type == 'cuda':
                    torch.cuda.set_rng_state(self.torch[device], device)
                else:
                    torch.set_rng_state(self.torch[device])
                yield
                self.torch[device] = torch.cuda.get_rng_state(device) if device.type == 'cuda' else \
                    torch.get_rng_state()
            self.python, self.numpy = random.getstate(), np.random.get_state()
        finally:
            random.setstate(python)
            np.random.set_state(numpy)


def owned_jpeger():
    """BasicSR's DiffJPEG (not differentiable, as RealESRNetModel's) with its own copy of the quantisation tables:
    they are module-level Parameters shared by every DiffJPEG, which moving one to another device would move."""
    return copy.deepcopy(DiffJPEG(differentiable=False)).requires_grad_(False)


class RealESRGANDegradation(nn.Module):
    """HR batch -> LR batch by Real-ESRGAN's second-order degradation, exactly as BasicSR 1.4.2 trains Real-ESRNet.

    Per sample, the kernels of ``RealESRGANDataset.__getitem__`` (kernel1, kernel2: ``random_mixed_kernels`` or,
    with ``sinc_prob``/``sinc_prob2``, a sinc; sizes from 7..21, padded to 21; the final sinc kernel with
    ``final_sinc_prob``, else a pulse); then per batch ``RealESRNetModel.feed_data``: blur, random resize (up, down,
    keep; area, bilinear or bicubic), Gaussian or Poisson noise (gray with ``gray_noise_prob``), JPEG; the second
    blur with ``second_blur_prob``, resize, noise; resize to H/scale x W/scale + final sinc and JPEG in a random
    order; clamp and round to 8 bits. Left out of ``feed_data``: the USM sharpening of the GT (``gt_usm``; train
    with L1 against the plain GT), the final random crop (the input is already the HR patch; the LR is its whole
    degradation) and the training pair pool (``queue_size``: it only reshuffles pairs across batches).

    Args:
        scale: the SR scale (RealESRNetModel's ``scale``).
        settings: overrides of :data:`REAL_ESRNET_X4PLUS` (Real-ESRGAN's ``options/train_realesrnet_x4plus.yml``;
            the option names are BasicSR's).
        seed: None draws from Python's, NumPy's and torch's global generators, as BasicSR does (``manual_seed``
            seeds them); an integer gives the degradation generators of its own (:class:`OwnedGenerators`), so
            that two degradations with the same seed give the same LR, and the global generators are left alone.

    Shape:
        (B, 3, H, W) RGB in [0, 1], H and W multiples of ``scale`` and at least :attr:`min_side` ->
        (B, 3, H/scale, W/scale) in [0, 1] on the 1/255 grid, no gradient, on hr's device and in its dtype
        (computed in float32, as Real-ESRGAN does). RGB only: DiffJPEG and the gray Poisson noise need 3 channels.
    """

    def __init__(self, scale=4, settings=None, seed=None):
        super().__init__()
        if not is_int(scale) or scale < 1:
            raise ValueError(f'scale must be an integer >= 1, got {scale!r}')
        if seed is not None and not is_int(seed):
            raise ValueError(f'seed must be an integer or null, got {seed!r}')
        unknown = set(settings or {}) - set(REAL_ESRNET_X4PLUS)
        if unknown:
            raise ValueError(f'unknown Real-ESRGAN setting(s) {", ".join(sorted(unknown))}')
        self.settings = copy.deepcopy({**REAL_ESRNET_X4PLUS, **(settings or {})})
        check_settings(self.settings)
        self._scale = scale
        self.seed = seed
        self.min_side = min_hr_side(self.settings, scale)
        self.generators = None if seed is None else OwnedGenerators(seed)
        self.jpeger = owned_jpeger()

    @classmethod
    def from_options(cls, section):
        """From an option file's ``degradation.real_esrgan`` section: ``scale`` (default 4), ``seed`` and any of
        :data:`REAL_ESRNET_X4PLUS`'s keys; an unknown key or a bad value is one ValueError naming it."""
        if not isinstance(section, dict):
            raise ValueError(f'degradation.real_esrgan must be a section of Real-ESRGAN settings ({{scale: 4}}, and '
                             f'any of {", ".join(REAL_ESRNET_X4PLUS)}), got {section!r}')
        check_known_keys(section, OPTIONS, 'degradation.real_esrgan', 'RealESRGANDegradation')
        settings = {key: value for key, value in section.items() if key not in ('scale', 'seed')}
        try:
            return cls(scale=section.get('scale', 4), settings=settings, seed=section.get('seed'))
        except ValueError as e:
            raise ValueError(f'degradation.real_esrgan: {e}') from e

    @property
    def scale(self):
        return self._scale

    def check_input(self, shape):
        """ValueError unless ``shape`` is (B, 3, H, W) with H and W multiples of the scale, at least ``min_side``."""
        if len(shape) != 4 or shape[1] != 3:
            raise ValueError(f'RealESRGANDegradation takes RGB batches (B, 3, H, W) (BasicSR\'s DiffJPEG and gray '
                             f'noise need 3 channels), got shape {tuple(shape)}')
        h, w = shape[2:]
        if h % self.scale or w % self.scale:
            raise ValueError(f'RealESRGANDegradation: HR patches of {h}x{w} are not multiples of the scale '
                             f'{self.scale}')
        if min(h, w) < self.min_side:
            raise ValueError(f'RealESRGANDegradation: HR patches of {h}x{w} are too small for these settings at x'
                             f'{self.scale}: each side must be at least {self.min_side} (the 21x21 filters pad by '
                             f'reflection after the resizes; gt_size >= {self.min_side})')

    @torch.no_grad()
    def forward(self, hr):
        self.check_input(hr.shape)
        gt = hr.float()
        if self.jpeger.compress.l1[0].matrix.device != hr.device:
            self.jpeger.to(hr.device)
        generators = contextlib.nullcontext() if self.generators is None else self.generators.active(hr.device)
        with generators:
            kernels = [k.to(hr.device) for k in draw_kernels(self.settings, hr.shape[0])]
            lr = degrade_batch(gt, kernels, self.settings, self.scale, self.jpeger)
        return lr.to(hr.dtype)

    def extra_repr(self):
        changed = {key: value for key, value in self.settings.items() if value != REAL_ESRNET_X4PLUS[key]}
        return f'scale={self.scale}, seed={self.seed!r}' + (f', settings={changed}' if changed else '')
