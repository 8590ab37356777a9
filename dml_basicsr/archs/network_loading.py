"""Trained networks rebuilt from checkpoints, experiment folders and option files.

    load_dmlnet('experiments/DML_x4/models/net_g_latest.pth')   # DMLNet, options read off its tensors
    load_network('experiments/VDSR_x4')                         # any arch, from the experiment's option copy

Every file is read through :mod:`dml_basicsr.utils.checkpoint` (weights only, errors name the file).
"""
import copy
import math
import os

import torch

from dml_basicsr.utils.checkpoint import CheckpointError, latest_numbered_file, load_state_dict
from dml_basicsr.utils.options import (OptionError, check_known_keys, constructor_options, did_you_mean, load_options,
                                       recorded_overrides)
from .directkpn_arch import DirectKPN
from .dml_arch import DMLNet


# The least |sum| / sum(|k|) a basis kernel may have: it is divided by its sum when normalised, so a kernel mostly
# cancelling itself is amplified by up to the inverse (a ratio of 0.002 gave 98% 0/255 LR). The shipped and model_zoo
# DMLNets have 0.19 to 0.90 (the least-squares k5 fits 0.19, an adapted DML 0.27, the others 0.5 or more).
MIN_BASIS_SUM_RATIO = 0.05


def cancelling_basis_kernel(basis):
    """``(index, sum, absolute sum)`` of the first kernel of the (M, K, K) ``basis`` whose |sum| is under
    :data:`MIN_BASIS_SUM_RATIO` of its absolute sum (or that is all zero), else None."""
    basis = basis.double()
    sums, scale = basis.sum(dim=(-2, -1)).tolist(), basis.abs().sum(dim=(-2, -1)).tolist()
    return next(((i, s, a) for i, (s, a) in enumerate(zip(sums, scale))
                 if abs(s) < MIN_BASIS_SUM_RATIO * a or a == 0), None)


def check_dmlnet_weights(state):
    """ValueError if the weights of a DMLNet state dict cannot make an image: a weight tensor that is not floating
    point (integers truncate every weight), or a basis kernel that (nearly) cancels itself
    (:func:`cancelling_basis_kernel`; normalised to sum 1, a zero kernel gives black LR images, a near-zero sum
    saturates them)."""
    integral = [k for k, v in state.items() if torch.is_tensor(v) and k != 'scale_factor' and not v.is_floating_point()]
    if integral:
        raise ValueError(f'not a usable DMLNet: {", ".join(integral[:3])} hold {state[integral[0]].dtype} values, not '
                         'floating point')
    cancelling = cancelling_basis_kernel(state['basis'])
    if cancelling is not None:
        index, total, scale = cancelling
        raise ValueError(f'not a usable DMLNet: basis kernel {index} sums to (nearly) zero ({total:.3g} against an '
                         f'absolute sum of {scale:.3g}, under {MIN_BASIS_SUM_RATIO:g} of it), so it cannot be '
                         'normalised to sum 1')


def dmlnet_from_state_dict(state):
    """A frozen DMLNet (eval mode) whose options are read off the tensor shapes of ``state``; ValueError if it is no
    DMLNet or :func:`check_dmlnet_weights` refuses its weights."""
    missing = [k for k in ('basis', 'scale_factor', 'weight_net.enc1.0.weight') if k not in state]
    if missing:
        raise ValueError(f'not a DMLNet state dict: missing {", ".join(missing)}')
    check_dmlnet_weights(state)
    num_basis, kernel_size, _ = state['basis'].shape
    num_feat, num_in_ch = state['weight_net.enc1.0.weight'].shape[:2]
    net = DMLNet(num_in_ch=num_in_ch, num_basis=num_basis, kernel_size=kernel_size,
                 scale=int(state['scale_factor']), num_feat=num_feat)
    net.load_state_dict(state)
    return net.eval().requires_grad_(False)


def directkpn_from_state_dict(state):
    """A DirectKPN whose options are read off the tensor shapes of ``state`` (scale 1: it is not saved)."""
    first = state['kernel_net.enc1.0.weight']
    net = DirectKPN(num_in_ch=first.shape[1], kernel_size=math.isqrt(state['kernel_net.conv_last.weight'].shape[0]),
                    num_feat=first.shape[0])
    net.load_state_dict(state)
    return net


def load_dmlnet(path, param_key='params'):
    """The frozen DMLNet of a ``net_g_*.pth`` that ``basicsr train`` wrote; CheckpointError naming the file if it
    is missing, unreadable, not a DMLNet or holds NaN/inf weights (a diverged training)."""
    try:
        return dmlnet_from_state_dict(load_state_dict(path, param_key))
    except CheckpointError:
        raise
    except (ValueError, RuntimeError) as e:
        raise CheckpointError(f'{path}: {e}') from e


def manifest_beside(pth):
    """(manifest path, row) of the ``models.yml`` beside ``pth`` whose row lists ``pth`` as its checkpoint, else
    None; the manifest is read as ``basicsr test`` reads it (every row checked, sha256s compared)."""
    from dml_basicsr.utils.model_manifest import ManifestError, read_manifest  # here: `python -m` runs that module

    manifest = os.path.join(os.path.dirname(os.path.abspath(pth)), 'models.yml')
    if not os.path.isfile(manifest):
        return None
    try:
        rows = read_manifest(manifest)
    except ManifestError as e:
        raise CheckpointError(str(e)) from None
    return next(((manifest, row) for row in rows if os.path.samefile(row['checkpoint'], pth)), None)


