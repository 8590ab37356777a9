"""Online DML degradation: a trained DMLNet checkpoint turned into an HR -> LR batch transform.

This is where Syn-DML pairs are made, for any training code::

    deg = DMLDegradation.from_checkpoint('experiments/.../models/net_g_latest.pth', noise_sigma=5.0)
    lr = deg(hr)   # (B, C, H, W) in [0, 1] -> (B, C, ceil(H/s), ceil(W/s)), on hr's device
"""
import itertools

import torch
import torch.nn as nn

from dml_basicsr.archs import FixedKernelNet
from dml_basicsr.archs.network_loading import load_dmlnet
from dml_basicsr.ops import rgb_to_y
from dml_basicsr.utils.options import check_known_keys, constructor_options, is_finite_number, is_int
from .noise_fit import FittedNoise, checkpoint_noise
from .pretrained_models import (checkpoint_or_pretrained, pretrained_manifest, pretrained_noise, pretrained_path,
                                shipped_name)

NOISE_KINDS = ('awgn', 'fitted')
DEFAULT_NOISE_SIGMA = 5.0


def weight_net_input(net, hr):
    """What ``net``'s weight CNN sees of ``hr``: the image itself, or its Y channel for a Y model on RGB."""
    channels = hr.shape[1]
    if channels == net.num_in_ch:
        return hr
    if channels == 3 and net.num_in_ch == 1:
        return rgb_to_y(hr)
    raise ValueError(f'DMLDegradation: input has {channels} channels; the model takes {net.num_in_ch}'
                     f'{" (or 3: RGB through its Y weights)" if net.num_in_ch == 1 else ""}')


def weight_cnn_memory_format(device):
    """The memory format of the weight CNN's convolution weights during synthesis on ``device``: channels_last on
    the CPU, where oneDNN's convolutions of the shipped models were 25-35% faster with it, the same values within
    float rounding (``benchmarks/peer_degradation.py``); PyTorch's default elsewhere (CUDA: not measured here)."""
    return torch.channels_last if device.type == 'cpu' else torch.contiguous_format


# How far outside [0, 1] an HR batch may stray (resampling overshoot) before it is taken for another range (0-255).
INPUT_SLACK = 0.5


# The largest AWGN sigma (0-255 scale): above it the noise only saturates every pixel (and 1e39 overflows float32).
MAX_NOISE_SIGMA = 255


def _is_sigma(value):
    return is_finite_number(value) and 0 <= value <= MAX_NOISE_SIGMA


def sigma_range(noise_sigma):
    """``(low, high)`` AWGN sigmas (0-255 scale) of ``noise_sigma``: a number, None, or a ``[low, high]`` pair;
    ValueError unless they are finite, in [0, :data:`MAX_NOISE_SIGMA`] and low <= high."""
    if noise_sigma is None:
        return 0., 0.
    pair = isinstance(noise_sigma, (tuple, list))
    low, high = (noise_sigma if len(noise_sigma) == 2 else (None, None)) if pair else (noise_sigma, noise_sigma)
    if not (_is_sigma(low) and _is_sigma(high) and low <= high):
        raise ValueError(f'noise_sigma must be a finite number >= 0 and <= {MAX_NOISE_SIGMA} (0-255 scale) or a '
                         f'[low, high] pair of them with low <= high, got {noise_sigma!r}')
    return float(low), float(high)


def check_hr_batch(hr):
    """ValueError unless ``hr`` is a floating-point (B, C, H, W) batch of finite values in about [0, 1]."""
    if not torch.is_tensor(hr) or hr.ndim != 4:
        shape = tuple(hr.shape) if torch.is_tensor(hr) else type(hr).__name__
        raise ValueError(f'DMLDegradation: input must be a (B, C, H, W) tensor, got {shape}')
    if not hr.is_floating_point():
        raise ValueError(f'DMLDegradation: input must be floating point in [0, 1], got {hr.dtype} (divide 8-bit '
                         'images by 255)')
    if hr.numel() == 0:
        raise ValueError(f'DMLDegradation: input is empty, shape {tuple(hr.shape)}')
    low, high = (float(v) for v in torch.aminmax(hr.detach()))
    if not (low >= -INPUT_SLACK and high <= 1 + INPUT_SLACK):  # also false for NaN
        hint = ' (0-255 images? divide by 255)' if high > 1 + INPUT_SLACK and high <= 255 else ''
        raise ValueError(f'DMLDegradation: input values must be finite and in [0, 1], got [{low:.4g}, {high:.4g}]'
                         f'{hint}')


