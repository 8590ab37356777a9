"""Narrow run-time fixes that let basicsr 1.4.2 run on current torch/torchvision.

Applied once, when :mod:`dml_basicsr` is imported, before anything imports :mod:`basicsr`.
Nothing here edits site-packages; each fix only replaces what is broken:

* ``torchvision.transforms.functional_tensor`` was removed in torchvision 0.17, but
  ``basicsr.data.degradations`` imports ``rgb_to_grayscale`` from it. We register a tiny
  alias module, only when the real one is missing.
* ``basicsr.train.load_resume_state`` calls ``torch.cuda.current_device()`` (crashes on a
  machine without CUDA), looks for states in a path relative to the current directory
  instead of the experiment's ``training_states`` folder, unpickles them with code execution
  allowed and takes the newest even when a kill truncated it. We replace that one function.
* ``basicsr.utils.options.parse_options`` reads the option file with PyYAML's full (code-running) loader and
  applies ``--force_yml`` with ``exec``, ``_postprocess_yml_value`` ``eval``s a value starting with ``[``: we
  replace the three (and ``ordered_yaml``'s loader, and the names ``basicsr.train``/``basicsr.test`` imported) by
  :func:`parse_options`, which reads plain YAML data only (:mod:`dml_basicsr.utils.safe_yaml`) and sets the
  ``--force_yml`` values as YAML data (:func:`dml_basicsr.utils.options.apply_overrides`).
* ``BaseModel.save_network``/``save_training_state`` write straight to the final name and, when a save fails
  (e.g. a full disk), log "Just ignore it." and train on to exit status 0 without checkpoints: replaced by
  :mod:`dml_basicsr.utils.training_saves` (atomic files; a failed save stops the run, naming the file).
* ``--launcher pytorch|slurm`` assumes GPUs (and deadlocks in validation with networks that have
  buffers): :func:`dml_basicsr.utils.distributed.patch_basicsr` replaces ``init_dist``,
  ``BaseModel.model_to_device`` and ``SRModel.dist_validation``.
"""
import importlib
import os
import sys
import types

_APPLIED = False


def _install_functional_tensor_alias():
    name = 'torchvision.transforms.functional_tensor'
    try:
        importlib.import_module(name)
        return
    except ImportError:
        pass
    from torchvision.transforms import functional

    alias = types.ModuleType(name)
    alias.rgb_to_grayscale = functional.rgb_to_grayscale
    alias.__doc__ = 'Alias installed by dml_basicsr.compat for basicsr 1.4.2 (removed in torchvision 0.17).'
    sys.modules[name] = alias


def latest_training_state(state_dir):
    """Path of the ``<iter>.state`` file with the largest iteration in ``state_dir``, or None."""
    from dml_basicsr.utils.checkpoint import latest_numbered_file
    return latest_numbered_file(state_dir, r'(\d+)\.state')


def _resume_map_location():
    import torch

    if torch.cuda.is_available():
        device = torch.device('cuda', torch.cuda.current_device())
        return lambda storage, loc: storage.cuda(device.index)
    return lambda storage, loc: storage


def resume_network_paths(opt, resume_iter):
    """The ``net_<name>_<iter>.pth`` files that BasicSR's ``check_resume`` makes the model load for ``resume_iter``."""
    ignored = opt['path'].get('ignore_resume_networks') or []
    return [os.path.join(opt['path']['models'], f"net_{key.replace('network_', '')}_{resume_iter}.pth")
            for key in opt if key.startswith('network_') and key not in ignored]


def load_intact_state(opt, path):
    """The training state at ``path``, after checking that it and the network files of its iteration load."""
    from dml_basicsr.utils.checkpoint import load_state_dict, load_training_state

    state = load_training_state(path, _resume_map_location())
    for network_path in resume_network_paths(opt, state['iter']):
        load_state_dict(network_path)
    return state


def newest_intact_state(opt, state_dir):
    """(path, state) of the newest training state in ``state_dir`` that loads with its network files, or
    (None, None) if there is none. Those skipped (e.g. truncated by a kill during a save) are said on stderr;
    one that refers to code (UnsafeCheckpointError) stops everything."""
    from dml_basicsr.utils.atomic_write import remove_stale_tmp
    from dml_basicsr.utils.checkpoint import CheckpointError, UnsafeCheckpointError, numbered_files

    for folder in (state_dir, opt['path'].get('models')):
        if folder and os.path.isdir(folder):
            remove_stale_tmp(folder)
    skipped = 0
    for _, path in numbered_files(state_dir, r'(\d+)\.state'):
        try:
            state = load_intact_state(opt, path)
        except UnsafeCheckpointError:
            raise
        except CheckpointError as e:
            skipped += 1
            print(f'basicsr train: warning: --auto_resume skips {os.path.basename(path)}: {e}', file=sys.stderr)
            continue
        if skipped:
            print(f'basicsr train: --auto_resume resumes from {path}', file=sys.stderr)
        return path, state
    if skipped:
        raise CheckpointError(f'{state_dir}: no training state there loads ({skipped} skipped, see above); '
                              'move the folder away to start anew')
    return None, None


