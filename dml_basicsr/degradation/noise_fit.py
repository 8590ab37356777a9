"""The fitted noise of a DML model: measured on the residual ``real LR - DML(HR)`` of its training pairs, stored
beside it as plain YAML, drawn in :class:`~dml_basicsr.degradation.DMLDegradation` instead of AWGN.

What is fitted (per colour space of the LR, per channel; tensor math in :mod:`dml_basicsr.ops.noise_model`):

* a signal-dependent Gaussian, ``var = a * I + b`` for the clean (synthetic, noise-free) LR intensity ``I`` in
  [0, 1]. Robust to the model's own error on edges: the residual is high-passed (minus its 5x5 local mean), only
  flat pixels are used (no Sobel gradient of the clean LR above ``threshold`` in the 5x5 window, 8 border pixels
  excluded), and per intensity bin (16 over [0, 1], bins of fewer than ``min_count`` pixels skipped) the standard
  deviation is the MAD estimate; ``a, b >= 0`` come from a least-squares line through the bins' variances weighted
  by count / variance^2;
* the spatial correlation: the lag-1 autocorrelation (vertical, horizontal) of the high-passed flat residual per
  channel is measured (``lag1_highpass``); the high-pass lowers it, so the noise's own lag-1 autocorrelation
  (``lag1``, the mean over the channels) is the one whose high-passed noise measures the same
  (:func:`~dml_basicsr.ops.noise_model.fit_correlation_taps`). Where it exceeds :data:`CORRELATION_MIN` in absolute
  value, a separable 3x3 unit-energy filter ``[c, 1, c] / sqrt(1 + 2c^2)`` per direction with that lag-1
  autocorrelation is applied to the white noise; the bins' deviations are then divided by the high-pass gain of
  that correlated noise instead of white noise's.

The fit is deterministic (no random draws; fixed bins and a median), so the same pairs give the same numbers.

The file (``<checkpoint>.noise.yml``, ``basicsr fit-noise``'s ``noise.yml``, a shipped model's ``noise:`` entry)::

    model: signal_dependent_gaussian
    scale: '[0, 1]: var = a * I + b, I the clean LR intensity in [0, 1]'
    checkpoint_sha256: ...          # the weights it was fitted for (not in models.yml: the entry's sha256 is)
    rgb:                            # and/or y: the LR colour space it was fitted on (1 or 3 channels)
      a: [...]                      # per channel
      b: [...]
      filter_v: [c, 1, c]/n or null # spatial correlation (null: white)
      filter_h: ...
      lag1: {v: ..., h: ...}        # of the noise (lag1_highpass: as measured on the high-passed residual)
      pairs: 60
      data: ...                     # the option file and dataset section
      bins: {intensity: [[...]], std: [[...]], count: [[...]]}   # per channel, std on [0, 1] (null: too few)
"""
import math
import os

import torch

from dml_basicsr.data.errors import DatasetError
from dml_basicsr.ops.frequency_split import box_highpass
from dml_basicsr.ops.noise_model import (fit_variance_line, flat_mask, highpass_gain,
                                         fit_correlation_taps, lag1_autocorrelation, noise_level_function,
                                         signal_dependent_noise)
from dml_basicsr.utils.checkpoint import CheckpointError, file_sha256
from dml_basicsr.utils.output_folder import output_file
from dml_basicsr.utils.safe_yaml import dump_yaml, read_yaml

NOISE_SUFFIX = '.noise.yml'
MODEL = 'signal_dependent_gaussian'
COLORS = {1: 'y', 3: 'rgb'}
# |lag-1 autocorrelation| above which the noise is drawn correlated (below, white noise is within the estimate's
# spread and the filter would change nothing measurable).
CORRELATION_MIN = 0.05


def fit_command(where):
    """The command that fits the noise of ``where`` (a checkpoint path or a shipped model's name)."""
    if where.endswith('.pth'):
        return (f'basicsr fit-noise -opt <its training option file> --checkpoint {where} --output <dir> '
                '--save-beside')
    return (f'basicsr fit-noise -opt <its training option file> --checkpoint <a copy of the {where} .pth> '
            '--output <dir> --save-beside, then use that copy with noise: fitted')


def noise_path(checkpoint):
    """Where a checkpoint's fitted noise lives: ``<checkpoint>.noise.yml``."""
    return str(checkpoint) + NOISE_SUFFIX


def _floats(value, channels, key, where):
    if not (isinstance(value, list) and len(value) == channels
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value)):
        raise ValueError(f'{where}: {key} must be a list of {channels} finite numbers, got {value!r}')
    return [float(v) for v in value]


