"""DML models shipped inside the package (``degradation/pretrained/``), listed in ``pretrained/models.yml``.

    DMLDegradation.pretrained('city100-nikon-x1', noise_sigma=0)

A checkpoint argument or option takes a shipped model's name too: :func:`checkpoint_or_pretrained` resolves it.

Each entry names its weight file, that file's sha256 (checked before it is read), the data it was
trained on with its licence, the command that trained it, its validation figures and (``noise:``, optional) its
fitted noise (:mod:`.noise_fit`; ``DMLDegradation.pretrained(name, noise='fitted')``).
"""
import os
from importlib import resources

from dml_basicsr.utils.checkpoint import CheckpointError, file_sha256
from .noise_fit import FittedNoise, fit_command
from dml_basicsr.utils.safe_yaml import read_yaml

MANIFEST = 'models.yml'


def _folder():
    return resources.files('dml_basicsr.degradation') / 'pretrained'


def pretrained_manifest():
    """{name: entry} of the shipped models (entries: file, sha256, scale, data, license, command, validation);
    CheckpointError naming the file if it is missing or not such a mapping (a damaged install)."""
    path = _folder() / MANIFEST
    if not path.is_file():
        raise CheckpointError(f'{path}: the list of shipped models is missing (a damaged install: reinstall '
                              'dml-basicsr)')
    manifest = read_yaml(str(path), CheckpointError) or {}  # a file of the installed package, as the weights
    broken = not isinstance(manifest, dict) or not all(
        isinstance(entry, dict) and isinstance(entry.get('file'), str) and isinstance(entry.get('sha256'), str)
        for entry in manifest.values())
    if broken:
        raise CheckpointError(f'{path}: not a list of shipped models (each name needs a file and its sha256; a '
                              'damaged install: reinstall dml-basicsr)')
    for name, entry in manifest.items():
        if 'noise' in entry:
            try:
                FittedNoise(entry['noise'], f'{name}.noise')
            except ValueError as e:
                raise CheckpointError(f'{path}: {e} (a damaged install: reinstall dml-basicsr)') from None
    return manifest


def pretrained_noise(name):
    """The :class:`FittedNoise` of the shipped model ``name``; ValueError naming it and the command that fits it if
    it has none."""
    manifest = pretrained_manifest()
    if name not in manifest:
        pretrained_path(name)  # the error that lists the names
    if 'noise' not in manifest[name]:
        raise ValueError(f"noise 'fitted': the shipped model {name!r} has no fitted noise (no noise: entry in "
                         f'{MANIFEST}); fit it with: {fit_command(name)}')
    return FittedNoise(manifest[name]['noise'], f'pretrained model {name!r}')


def pretrained_path(name):
    """The weight file of the shipped model ``name``, its sha256 checked; ValueError listing the names otherwise."""
    manifest = pretrained_manifest()
    if name not in manifest:
        available = ', '.join(sorted(manifest)) or 'none'
        raise ValueError(f'unknown pretrained DML model {name!r}; available: {available}')
    path = _folder() / manifest[name]['file']
    if not path.is_file():
        raise CheckpointError(f'{path}: the weights of the shipped model {name!r} are missing (a damaged install: '
                              'reinstall dml-basicsr)')
    digest = file_sha256(str(path))
    if digest != manifest[name]['sha256']:
        raise CheckpointError(f'{path}: sha256 {digest} differs from {manifest[name]["sha256"]} in {MANIFEST} '
                              '(a damaged install: reinstall dml-basicsr)')
    return str(path)


def shipped_name(value):
    """``value`` if it names a shipped model and no file or folder of that name exists (a command argument that
    takes a checkpoint takes a shipped model's name too), else None."""
    if not isinstance(value, str) or os.path.exists(value):
        return None
    return value if value in pretrained_manifest() else None


def shipped_names_hint():
    """The shipped names and how to ask for one, for an error about a checkpoint that is not there."""
    names = ', '.join(sorted(pretrained_manifest())) or 'none'
    return f'nor a shipped model ({names}; use pretrained: NAME / --pretrained NAME for a shipped model)'


def checkpoint_or_pretrained(value, option=None):
    """The file a checkpoint argument or option ``value`` means: ``value`` itself when that path exists (a file or
    folder of the name wins), else the weight file of the shipped model of that name (sha256 checked); otherwise
    CheckpointError, one line naming ``option`` (e.g. ``'--checkpoint'``) and ``value`` and listing the names."""
    where = f'{option} {value}' if option else f'{value}'
    if not isinstance(value, (str, os.PathLike)) or not os.fspath(value):
        raise CheckpointError(f'{where}: expected a checkpoint file or a shipped model\'s name, got {value!r}')
    if os.path.exists(value):
        return value
    if shipped_name(value) is not None:
        return pretrained_path(value)
    raise CheckpointError(f'{where}: checkpoint not found ({os.path.abspath(value)}), {shipped_names_hint()}')
