"""DML models shipped inside the package (``degradation/pretrained/``), listed in ``pretrained/models.yml``.

    DMLDegradation.pretrained('city100-nikon-x1', noise_sigma=0)

Each entry names its weight file, that file's sha256 (checked before it is read), the data it was
trained on with its licence, the command that trained it and its validation figures.
"""
from importlib import resources

from dml_basicsr.utils.checkpoint import CheckpointError, file_sha256
from dml_basicsr.utils.safe_yaml import read_yaml

MANIFEST = 'models.yml'


def _folder():
    return resources.files('dml_basicsr.degradation') / 'pretrained'


def pretrained_manifest():
    """{name: entry} of the shipped models (entries: file, sha256, scale, data, license, command, validation)."""
    return read_yaml(_folder() / MANIFEST, CheckpointError, opener=lambda path, **kw: path.open(**kw)) or {}


def pretrained_path(name):
    """The weight file of the shipped model ``name``, its sha256 checked; ValueError listing the names otherwise."""
    manifest = pretrained_manifest()
    if name not in manifest:
        available = ', '.join(sorted(manifest)) or 'none'
        raise ValueError(f'unknown pretrained DML model {name!r}; available: {available}')
    path = _folder() / manifest[name]['file']
    digest = file_sha256(str(path))
    if digest != manifest[name]['sha256']:
        raise CheckpointError(f'{path}: sha256 {digest} differs from {manifest[name]["sha256"]} in {MANIFEST} '
                              '(a damaged install: reinstall dml-basicsr)')
    return str(path)