SOURCE_KEYS = ('checkpoint', 'pretrained', 'fixed_kernel', 'real_esrgan', 'dsgan')
DML_SOURCE_KEYS = SOURCE_KEYS[:3]  # what DMLDegradation.from_options builds; real_esrgan, dsgan: their own modules
FIXED_KERNEL_KEYS = constructor_options(FixedKernelNet) - {'num_in_ch'}  # what DMLDegradation.fixed_kernel passes on


def degradation_source(options):
    """``(key, value)`` of the one source a ``degradation`` option section names (ValueError if none or several):
    ``checkpoint`` (a DMLNet .pth), ``pretrained`` (a shipped model's name), ``fixed_kernel`` (the options of
    a :class:`FixedKernelNet`, e.g. ``{kernel: gaussian, sigma: 1.5}``: the non-learned baseline) or
    ``real_esrgan`` (the settings of a :class:`~.real_esrgan_degradation.RealESRGANDegradation`, e.g.
    ``{scale: 4}``: Real-ESRGAN's second-order degradation) or ``dsgan`` (``{checkpoint: PTH, scale: 4}``: a trained
    DSGAN's generator on the bicubic downscale)."""
    named = [key for key in SOURCE_KEYS if options.get(key)]
    if len(named) != 1:
        raise ValueError('the degradation section needs exactly one of checkpoint (a trained DMLNet .pth), '
                         f'pretrained (one of: {", ".join(sorted(pretrained_manifest()))}), fixed_kernel '
                         '({kernel: gaussian, sigma: 1.5} etc.), real_esrgan ({scale: 4}: Real-ESRGAN\'s '
                         'degradation) or dsgan ({checkpoint: PTH, scale: 4}: a trained DSGAN); it has '
                         f'{", ".join(named) or "none"}')
    return named[0], options[named[0]]


def check_noise(noise, noise_sigma=DEFAULT_NOISE_SIGMA):
    """ValueError unless ``noise`` is None, 'awgn', 'fitted' or fitted parameters (a :class:`FittedNoise` or the
    mapping of a noise file), or if fitted noise comes with a ``noise_sigma`` other than the default (which it
    replaces)."""
    if noise is not None and not isinstance(noise, (FittedNoise, dict)) and noise not in NOISE_KINDS:
        raise ValueError(f"DMLDegradation: noise must be 'awgn' (white Gaussian of noise_sigma, the default) or "
                         f"'fitted' (the model's fitted signal-dependent noise), got {noise!r}")
    if noise not in (None, 'awgn') and noise_sigma != DEFAULT_NOISE_SIGMA:
        raise ValueError(f"DMLDegradation: noise 'fitted' replaces the AWGN of noise_sigma; noise_sigma "
                         f"{noise_sigma!r} with it is contradictory: remove noise_sigma (or noise)")