def load_resume_state(opt):
    """Drop-in replacement for ``basicsr.train.load_resume_state`` that works without CUDA and loads safely.

    With ``--auto_resume`` it looks in ``opt['path']['training_states']`` (inside the experiment root that
    BasicSR derives from ``root_path``), not in ``./experiments``, and takes the newest state that loads,
    with the ``net_g_<iter>.pth`` of its iteration (:func:`newest_intact_state`). States are read
    weights-only (:func:`dml_basicsr.utils.checkpoint.load_training_state`).
    """
    from basicsr.utils import check_resume

    from dml_basicsr.utils.checkpoint import load_training_state

    if opt['auto_resume']:
        state_dir = opt['path'].get('training_states') or os.path.join('experiments', opt['name'], 'training_states')
        resume_state_path, resume_state = newest_intact_state(opt, state_dir)
        if resume_state_path is not None:
            opt['path']['resume_state'] = resume_state_path
    else:
        resume_state_path = opt['path'].get('resume_state')
        resume_state = load_training_state(resume_state_path, _resume_map_location()) if resume_state_path else None

    if resume_state is None:
        return None
    check_resume(opt, resume_state['iter'])
    return resume_state


def parse_options(root_path, is_train=True):
    """Drop-in replacement for ``basicsr.utils.options.parse_options`` (the same flags and the same option dict)
    that runs no code from the option file or from ``--force_yml``: the file is read by
    :func:`dml_basicsr.utils.options.load_options` (plain YAML data; OptionError naming the file otherwise), the
    ``--force_yml`` values are YAML data set into the dict, never ``exec``/``eval``."""
    import argparse
    import random

    import torch
    from basicsr.utils import set_random_seed
    from basicsr.utils import options as basicsr_options
    from basicsr.utils.dist_util import get_dist_info

    from dml_basicsr.utils.options import OptionError, apply_overrides, load_options

    parser = argparse.ArgumentParser()
    parser.add_argument('-opt', type=str, required=True, help='Path to option YAML file.')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm'], default='none', help='job launcher')
    parser.add_argument('--auto_resume', action='store_true')
    parser.add_argument('--debug', action='store_true')
    parser.add_argument('--local_rank', type=int, default=0)
    parser.add_argument(
        '--force_yml', nargs='+', default=None, help='Force to update yml files. Examples: train:ema_decay=0.999')
    args = parser.parse_args()

    opt = load_options(args.opt)  # the --force_yml entries are set after the seed, as BasicSR sets them
    if args.launcher == 'none':
        opt['dist'] = False
        print('Disable distributed.', flush=True)
    else:
        opt['dist'] = True
        if args.launcher == 'slurm' and 'dist_params' in opt:
            basicsr_options.init_dist(args.launcher, **opt['dist_params'])
        else:
            basicsr_options.init_dist(args.launcher)
    opt['rank'], opt['world_size'] = get_dist_info()

    seed = opt.get('manual_seed')
    if seed is None:
        seed = random.randint(1, 10000)
        opt['manual_seed'] = seed
    set_random_seed(seed + opt['rank'])

    apply_overrides(opt, args.force_yml, args.opt)
    if not isinstance(opt.get('name'), str) or not opt['name']:
        raise OptionError(f'{args.opt}: name must be a string (the experiment or results folder), got '
                          f'{opt.get("name")!r}')
    opt['auto_resume'] = args.auto_resume
    opt['is_train'] = is_train
    if args.debug and not opt['name'].startswith('debug'):
        opt['name'] = 'debug_' + opt['name']
    if opt['num_gpu'] == 'auto':
        opt['num_gpu'] = torch.cuda.device_count()
    _derive_paths(opt, root_path, is_train)
    return opt, args


