"""The ``basicsr`` console script: BasicSR's train/test pipelines with dml_basicsr registered, and its tools.

    basicsr adapt --pretrained NAME | --checkpoint PTH --pairs DIR --output OUT [--iters 500] [--lr 1e-3] [...]
    basicsr upscale -i INPUT -o OUTPUT --model M [--suffix out] [--tile 256] [--tile-pad 32] [--device auto]
    basicsr train -opt options/train_dml_x4.yml [--launcher none|pytorch|slurm] [--auto_resume]
                  [--debug] [--local_rank N] [--force_yml key:sub=value ...]
    basicsr test  -opt options/test_xxx.yml    (with a top-level manifest: every row of a models.yml, one table)
    basicsr synthesize --input DIR --output DIR --checkpoint PTH | --pretrained NAME [--noise awgn|fitted] [--seed 0]
                       [--tile auto|PIXELS] [--tile-overlap 64] [--device cpu|cuda] [--color rgb|y] [--no-progress]
    basicsr report [--dataset NAME] [--label NAME=PATH ...] [--scale N] [--metrics psnr,ssim,lpips]
                   [--output FILE] PATH [PATH ...]
    basicsr visualize --image IMG --output DIR [--dml PATH] [--kpn PATH] [--sr NAME=PATH ...] [...]
    basicsr prepare -opt options/train_dml_x4.yml --output DIR [--dataset train] [--crop-size 480] [...]
    basicsr fit-noise -opt options/train_dml_x4.yml --checkpoint PTH --output DIR [--dataset train] [--save-beside]

Each subcommand is a module of :mod:`dml_basicsr.commands` with ``add_arguments(parser)`` and
``run(args) -> exit status``. experiments/, tb_logger/ and results/ are created under the current
directory. Option and layout errors are reported as one line (exit status 2) before anything is written; a
filesystem failure (no space left, a read-only mount, a file where a folder must be) is one line too (exit status 1).
"""
import argparse
import sys

from dml_basicsr.commands import (UsageError, adapt, fail, fit_noise, prepare, report, synthesize, train_test, upscale,
                                  visualize)

COMMANDS = {
    'adapt': (adapt, adapt.HELP),
    'upscale': (upscale, upscale.HELP),
    'train': (train_test, train_test.HELP['train']),
    'test': (train_test, train_test.HELP['test']),
    'synthesize': (synthesize, synthesize.HELP),
    'report': (report, report.HELP),
    'visualize': (visualize, visualize.HELP),
    'prepare': (prepare, prepare.HELP),
    'fit-noise': (fit_noise, fit_noise.HELP),
}


def build_parser():
    parser = argparse.ArgumentParser(
        prog='basicsr', description='BasicSR with the DML (Degradation Model Learning) plugin registered.')
    train_test.add_leading_local_rank(parser)
    sub = parser.add_subparsers(dest='command', metavar='COMMAND', required=True)
    for name, (module, help_text) in COMMANDS.items():
        command_parser = sub.add_parser(name, help=help_text)
        module.add_arguments(command_parser)
        command_parser.set_defaults(command_parser=command_parser)
    return parser


def main(argv=None):
    args = build_parser().parse_args(sys.argv[1:] if argv is None else list(argv))
    module, _ = COMMANDS[args.command]
    try:
        return module.run(args)
    except UsageError as e:
        args.command_parser.error(str(e))  # prints the usage and the message, exits with status 2
    except OSError as e:  # the filesystem said no (full disk, read-only mount, a file where a folder must be, ...)
        return fail(args.command, filesystem_message(e), status=1)


def filesystem_message(error):
    """One line for an OSError: the file(s) it names and the system's reason."""
    names = [n for n in (error.filename, error.filename2) if n is not None]
    reason = error.strerror or str(error) or type(error).__name__
    return f'{" -> ".join(map(str, names))}: {reason}' if names else reason


if __name__ == '__main__':
    sys.exit(main())
