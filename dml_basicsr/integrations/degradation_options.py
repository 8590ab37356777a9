"""The :class:`DMLDegradation` behind the mmengine components, built from their config options.

Their sources are ``checkpoint`` (a ``.pth``, or a shipped model's name where no such file exists: the one resolver
:func:`~dml_basicsr.degradation.pretrained_models.checkpoint_or_pretrained`), ``pretrained`` and ``fixed_kernel``;
the option files' fourth, ``real_esrgan`` (:class:`~dml_basicsr.degradation.RealESRGANDegradation`, which has no
``noise_sigma``, ``clamp`` or ``round_8bit``), is not one of their arguments (an unknown option, ValueError): apply
that module to the batches in code of your own.
"""
import inspect

from dml_basicsr.degradation import DMLDegradation
from dml_basicsr.utils.options import did_you_mean


def refuse_unknown_options(owner, init, unknown):
    """ValueError naming the first of ``unknown`` (keyword arguments ``init`` does not take) and the closest it does;
    mmengine builds a component from a config dict, where a typo would otherwise be a bare TypeError."""
    if not unknown:
        return
    known = [name for name, p in inspect.signature(init).parameters.items()
             if name != 'self' and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    key = next(iter(unknown))
    hint = did_you_mean(key, known) or f' (its options: {", ".join(known)})'
    raise ValueError(f"{owner}: unknown option '{key}'{hint}")


def component_degradation(owner, source, param_key='params', noise_sigma=5.0, clamp=True, round_8bit=False,
                          seed=None, noise=None):
    """The DMLDegradation of an mmengine component (``owner``): ``DMLDegradation.from_options`` of these options
    (see :class:`DMLDegradation` for their meaning).

    ``source``: ``{'checkpoint': ..., 'pretrained': ...}`` and any other source key ``from_options`` knows (e.g.
    ``fixed_kernel``); unset ones are None. Raises one ValueError (a CheckpointError for a bad file) starting with
    ``owner``: no source or several, an unknown pretrained name (the message lists the shipped ones), a missing or
    damaged checkpoint, a bad ``noise_sigma`` or a ``seed`` that is not an integer, ``noise='fitted'`` for a model
    without fitted noise (the message names the command that fits it).
    """
    try:
        DMLDegradation.check_options(noise_sigma, clamp, round_8bit, seed, noise)
    except ValueError as e:
        raise ValueError(f'{owner}: {str(e).removeprefix("DMLDegradation: ")}') from None
    options = {key: value for key, value in source.items() if value is not None}
    options.update(param_key=param_key, noise_sigma=noise_sigma, clamp=clamp, round_8bit=round_8bit, seed=seed)
    if noise is not None:
        options['noise'] = noise
    try:
        return DMLDegradation.from_options(options)
    except ValueError as e:  # CheckpointError is one
        raise type(e)(f'{owner}: {e}') from e


def degradation_repr(deg, source):
    """The set source option (e.g. ``pretrained='...'``) and the noise options of ``deg``, for ``__repr__``."""
    named = ', '.join(f'{key}={value!r}' for key, value in source.items() if value is not None)
    noise = "noise='fitted'" if deg.fitted_noise is not None else f'noise_sigma={deg.noise_sigma!r}'
    return f'{named}, {noise}, clamp={deg.clamp}, round_8bit={deg.round_8bit}, seed={deg.seed!r}'