def _derive_paths(opt, root_path, is_train):
    """What BasicSR's ``parse_options`` adds after reading the file: each dataset's phase and scale, expanded
    user paths, and the experiment (train) or results (test) folders."""
    osp = os.path
    for phase, dataset in opt['datasets'].items():
        phase = phase.split('_')[0]
        dataset['phase'] = phase
        if 'scale' in opt:
            dataset['scale'] = opt['scale']
        if dataset.get('dataroot_gt') is not None:
            dataset['dataroot_gt'] = osp.expanduser(dataset['dataroot_gt'])
        if dataset.get('dataroot_lq') is not None:
            dataset['dataroot_lq'] = osp.expanduser(dataset['dataroot_lq'])
    for key, val in opt['path'].items():
        if (val is not None) and ('resume_state' in key or 'pretrain_network' in key):
            opt['path'][key] = osp.expanduser(val)
    if is_train:
        experiments_root = osp.join(root_path, 'experiments', opt['name'])
        opt['path']['experiments_root'] = experiments_root
        opt['path']['models'] = osp.join(experiments_root, 'models')
        opt['path']['training_states'] = osp.join(experiments_root, 'training_states')
        opt['path']['log'] = experiments_root
        opt['path']['visualization'] = osp.join(experiments_root, 'visualization')
        if 'debug' in opt['name']:
            if 'val' in opt:
                opt['val']['val_freq'] = 8
            opt['logger']['print_freq'] = 1
            opt['logger']['save_checkpoint_freq'] = 8
    else:
        results_root = osp.join(root_path, 'results', opt['name'])
        opt['path']['results_root'] = results_root
        opt['path']['log'] = results_root
        opt['path']['visualization'] = osp.join(results_root, 'visualization')


def safe_ordered_yaml():
    """Drop-in replacement for ``basicsr.utils.options.ordered_yaml``: (a loader of plain YAML data, in order;
    a dumper of OrderedDicts as mappings)."""
    from collections import OrderedDict

    import yaml

    from dml_basicsr.utils.safe_yaml import SafeOptionDumper, SafeOptionLoader

    SafeOptionDumper.add_representer(OrderedDict, lambda dumper, data: dumper.represent_dict(data.items()))
    return SafeOptionLoader, SafeOptionDumper


def safe_yml_value(value):
    """Drop-in replacement for ``basicsr.utils.options._postprocess_yml_value``: YAML data, never evaluated."""
    from dml_basicsr.utils.options import override_value

    return override_value(value, f'--force_yml value {value!r}')


def copy_opt_file(opt_file, experiments_root):
    """Drop-in replacement for ``basicsr.utils.options.copy_opt_file`` (rank 0 only): the option file copied into
    the experiment with the command atop, its arguments shell-quoted (``shlex.join``, BasicSR joins them with
    spaces) so that :func:`dml_basicsr.utils.options.recorded_overrides` reads each ``--force_yml`` entry back
    whole."""
    import shlex
    import time

    from basicsr.utils.dist_util import get_dist_info

    if get_dist_info()[0] != 0:
        return
    program, *arguments = sys.argv
    cmd = ' '.join([program, shlex.join(arguments)]) if arguments else program
    with open(opt_file, encoding='utf-8') as f:
        text = f.read()
    with open(os.path.join(experiments_root, os.path.basename(opt_file)), 'w', encoding='utf-8') as f:
        f.write(f'# GENERATE TIME: {time.asctime()}\n# CMD:\n# {cmd}\n\n{text}')


def _patch_basicsr_options():
    import basicsr.test
    import basicsr.train
    import basicsr.utils.options

    basicsr.utils.options.parse_options = parse_options
    basicsr.utils.options.ordered_yaml = safe_ordered_yaml
    basicsr.utils.options._postprocess_yml_value = safe_yml_value
    basicsr.train.parse_options = parse_options
    basicsr.utils.options.copy_opt_file = copy_opt_file
    basicsr.train.copy_opt_file = copy_opt_file
    basicsr.test.parse_options = parse_options


def _patch_basicsr_resume():
    import basicsr.train

    basicsr.train.load_resume_state = load_resume_state


def _patch_basicsr_saves():
    from dml_basicsr.utils.training_saves import patch_basicsr

    patch_basicsr()


def _patch_basicsr_distributed():
    from dml_basicsr.utils.distributed import patch_basicsr

    patch_basicsr()


def apply():
    """Apply all fixes (idempotent)."""
    global _APPLIED
    if _APPLIED:
        return
    _install_functional_tensor_alias()
    _patch_basicsr_resume()
    _patch_basicsr_options()
    _patch_basicsr_saves()
    _patch_basicsr_distributed()
    _APPLIED = True
