"""Checks run before BasicSR's pipelines start writing experiment folders.

BasicSR creates ``experiments/<name>`` (and archives an old one) before it builds a single
dataset; a wrong ``dataroot`` would leave a half-made experiment behind. Here the option file
is read and every dataset's ``check_options`` (a cheap layout check, no image decoding) runs first.
"""
import os

from basicsr.utils.registry import DATASET_REGISTRY

from dml_basicsr.utils.options import OptionError, load_options


def check_option_file(opt_path, force_yml=None):
    """Read the option file (with ``--force_yml`` applied) and check its degradation and datasets."""
    opt = load_options(opt_path, force_yml)
    check_degradation(opt, opt_path)
    check_datasets(opt, opt_path)
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
