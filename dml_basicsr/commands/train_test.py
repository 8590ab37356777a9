"""``basicsr train`` / ``basicsr test``: BasicSR's pipelines with this package registered and checked first.

The option file and its datasets are checked (:mod:`.preflight`) before BasicSR creates the
experiment or results folder; option and layout errors are one line on stderr (exit status 2).
The flags are BasicSR's own (``basicsr.utils.options.parse_options``), which reads them again.
"""
import os
import sys

from dml_basicsr.data.errors import DatasetError
from dml_basicsr.utils.checkpoint import CheckpointError
from dml_basicsr.utils.options import OptionError
from .preflight import check_option_file

HELP = {
    'train': 'Train a model with BasicSR (basicsr.train.train_pipeline).',
    'test': 'Test a model with BasicSR (basicsr.test.test_pipeline).',
}


def add_arguments(parser):
    parser.add_argument('-opt', type=str, required=True, help='Path to option YAML file.')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm'], default='none', help='job launcher')
    parser.add_argument('--auto_resume', action='store_true')
    parser.add_argument('--debug', action='store_true')
    parser.add_argument('--local_rank', type=int, default=0)
    parser.add_argument('--force_yml', nargs='+', default=None,
                        help='Force to update yml files. Examples: train:ema_decay=0.999')


def basicsr_argv(args):
    """The command line that BasicSR's own parser reads (and records in the experiment's option copy)."""
    argv = [f'basicsr {args.command}', '-opt', args.opt]
    if args.launcher != 'none':
        argv += ['--launcher', args.launcher]
    if args.auto_resume:
        argv.append('--auto_resume')
    if args.debug:
        argv.append('--debug')
    if args.local_rank:
        argv += ['--local_rank', str(args.local_rank)]
    if args.force_yml:
        argv += ['--force_yml', *args.force_yml]
    return argv


def run(args):
    if args.command == 'train':
        from basicsr.train import train_pipeline as pipeline
    else:
        from basicsr.test import test_pipeline as pipeline
    try:
        check_option_file(args.opt, args.force_yml)
        sys.argv = basicsr_argv(args)
        pipeline(os.getcwd())
    except (DatasetError, OptionError, CheckpointError) as e:
        print(f'basicsr {args.command}: error: {e}', file=sys.stderr)
        return 2
    return 0