def _network_from_weights(pth):
    """A DMLNet or DirectKPN recognised from the tensors of a checkpoint; any other network from the row of the
    ``models.yml`` beside it that lists it (``model_zoo/<table>/``)."""
    state = load_state_dict(pth, 'params_ema')
    if 'basis' in state:
        return dmlnet_from_state_dict(state)
    if 'kernel_net.conv_last.weight' in state:
        return directkpn_from_state_dict(state)
    listed = manifest_beside(pth)
    if listed is None:
        raise CheckpointError(f'{pth}: cannot tell the architecture from the weights alone (only DMLNet and DirectKPN '
                              'are recognised) and no models.yml beside it lists it; give the experiment folder or '
                              'the option file instead')
    manifest, row = listed
    net = build_network_opt(row['network_g'], f'{manifest}: {row["label"]}: network_g')
    check_weights_fit(net, pth, 'params_ema')
    return net


def _network_from_options(yml, pth=None, force_yml=None):
    from basicsr.archs import build_network

    opt = load_options(yml, force_yml, what='the recorded --force_yml')
    if not isinstance(opt.get('network_g'), dict):
        raise CheckpointError(f'{yml}: no network_g section')
    pth = pth or (opt.get('path') or {}).get('pretrain_network_g')
    if not pth:
        raise CheckpointError(f'{yml}: path.pretrain_network_g is not set: which weights should be shown?')
    net = build_network(copy.deepcopy(opt['network_g']))
    net.load_state_dict(load_state_dict(pth, 'params_ema'))
    return net


def build_network_opt(network_opt, where):
    """The network of an option section such as ``network_g``, on the CPU, as BasicSR's ``build_network`` makes
    it (without its log line, which must not come before BasicSR sets up its log file).

    OptionError naming ``where`` (e.g. 'opt.yml: network_g') for a missing or unknown type, an option that the
    constructor of one of this package's archs does not take, and an error of the constructor.
    """
    from basicsr.utils.registry import ARCH_REGISTRY

    kwargs = dict(network_opt) if isinstance(network_opt, dict) else {}
    type_name = kwargs.pop('type', None)
    if not any(name in ARCH_REGISTRY for name in (type_name, f'{type_name}_basicsr')):
        raise OptionError(f'{where}: type {type_name!r} is not a registered network'
                          f'{did_you_mean(type_name, ARCH_REGISTRY.keys())}')
    cls = ARCH_REGISTRY.get(type_name)
    valid = constructor_options(cls)
    if valid is not None and cls.__module__.startswith('dml_basicsr.'):
        check_known_keys(kwargs, valid | {'type'}, where, type_name)
    try:
        return cls(**kwargs)
    except Exception as e:  # noqa: BLE001  (a constructor rejects bad values in many ways)
        message = (str(e).strip().splitlines() or [''])[0]
        raise OptionError(f'{where}: cannot build {type_name}: {type(e).__name__}: {message}') from e


def check_weights_fit(net, path, param_key='params', strict=True):
    """Load the weights of ``path`` into ``net`` as BasicSR's ``load_network`` does (``module.`` prefixes removed);
    CheckpointError naming the file if it is missing, unreadable, non-finite or (``strict``) does not fit.
    Not ``strict``, BasicSR drops what does not fit, so only the file itself is checked."""
    state = {(k[7:] if k.startswith('module.') else k): v for k, v in load_state_dict(path, param_key).items()}
    if not strict:
        return
    try:
        net.load_state_dict(state, strict=strict)
    except (RuntimeError, ValueError) as e:  # ValueError: DMLNet's own check of the trained scale
        lines = [line.strip() for line in str(e).splitlines() if line.strip()]
        details = '; '.join(lines[1:] if len(lines) > 1 else lines)
        details = details if len(details) <= 400 else details[:400] + ' ...'
        raise CheckpointError(f'{path}: does not fit {type(net).__name__}: {details}') from None


def latest_weights(models_dir):
    """``net_g_latest.pth`` of an experiment's ``models/`` folder, else its highest ``net_g_<iter>.pth``."""
    latest = os.path.join(models_dir, 'net_g_latest.pth')
    return latest if os.path.isfile(latest) else latest_numbered_file(models_dir, r'net_g_(\d+)\.pth')


def load_network(path):
    """A network in eval mode from a ``.pth`` (DMLNet/DirectKPN, recognised from the tensors), an
    experiment folder (its option copy with the recorded ``--force_yml`` overrides, its latest
    ``net_g``) or an option file (``network_g`` and ``path.pretrain_network_g``)."""
    if os.path.isdir(path):
        ymls = sorted(name for name in os.listdir(path) if name.endswith('.yml'))
        pth = latest_weights(os.path.join(path, 'models'))
        if len(ymls) != 1 or pth is None:
            raise CheckpointError(f'{path}: not an experiment folder (expected one option .yml file and '
                                  f'models/net_g_*.pth; found {len(ymls)} .yml, {"a" if pth else "no"} checkpoint)')
        yml = os.path.join(path, ymls[0])
        net = _network_from_options(yml, pth, recorded_overrides(yml))
    elif path.endswith(('.yml', '.yaml')):
        if not os.path.isfile(path):
            raise CheckpointError(f'{path}: option file not found')
        net = _network_from_options(path)
    elif path.endswith('.pth'):
        net = _network_from_weights(path)
    else:
        found = 'not found' if not os.path.exists(path) else 'not a .pth, .yml or folder'
        raise CheckpointError(f'{path}: {found} (expected a .pth checkpoint, an experiment folder or a .yml option '
                              'file)')
    return net.eval().requires_grad_(False)
