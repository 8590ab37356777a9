"""``basicsr train`` / ``basicsr test``: BasicSR's pipelines with this package registered and checked first.

The option file and its datasets are checked (:mod:`.preflight`) before BasicSR creates the
experiment or results folder; option and layout errors are one line on stderr (exit status 2), also a
DatasetError raised in a DataLoader worker; a training stopped by a NaN/inf loss or by a checkpoint it cannot save is
one line too (exit status 1).
The flags are BasicSR's own, parsed once: BasicSR's pipeline gets the options of this command line
(:mod:`.basicsr_scope`, which also installs for the run, and for the run only, what the pipeline needs of this
project: safe option reading and resume, atomic saves, CPU distributed training).
``basicsr test`` of an option file with a top-level ``manifest`` tests every row of that manifest of trained
networks and prints one table of them all (:mod:`.manifest_test`).
"""
import argparse
import contextlib
import os
import sys

from dml_basicsr.data.errors import DatasetError
from dml_basicsr.models.finite_loss import TrainingDivergedError
from dml_basicsr.utils.checkpoint import CheckpointError
from dml_basicsr.utils.distributed import DistributedError, check_launcher_env, use_dist_params
from dml_basicsr.utils.options import OptionError
from dml_basicsr.utils.output_folder import OutputFolderError, run_lock
from dml_basicsr.utils.training_saves import CheckpointSaveError
from . import UsageError, fail
from .basicsr_options import basicsr_argv, copy_opt_file, recorded_command
from .basicsr_scope import basicsr_run
from .manifest_test import manifest_test
from .preflight import check_option_file, run_name
from .report import ReportError

HELP = {
    'train': 'Train a model with BasicSR (basicsr.train.train_pipeline).',
    'test': 'Test a model with BasicSR (basicsr.test.test_pipeline).',
}


def add_arguments(parser):
    parser.add_argument('-opt', type=str, required=True, help='Path to option YAML file.')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm'], default='none', help='job launcher')
    parser.add_argument('--auto_resume', action='store_true')
    parser.add_argument('--debug', action='store_true')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0,
                        help='set by python -m torch.distributed.launch; torchrun sets LOCAL_RANK instead')
    parser.add_argument('--force_yml', nargs='+', default=None,
                        help='Force to update yml files. Examples: train:ema_decay=0.999')


def add_leading_local_rank(parser):
    """``python -m torch.distributed.launch`` passes ``--local-rank=N`` before the subcommand: accept it there."""
    parser.add_argument('--local-rank', '--local_rank', dest='leading_local_rank', type=int, help=argparse.SUPPRESS)


def run(args):
    if args.command == 'train':
        from basicsr.train import train_pipeline as pipeline
    else:
        from basicsr.test import test_pipeline as pipeline
    try:
        opt = check_option_file(args.opt, args.force_yml, args.auto_resume, command=args.command, debug=args.debug)
        use_dist_params(opt)
        if args.launcher != 'none':
            check_launcher_env(args.launcher)  # before the run's lock makes experiments/ or results/
        if 'manifest' in opt:
            return run_manifest(args, opt, pipeline)
        with one_run_of_the_name(opt, args), basicsr_run(args):
            pipeline(os.getcwd())
            record_test_options(args, args.opt, os.path.join('results', run_name(str(opt['name']), args.debug)))
    except (DatasetError, OptionError, CheckpointError, DistributedError, ReportError, OutputFolderError) as e:
        return fail(args.command, original_message(e))
    except (TrainingDivergedError, CheckpointSaveError) as e:
        return fail(args.command, e, status=1)
    return 0


def one_run_of_the_name(opt, args):
    """The lock of ``experiments/<name>`` (train) or ``results/<name>`` (test), taken by the first process of a run
    (rank 0; the other ranks of a distributed run write nothing of their own)."""
    rank = os.environ.get('RANK', os.environ.get('SLURM_PROCID', '0'))
    if rank != '0':
        return contextlib.nullcontext()
    name = run_name(str(opt['name']), args.debug)
    return run_lock('experiments' if args.command == 'train' else 'results', name, f'basicsr {args.command}')


def run_manifest(args, opt, pipeline):
    """``basicsr test`` of every row of ``opt['manifest']`` (:mod:`.manifest_test`), one after another in this
    process; prints the report table."""
    if args.launcher != 'none':
        raise UsageError(f'--launcher {args.launcher}: {args.opt} has a manifest, whose rows are tested one after '
                         'another in this process; run it without --launcher')

    def run_one(run):  # the option file derived for the row has the --force_yml entries applied already
        row_args = argparse.Namespace(**dict(vars(args), opt=run.opt_path, force_yml=None))
        with basicsr_run(row_args):
            pipeline(os.getcwd())
        record_test_options(row_args, run.opt_path, run.results)

    text, path = manifest_test(opt, run_one, debug=args.debug, option_file=args.opt)
    print(text)
    print(f'Report written to {path}', file=sys.stderr)
    return 0


def record_test_options(args, opt_path, results):
    """After ``basicsr test``: the option file it ran, copied into its results folder as ``basicsr train`` copies
    its own into the experiment (BasicSR's test pipeline copies none), so that ``basicsr report`` finds the run's
    scale there."""
    if args.command != 'test' or os.environ.get('RANK', os.environ.get('SLURM_PROCID', '0')) != '0':
        return
    copy_opt_file(opt_path, results, recorded_command(basicsr_argv(args)))


def original_message(error):
    """The message of ``error``; for one that PyTorch re-raised from a DataLoader worker ('Caught DatasetError in
    DataLoader worker process 0.' and the worker's traceback), the original one-line message."""
    text = str(error)
    marker = f'{type(error).__module__}.{type(error).__qualname__}: '
    if not text.startswith('Caught ') or marker not in text:
        return text
    return text.rsplit(marker, 1)[1].strip()
