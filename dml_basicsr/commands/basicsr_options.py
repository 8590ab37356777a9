"""The option dict of a ``basicsr train``/``test`` run, from the command line our CLI parsed once.

BasicSR's ``parse_options`` parses ``sys.argv`` again, reads the option file with PyYAML's full (code-running)
loader, applies ``--force_yml`` with ``exec`` and ``eval``s values starting with ``[``. :func:`options_from_args`
makes the same option dict from our parsed arguments, reading plain YAML data only
(:func:`dml_basicsr.utils.options.load_options`) and setting ``--force_yml`` values as YAML data; it stands in for
BasicSR's during our command only (:mod:`.basicsr_scope`).
"""
import argparse
import os
import random
import shlex
import time
from collections import OrderedDict

import torch

from dml_basicsr.utils.options import OptionError, apply_overrides, load_options, override_value
from dml_basicsr.utils.output_folder import OutputFolder
from dml_basicsr.utils.safe_yaml import SafeOptionDumper, SafeOptionLoader


def run_args(command, opt, auto_resume=False):
    """The parsed command line of a run that our CLI did not parse itself (``basicsr adapt`` trains through
    BasicSR's pipeline): ``basicsr <command> -opt <opt> [--auto_resume]``."""
    return argparse.Namespace(command=command, opt=opt, launcher='none', auto_resume=auto_resume, debug=False,
                              local_rank=0, force_yml=None)


def basicsr_argv(args):
    """The command line of a run (``args.opt`` with ``args.force_yml``), as recorded atop the experiment's option
    copy."""
    argv = [f'basicsr {args.command}', '-opt', args.opt]
    if args.launcher != 'none':
        argv += ['--launcher', args.launcher]
    if args.auto_resume:
        argv.append('--auto_resume')
    if args.debug:
        argv.append('--debug')
    if local_rank_of(args):
        argv += ['--local_rank', str(local_rank_of(args))]
    if args.force_yml:
        argv += ['--force_yml', *args.force_yml]
    return argv


def local_rank_of(args):
    """``--local_rank``, given after the subcommand or (``torch.distributed.launch``) before it."""
    leading = getattr(args, 'leading_local_rank', None)
    return args.local_rank if leading is None else leading


def recorded_command(argv):
    """``argv`` as one line whose arguments read back whole (``shlex``; BasicSR joins them with spaces)."""
    program, *arguments = argv
    return ' '.join([program, shlex.join(arguments)]) if arguments else program


def options_from_args(args, root_path, is_train=True):
    """(opt, args) as BasicSR's ``parse_options`` returns them, for the option file ``args.opt`` and
    ``args.force_yml`` (see the module docstring); initialises the distributed group of ``args.launcher``."""
    from basicsr.utils import set_random_seed
    from basicsr.utils.dist_util import get_dist_info

    from dml_basicsr.utils.distributed import init_dist

    opt = load_options(args.opt)  # the --force_yml entries are set after the seed, as BasicSR sets them
    if args.launcher == 'none':
        opt['dist'] = False
        print('Disable distributed.', flush=True)
    else:
        opt['dist'] = True
        if args.launcher == 'slurm' and 'dist_params' in opt:
            init_dist(args.launcher, **opt['dist_params'])
        else:
            init_dist(args.launcher)
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
    derive_paths(opt, root_path, is_train)
    return opt, args


def derive_paths(opt, root_path, is_train):
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


class _OrderedDumper(SafeOptionDumper):
    """SafeOptionDumper that writes OrderedDicts as plain mappings (BasicSR's dumper does)."""


_OrderedDumper.add_representer(OrderedDict, lambda dumper, data: dumper.represent_dict(data.items()))


def safe_ordered_yaml():
    """``basicsr.utils.options.ordered_yaml`` for our command: (a loader of plain YAML data, in order; a dumper of
    OrderedDicts as mappings)."""
    return SafeOptionLoader, _OrderedDumper


def safe_yml_value(value):
    """``basicsr.utils.options._postprocess_yml_value`` for our command: YAML data, never evaluated."""
    return override_value(value, f'--force_yml value {value!r}')


def copy_opt_file(opt_file, experiments_root, command):
    """``basicsr.utils.options.copy_opt_file`` (rank 0 only): the option file copied into the experiment with
    ``command`` (:func:`recorded_command`) atop, so :func:`dml_basicsr.utils.options.recorded_overrides` reads
    each ``--force_yml`` entry back whole. Written whole through an :class:`OutputFolder` of the experiment
    (OutputFolderError, before writing, if the copy or the experiment folder is a symbolic link)."""
    from basicsr.utils.dist_util import get_dist_info

    if get_dist_info()[0] != 0:
        return
    folder = OutputFolder(experiments_root, what='experiment folder', root=experiments_root)
    with open(opt_file, encoding='utf-8') as f:
        text = f.read()
    folder.write_text(os.path.basename(opt_file), f'# GENERATE TIME: {time.asctime()}\n# CMD:\n# {command}\n\n{text}')