class DMLDegradation(nn.Module):
    """HR batch -> realistic LR batch with a learned DML model, plus AWGN (the paper) or the model's fitted noise.

    Args:
        net: a trained :class:`DMLNet` (frozen, eval mode).
        noise_sigma: AWGN standard deviation on the 0-255 scale (paper: 5); 0 disables; a
            ``(low, high)`` pair draws one sigma per image, uniformly.
        clamp: clip the LR to [0, 1].
        round_8bit: quantise the LR to 8 bits (as if saved as PNG).
        seed: seed of the noise generator (per device); None uses torch's global RNG.
        noise: None or 'awgn' (default): the AWGN of ``noise_sigma``. Fitted noise instead (signal-dependent, per
            channel, maybe spatially correlated; see :mod:`~dml_basicsr.degradation.noise_fit`): its parameters (a
            :class:`FittedNoise` or a noise file's mapping), or 'fitted' through :meth:`from_checkpoint` /
            :meth:`pretrained`, which read the model's own (``<checkpoint>.noise.yml``, the ``noise:`` entry of
            ``models.yml``). With it, ``noise_sigma`` must stay at its default (it is not used).

    Shape:
        (B, C, H, W) in [0, 1] -> (B, C, ceil(H/s), ceil(W/s)). C may be the network's
        ``num_in_ch``, or 3 for a Y-trained network: the weights are then predicted from Y and
        the same per-pixel kernels are applied to each RGB channel.
    """

    def __init__(self, net, noise_sigma=5.0, clamp=True, round_8bit=False, seed=None, noise=None):
        super().__init__()
        self.check_options(noise_sigma, clamp, round_8bit, seed, noise)
        if noise == 'fitted':
            raise ValueError("DMLDegradation: noise 'fitted' is read from a model's fitted parameters: build with "
                             "DMLDegradation.from_checkpoint(path, noise='fitted') or .pretrained(name, "
                             "noise='fitted') (a fixed kernel has no fitted noise), or pass the parameters")
        self.fitted_noise = FittedNoise(noise, 'noise') if isinstance(noise, dict) else (
            noise if isinstance(noise, FittedNoise) else None)
        self.noise = 'awgn' if self.fitted_noise is None else 'fitted'
        self.net = net.eval().requires_grad_(False)
        self.noise_sigma = noise_sigma
        self.clamp = clamp
        self.round_8bit = round_8bit
        self.seed = seed
        self._generators = {}

    @staticmethod
    def check_options(noise_sigma=5.0, clamp=True, round_8bit=False, seed=None, noise=None):
        """ValueError naming the first of these options (see the class) that is not a usable value."""
        sigma_range(noise_sigma)
        check_noise(noise, noise_sigma)
        for key, value in (('clamp', clamp), ('round_8bit', round_8bit)):
            if not isinstance(value, bool):
                raise ValueError(f'DMLDegradation: {key} must be true or false, got {value!r}')
        if seed is not None and not is_int(seed):
            raise ValueError(f'DMLDegradation: seed must be an integer or None, got {seed!r}')

    @classmethod
    def from_checkpoint(cls, path, noise_sigma=5.0, param_key='params', noise=None, **kwargs):
        """Load the ``.pth`` that ``basicsr train`` writes for a DMLNet (``net_g_*.pth``), or a shipped model by name
        where no file of that name exists (``'realsr-x4'``, as :meth:`pretrained`); ``noise='fitted'``: with the noise
        ``basicsr fit-noise --save-beside`` fitted for it (``<path>.noise.yml``, its sha256 checked; a shipped
        model's own)."""
        check_noise(noise, noise_sigma)
        name = shipped_name(path)
        path = checkpoint_or_pretrained(path)
        if noise == 'fitted':
            noise = pretrained_noise(name) if name is not None else checkpoint_noise(path)
        return cls(load_dmlnet(path, param_key), noise_sigma, noise=noise, **kwargs)

    @classmethod
    def pretrained(cls, name=None, noise_sigma=5.0, noise=None, **kwargs):
        """A DML model shipped with the package, e.g. ``'city100-nikon-x1'`` (see ``pretrained/models.yml``
        for the data, the command, the validation figures and the fitted noise of each); no name: the error lists
        them. ``noise='fitted'``: its fitted noise instead of AWGN."""
        check_noise(noise, noise_sigma)
        path = pretrained_path(name)
        if noise == 'fitted':
            noise = pretrained_noise(name)
        return cls.from_checkpoint(path, noise_sigma, noise=noise, **kwargs)

    @classmethod
    def fixed_kernel(cls, kernel='gaussian', sigma=1.0, scale=1, kernel_size=None, noise_sigma=5.0, **kwargs):
        """A non-learned degradation (Gaussian, bicubic or no blur, one kernel everywhere; see
        :class:`FixedKernelNet`) through the same noise, clamping and rounding: the Syn-Gaussian baseline."""
        net = FixedKernelNet(scale=scale, kernel=kernel, sigma=sigma, kernel_size=kernel_size)
        return cls(net, noise_sigma, **kwargs)

    @classmethod
    def from_options(cls, options):
        """From an option file's ``degradation`` section: ``checkpoint`` (and ``param_key``), ``pretrained`` or
        ``fixed_kernel``, plus this class's own options. (``real_esrgan`` is not a DML model:
        :func:`~dml_basicsr.degradation.build_degradation` builds every source.)"""
        key, value = degradation_source(options)
        if key not in DML_SOURCE_KEYS:
            raise ValueError(f'degradation.{key} is not a DML degradation: build it with '
                             'dml_basicsr.degradation.build_degradation (RealESRGANDegradation)')
        kwargs = {k: v for k, v in options.items() if k not in SOURCE_KEYS}
        try:
            cls.check_options(**{k: v for k, v in kwargs.items() if k != 'param_key'})
        except ValueError as e:
            raise ValueError(f'degradation.{str(e).removeprefix("DMLDegradation: ")}') from None
        if key == 'checkpoint':
            return cls.from_checkpoint(value, **kwargs)
        kwargs.pop('param_key', None)
        if key == 'pretrained':
            return cls.pretrained(value, **kwargs)
        if not isinstance(value, dict):
            raise ValueError(f'degradation.fixed_kernel must be a section of FixedKernelNet options '
                             f'(kernel, sigma, scale, kernel_size), got {value!r}')
        check_known_keys(value, FIXED_KERNEL_KEYS, 'degradation.fixed_kernel', 'FixedKernelNet')
        try:
            return cls.fixed_kernel(**value, **kwargs)
        except ValueError as e:
            raise ValueError(f'degradation.fixed_kernel: {e}') from e

    @property
    def scale(self):
        return self.net.scale

    def _generator(self, device):
        if self.seed is None:
            return None
        if device not in self._generators:
            self._generators[device] = torch.Generator(device=device).manual_seed(self.seed)
        return self._generators[device]

    def _sigmas(self, batch, device, dtype, generator):
        """(B, 1, 1, 1) noise sigmas on the [0, 1] scale."""
        if isinstance(self.noise_sigma, (tuple, list)):
            low, high = sigma_range(self.noise_sigma)
            u = torch.rand(batch, 1, 1, 1, device=device, dtype=dtype, generator=generator)
            return (low + (high - low) * u) / 255.
        return torch.full((batch, 1, 1, 1), sigma_range(self.noise_sigma)[0] / 255., device=device, dtype=dtype)

    def ready_net(self, device):
        """Move the network to ``device`` if it is elsewhere (the same values; its dtype stays, for every caller that
        shares it), its weight CNN's convolution weights in the layout of :func:`weight_cnn_memory_format`; returns
        the network."""
        net = self.net
        if self.net_dtype_device()[1] != device:
            net.to(device)
        cnn = getattr(net, 'weight_net', None)
        convs = [p for p in cnn.parameters() if p.dim() == 4] if cnn is not None else []
        layout = weight_cnn_memory_format(device)
        if convs and not convs[-1].is_contiguous(memory_format=layout):
            cnn.to(memory_format=layout)
        return net

    def net_dtype_device(self):
        """(dtype, device) of the network's floating-point tensors: what it computes in."""
        tensor = next(t for t in itertools.chain(self.net.parameters(), self.net.buffers()) if t.is_floating_point())
        return tensor.dtype, tensor.device

    def degrade_clean(self, hr):
        """The noise-free LR (no clamp, no rounding), computed in the network's dtype, returned in ``hr``'s."""
        check_hr_batch(hr)
        net = self.ready_net(hr.device)
        x = hr.to(self.net_dtype_device()[0])
        return net.degrade(x, weight_net_input(net, x)).to(hr.dtype)

    @torch.no_grad()
    def forward(self, hr):
        return self.add_noise(self.degrade_clean(hr))

    @torch.no_grad()
    def add_noise(self, lr, generator=None):
        """The rest of :meth:`forward` on a clean LR batch (:meth:`degrade_clean`'s): the noise (fitted: its variance
        from the clean intensity clamped to [0, 1]; else AWGN), drawn from ``generator`` (default: this
        degradation's, on ``lr``'s device), then the clamping and rounding. The one noise of the project: online
        batches and ``basicsr synthesize`` both draw it here."""
        generator = self._generator(lr.device) if generator is None else generator
        if self.fitted_noise is not None:
            lr = lr + self.fitted_noise.sample(lr.clamp(0, 1), generator)
        elif self.noise_sigma:
            sigma = self._sigmas(lr.shape[0], lr.device, lr.dtype, generator)
            lr = lr + sigma * torch.randn(lr.shape, device=lr.device, dtype=lr.dtype, generator=generator)
        if self.clamp:
            lr = lr.clamp(0, 1)
        if self.round_8bit:
            lr = torch.round(lr * 255.) / 255.
        return lr
