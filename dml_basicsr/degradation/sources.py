"""The ``degradation`` option section -> the degradation module of its source, for every source in one place.

``checkpoint`` (a ``.pth``, or a shipped model's name), ``pretrained`` and ``fixed_kernel`` give a
:class:`DMLDegradation` (blur and downsampling, then AWGN); ``real_esrgan`` gives a :class:`RealESRGANDegradation`
(Real-ESRGAN's second-order degradation, with its own noise); ``dsgan`` a :class:`DSGANSynthesis` (a trained DSGAN
generator on the bicubic downscale). All take ``(B, C, H, W)`` in [0, 1] and have a ``scale``.
"""
from dml_basicsr.utils.checkpoint import file_sha256
from dml_basicsr.utils.options import constructor_options, is_int
from .dml_degradation import DMLDegradation, degradation_source
from .dsgan_degradation import DSGANSynthesis
from .pretrained_models import checkpoint_or_pretrained, pretrained_manifest
from .real_esrgan_degradation import RealESRGANDegradation

# The section's keys that only a DML source reads (its noise, clamping and rounding, the checkpoint's key).
DML_ONLY_KEYS = tuple(sorted(constructor_options(DMLDegradation) - {'net', 'seed'})) + ('param_key',)


def offset_seed(seed, offset):
    """``seed + offset`` (each process of a distributed run draws its own), or ``seed`` itself when it is not an
    integer (None, or a bad value that the degradation refuses)."""
    if is_int(seed):
        return seed + offset
    return seed


def real_esrgan_section(options, seed_offset=0):
    """The ``real_esrgan`` section of the degradation ``options``, with the section-level ``seed`` moved into it
    (plus ``seed_offset``); ValueError for a DML-only key beside it or a seed given twice."""
    misplaced = [key for key in DML_ONLY_KEYS if key in options]
    if misplaced:
        raise ValueError(f'degradation: {misplaced[0]} is an option of the DML sources (checkpoint, pretrained, '
                         'fixed_kernel); real_esrgan adds its own noise and rounds to 8 bits (its settings, e.g. '
                         'noise_range, go in degradation.real_esrgan)')
    section = options['real_esrgan']
    if not isinstance(section, dict):
        return section  # RealESRGANDegradation.from_options says what it should be
    section = dict(section)
    if options.get('seed') is not None:
        if section.get('seed') is not None:
            raise ValueError('degradation: seed is given twice, as degradation.seed and degradation.real_esrgan.seed; '
                             'give one')
        section['seed'] = options['seed']
    if section.get('seed') is not None:
        section['seed'] = offset_seed(section['seed'], seed_offset)
    return section


def dsgan_section(options):
    """The ``dsgan`` section of the degradation ``options``; ValueError for a DML-only key or a seed beside it."""
    misplaced = [key for key in DML_ONLY_KEYS + ('seed',) if key in options]
    if misplaced:
        raise ValueError(f'degradation: {misplaced[0]} is an option of the DML sources (checkpoint, pretrained, '
                         'fixed_kernel); dsgan applies its trained generator as it is (its noise is learned)')
    return options['dsgan']


def build_degradation(options, seed_offset=0):
    """The degradation module of an option file's ``degradation`` section (exactly one source; ValueError naming the
    bad option otherwise): a :class:`DMLDegradation` or a :class:`RealESRGANDegradation`. ``seed_offset`` (the
    process rank) is added to a given ``seed``."""
    key, _ = degradation_source(options)
    if key == 'real_esrgan':
        return RealESRGANDegradation.from_options(real_esrgan_section(options, seed_offset))
    if key == 'dsgan':
        return DSGANSynthesis.from_options(dsgan_section(options))
    options = dict(options)
    if options.get('seed') is not None:
        options['seed'] = int(options['seed']) + seed_offset
    return DMLDegradation.from_options(options)


def describe_degradation(options, deg):
    """One line on the degradation ``deg`` built from ``options``, for the training log."""
    key, value = degradation_source(options)
    if key == 'real_esrgan':
        return f'Real-ESRGAN second-order degradation {dict(value)}: scale {deg.scale}, seed {deg.seed}'
    if key == 'dsgan':
        path = value['checkpoint']
        return f'DSGAN degradation from {path} (sha256 {file_sha256(path)}): scale {deg.scale}'
    if key == 'fixed_kernel':
        source = f'fixed-kernel degradation {dict(value)}'
    elif key == 'pretrained':
        # building the degradation checked the shipped file against this sha256 (pretrained_path)
        source = f'DML degradation from pretrained {value} (sha256 {pretrained_manifest()[value]["sha256"]})'
    else:
        source = f'DML degradation from {value} (sha256 {file_sha256(checkpoint_or_pretrained(value))})'
    if deg.fitted_noise is not None:
        return f'{source}: scale {deg.scale}, fitted noise ({", ".join(deg.fitted_noise.entries)})'
    return f'{source}: scale {deg.scale}, noise_sigma {deg.noise_sigma}'
