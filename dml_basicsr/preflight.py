"""Checks run before BasicSR's pipelines start writing experiment folders.

BasicSR creates ``experiments/<name>`` (and archives an old one) before it builds a single
dataset; a wrong ``dataroot`` would leave a half-made experiment behind. Here the option file
is read and every dataset's ``check_options`` (a cheap layout check, no image decoding) runs first.
"""
import os

import yaml
from basicsr.utils.options import _postprocess_yml_value, ordered_yaml
from basicsr.utils.registry import DATASET_REGISTRY

from dml_basicsr.data.errors import DatasetError


class OptionError(DatasetError):
    """The option file itself is missing or malformed."""


def load_options(opt_path, force_yml=None):
    """The option file as a dict, with ``--force_yml key:sub=value`` entries applied."""
    if not os.path.isfile(opt_path):
        raise OptionError(f'option file not found: {opt_path}')
    try:
        with open(opt_path) as f:
            opt = yaml.load(f, Loader=ordered_yaml()[0])
    except yaml.YAMLError as e:
        raise OptionError(f'{opt_path}: not valid YAML: {e}') from e
    if not isinstance(opt, dict):
        raise OptionError(f'{opt_path}: expected a mapping of options at the top level')
    for entry in force_yml or []:
        keys, _, value = entry.partition('=')
        *parents, last = keys.strip().split(':')
        node = opt
        for key in parents:
            node = node.get(key) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node[last] = _postprocess_yml_value(value.strip())
    return opt


def check_degradation(opt, opt_path):
    """An online-degradation model needs its DML checkpoint to exist."""
    path = (opt.get('degradation') or {}).get('checkpoint')
    if 'degradation' in opt and not path:
        raise OptionError(f'{opt_path}: degradation.checkpoint (a trained DMLNet .pth) is missing')
    if path and not os.path.isfile(path):
        raise OptionError(f'{opt_path}: degradation.checkpoint not found: {os.path.abspath(path)} '
                          '(train one with basicsr train -opt options/train_dml_x<scale>.yml)')


def check_datasets(opt, opt_path):
    """Run each dataset's ``check_options`` with the keys BasicSR adds (``phase``, ``scale``)."""
    for phase, dataset_opt in (opt.get('datasets') or {}).items():
        dataset_opt = dict(dataset_opt, phase=phase.split('_')[0])
        if 'scale' in opt:
            dataset_opt['scale'] = opt['scale']
        type_name = dataset_opt.get('type')
        try:
            cls = DATASET_REGISTRY.get(type_name)
        except KeyError:
            raise OptionError(f'{opt_path}: datasets.{phase}.type {type_name!r} is not a registered dataset') from None
        check = getattr(cls, 'check_options', None)
        if check is not None:
            check(dataset_opt)