def check_entry(entry, color, where):
    """The usable parameters ``{a, b, filter_v, filter_h}`` of one colour entry; ValueError naming the key."""
    if not isinstance(entry, dict):
        raise ValueError(f'{where}: {color} must be a mapping of the fitted parameters (a, b, ...), got {entry!r}')
    channels = 1 if color == 'y' else 3
    a = _floats(entry.get('a'), channels, f'{color}.a', where)
    b = _floats(entry.get('b'), channels, f'{color}.b', where)
    if min(a + b) < 0:
        raise ValueError(f'{where}: {color}.a and {color}.b must be >= 0 (variances), got a={a}, b={b}')
    filters = [entry.get('filter_v'), entry.get('filter_h')]
    if (filters[0] is None) != (filters[1] is None):
        raise ValueError(f'{where}: give both {color}.filter_v and {color}.filter_h, or neither')
    if filters[0] is not None:
        filters = [_floats(f, 3, f'{color}.filter_{d}', where) for f, d in zip(filters, 'vh')]
        for f, d in zip(filters, 'vh'):
            if abs(sum(x * x for x in f) - 1) > 1e-3:
                raise ValueError(f'{where}: {color}.filter_{d} must have unit energy (sum of squares 1), got {f}')
    return dict(a=a, b=b, filter_v=filters[0], filter_h=filters[1])


class FittedNoise:
    """The fitted noise of one model, per LR colour space; :meth:`sample` draws it for a clean LR batch.

    Args:
        data: the mapping of a noise file (see the module docstring): ``y`` and/or ``rgb`` entries.
        where: what it belongs to (a file, a shipped model), for errors.
    """

    def __init__(self, data, where):
        if not isinstance(data, dict):
            raise ValueError(f'{where}: the fitted noise must be a mapping (model, y/rgb entries), got {data!r}')
        if data.get('model', MODEL) != MODEL:
            raise ValueError(f'{where}: model {data.get("model")!r} is not a known noise model (expected {MODEL})')
        self.where = where
        self.data = data
        self.entries = {color: check_entry(data[color], color, where) for color in ('y', 'rgb') if color in data}
        if not self.entries:
            raise ValueError(f'{where}: the fitted noise has no y or rgb entry')

    def entry(self, channels):
        """The parameters for an LR of ``channels`` channels; ValueError saying how to fit the missing colour."""
        color = COLORS.get(channels)
        if color not in self.entries:
            have = ', '.join(self.entries)
            hint = ('color: ~ (RGB pairs)' if color == 'rgb' else 'color: y') if color else None
            refit = f'; fit it on {hint} pairs ({fit_command(self.where)})' if hint else ''
            raise ValueError(f'{self.where}: the fitted noise is for {have} LR, this LR has {channels} channel(s)'
                             f'{refit}')
        return self.entries[color]

    def sample(self, clean, generator=None):
        """Noise for the clean LR batch (B, C, h, w) in [0, 1] (its variance from ``clean``, clamped >= 0)."""
        e = self.entry(clean.shape[1])
        return signal_dependent_noise(clean, e['a'], e['b'], e['filter_v'], e['filter_h'], generator)

    def __repr__(self):
        return f'FittedNoise({self.where!r}, {", ".join(self.entries)})'


def read_noise_file(path, checkpoint=None):
    """The :class:`FittedNoise` of a noise file; ValueError naming the file if it is not one, or (given
    ``checkpoint``) if it was fitted for other weights."""
    data = read_yaml(path, ValueError)
    noise = FittedNoise(data, str(path))
    if checkpoint is not None:
        digest = file_sha256(str(checkpoint))
        if data.get('checkpoint_sha256') != digest:
            raise CheckpointError(f'{path}: fitted for the weights with sha256 {data.get("checkpoint_sha256")}, not '
                                  f'{checkpoint} ({digest}); refit: {fit_command(str(checkpoint))}')
    return noise


def checkpoint_noise(checkpoint):
    """The fitted noise beside ``checkpoint`` (``<checkpoint>.noise.yml``); ValueError with the command if none."""
    path = noise_path(checkpoint)
    if not os.path.isfile(path):
        raise ValueError(f"noise 'fitted': {checkpoint} has no fitted noise ({path} is missing); fit it with: "
                         f'{fit_command(str(checkpoint))}')
    return read_noise_file(path, checkpoint)


# ---------------------------------------------------------------------------------------------- fitting


def residual_pairs(deg, pairs):
    """``(name, clean (1, C, h, w), residual)`` for each ``(name, hr (1, C, H, W), real lr (1, C, h, w))`` in
    ``pairs`` (float in [0, 1]): the noise-free DML LR of the HR and ``real - clean``. DatasetError naming the pair
    if the sizes do not match (another scale) or the channels are not 1 or 3."""
    for name, hr, lr in pairs:
        if hr.shape[1] not in COLORS or lr.shape[1] != hr.shape[1]:
            raise DatasetError(f'{name}: HR has {hr.shape[1]} channels, LR {lr.shape[1]}; the noise is fitted on '
                               '1-channel (Y) or 3-channel (RGB) pairs of one colour space')
        clean = deg.degrade_clean(hr)
        if clean.shape != lr.shape:
            raise DatasetError(f'{name}: the x{deg.scale} model makes an LR of {tuple(clean.shape[2:])} from this '
                               f'HR, the real LR is {tuple(lr.shape[2:])}: pairs of another scale (check scale / '
                               'lr_downscale of the dataset section)')
        yield name, clean.clamp(0, 1), lr - clean


