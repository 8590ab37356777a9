"""The ``basicsr`` console script: BasicSR's train/test pipelines with dml_basicsr registered.

    basicsr train -opt options/train_dml_x4.yml [--launcher none|pytorch|slurm] [--auto_resume]
                  [--debug] [--local_rank N] [--force_yml key:sub=value ...]
    basicsr test  -opt options/test_xxx.yml

experiments/, tb_logger/ and results/ are created under the current directory. Dataset option
and layout errors are reported as one line (exit status 2) before anything is written.
"""
import argparse
import os
import sys

PIPELINES = {
    'train': 'Train a model with BasicSR (basicsr.train.train_pipeline).',
    'test': 'Test a model with BasicSR (basicsr.test.test_pipeline).',
}


def _preflight(argv):
    """Check the option file named by ``-opt`` (if any) and its datasets."""
    from dml_basicsr.preflight import check_datasets, check_degradation, load_options

    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument('-opt')
    parser.add_argument('--force_yml', nargs='+')
    known, _ = parser.parse_known_args(argv)
    if known.opt:
        opt = load_options(known.opt, known.force_yml)
        check_degradation(opt, known.opt)
        check_datasets(opt, known.opt)


def _run_pipeline(command, argv):
    import dml_basicsr  # noqa: F401  (applies compat fixes, registers archs/datasets/models)
    from dml_basicsr.data.errors import DatasetError

    if command == 'train':
        from basicsr.train import train_pipeline as pipeline
    else:
        from basicsr.test import test_pipeline as pipeline
    try:
        _preflight(argv)
        # BasicSR's parse_options reads sys.argv itself.
        sys.argv = [f'basicsr {command}'] + list(argv)
        pipeline(os.getcwd())
    except DatasetError as e:
        print(f'basicsr {command}: error: {e}', file=sys.stderr)
        return 2
    return 0


def build_parser():
    parser = argparse.ArgumentParser(
        prog='basicsr', description='BasicSR with the DML (Degradation Model Learning) plugin registered.')
    sub = parser.add_subparsers(dest='command', metavar='COMMAND', required=True)
    for name, help_text in PIPELINES.items():
        sub.add_parser(name, help=help_text, add_help=False)
    return parser


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in PIPELINES:
        build_parser().parse_args(argv)  # prints usage or the error, and exits
        return 2
    return _run_pipeline(argv[0], argv[1:])


if __name__ == '__main__':
    sys.exit(main())