def fit_noise(deg, pairs, bins=16, size=5, threshold=0.004, border=8, min_count=500):
    """Fit the noise of the DML degradation ``deg`` on ``pairs`` (see :func:`residual_pairs`).

    Returns one colour entry of a noise file (a dict of plain data: a, b, filter_v, filter_h, lag1, pairs, bins,
    settings); DatasetError if there are no pairs or no intensity bin has ``min_count`` flat pixels."""
    cleans, residuals, masks, names = [], [], [], []
    with torch.no_grad():
        for name, clean, residual in residual_pairs(deg, pairs):
            names.append(name)
            cleans.append(clean)
            residuals.append(residual)
            masks.append(flat_mask(clean, threshold, size, border))
    if not names:
        raise DatasetError('no pairs to fit the noise on')
    channels = cleans[0].shape[1]
    if any(c.shape[1] != channels for c in cleans):
        raise DatasetError('the pairs mix 1-channel and 3-channel images')
    lag_v, lag_h = [torch.zeros(channels, dtype=torch.float64) for _ in range(2)]
    weight = 0
    for clean, residual, mask in zip(cleans, residuals, masks):
        n = float(mask.sum())
        if n:
            v, h = lag1_autocorrelation(box_highpass(residual.float(), size, border='reflect'), mask)
            lag_v += torch.nan_to_num(v) * n
            lag_h += torch.nan_to_num(h) * n
            weight += n
    lag_v, lag_h = (lag / max(weight, 1) for lag in (lag_v, lag_h))
    filter_v, filter_h, rho_v, rho_h = fit_correlation_taps(float(lag_v.mean()), float(lag_h.mean()), size)
    if max(abs(rho_v), abs(rho_h)) <= CORRELATION_MIN:
        filter_v = filter_h = None
    gain = highpass_gain(size, filter_v, filter_h)
    nlf = noise_level_function(cleans, residuals, masks, bins, size, gain, min_count)
    a, b = [], []
    for ch, (means, stds, counts) in enumerate(nlf):
        if all(math.isnan(s) for s in stds):
            raise DatasetError(f'no intensity bin of channel {ch} has {min_count} flat pixels in the {len(names)} '
                               f'pairs (threshold {threshold}); use more or larger pairs')
        var = [s * s for s in stds]
        weights = [c / max(v, 1e-12) ** 2 if not math.isnan(v) else 0 for c, v in zip(counts, var)]
        ac, bc = fit_variance_line(means, var, weights)
        a.append(ac)
        b.append(bc)
    rounded = lambda values, digits=8: [None if math.isnan(v) else float(f'{v:.{digits}g}')  # noqa: E731
                                        for v in values]
    return dict(
        a=rounded(a), b=rounded(b),
        filter_v=None if filter_v is None else rounded(filter_v, 6),
        filter_h=None if filter_h is None else rounded(filter_h, 6),
        lag1=dict(v=round(rho_v, 4), h=round(rho_h, 4)),
        lag1_highpass=dict(v=rounded(lag_v.tolist(), 4), h=rounded(lag_h.tolist(), 4)),
        pairs=len(names),
        settings=dict(bins=bins, size=size, threshold=threshold, border=border, min_count=min_count),
        bins=dict(intensity=[rounded(m, 5) for m, _, _ in nlf], std=[rounded(s, 5) for _, s, _ in nlf],
                  count=[c for _, _, c in nlf]),
    )


def dataset_pairs(dataset):
    """``(name, hr (1, C, H, W), lr (1, C, h, w))`` of each item of a paired dataset (``gt``, ``lq`` tensors)."""
    for index in range(len(dataset)):
        item = dataset[index]
        yield os.path.basename(item['gt_path']), item['gt'][None].float(), item['lq'][None].float()


def noise_file(entry, color, checkpoint=None, data=None):
    """A noise file's mapping with one colour entry (``data`` describes the pairs)."""
    out = dict(model=MODEL, scale='[0, 1]: var = a * I + b, I the clean LR intensity in [0, 1]')
    if checkpoint is not None:
        out['checkpoint_sha256'] = file_sha256(str(checkpoint))
    out[color] = dict(entry, data=data) if data is not None else dict(entry)
    return out


def merge_noise_file(path, new):
    """``new`` with the colour entries of an existing noise file at ``path`` that ``new`` lacks, when both were
    fitted for the same weights (else ``new`` alone)."""
    if not os.path.isfile(path):
        return new
    try:
        old = read_yaml(path, ValueError)
    except ValueError:
        return new
    if not isinstance(old, dict) or old.get('checkpoint_sha256') != new.get('checkpoint_sha256'):
        return new
    merged = dict(new)
    for color in ('y', 'rgb'):
        if color not in new and color in old:
            merged[color] = old[color]
    return merged


def noise_file_text(data):
    """The text of the noise file mapping ``data`` (plain YAML, short lists on one line)."""
    return dump_yaml(data, default_flow_style=None, width=120)


def write_noise_file(path, data):
    """Write the noise file mapping ``data`` to ``path`` (atomically, never through a link: OutputFolderError)."""
    folder, name = output_file(path, 'noise file')
    folder.write_text(name, noise_file_text(data))
