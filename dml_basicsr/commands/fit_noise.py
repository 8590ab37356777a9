"""``basicsr fit-noise``: the signal-dependent noise of a trained DML model, fitted on its training pairs.

    basicsr fit-noise -opt options/train_dml_realsr_crops_x4.yml (--checkpoint PTH | --pretrained NAME) --output DIR
                      [--dataset train] [--save-beside] [--force_yml key:sub=value ...]
"""
import argparse
import os

from dml_basicsr.data.errors import DatasetError
from dml_basicsr.degradation import DMLDegradation
from dml_basicsr.degradation.noise_fit import (COLORS, dataset_pairs, fit_noise, merge_noise_file, noise_file,
                                               noise_file_text, noise_path, write_noise_file)
from dml_basicsr.degradation.pretrained_models import checkpoint_or_pretrained, pretrained_path, shipped_name
from dml_basicsr.utils.checkpoint import CheckpointError
from dml_basicsr.utils.options import OptionError, load_options
from dml_basicsr.utils.output_folder import OutputFolder, check_output_file, output_file
from dml_basicsr.visualization.noise_plots import noise_level_picture
from . import fail
from .prepare import build_source, dataset_roots

HELP = "Fit a DML model's signal-dependent noise on the residual real LR - DML(HR) of its training pairs."
DESCRIPTION = HELP + '''

The pairs are those of the section datasets.<--dataset> of the option file (RealSRDataset,
City100Dataset or DRealSRDataset, as training reads them, with --force_yml applied), taken whole
(validation semantics: no random crop, no flips), in the colour space the section gives (color: y
-> a Y fit, color: ~ -> an RGB fit of each channel). Per channel the residual's variance is fitted
as a * I + b of the clean DML LR intensity I, robustly: flat pixels only, high-passed residual,
MAD per intensity bin, weighted least squares with a, b >= 0; its lag-1 autocorrelation gives a
3x3 correlation filter where it exceeds 0.05 (see docs/noise.md).

DIR gets noise.yml (the parameters, the checkpoint's sha256, the pairs, the binned deviations)
and noise_level.png (intensity against the residual's deviation per channel: the measured bins,
the fitted curve and the AWGN sigma 5 line). --save-beside also writes <checkpoint>.noise.yml,
which DMLDegradation.from_checkpoint(path, noise='fitted') and `degradation: {checkpoint: PTH,
noise: fitted}` read; a Y fit and an RGB fit of the same weights are kept side by side there.'''


def add_arguments(p):
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.description = DESCRIPTION
    p.add_argument('-opt', required=True, help='option YAML file whose dataset section gives the training pairs')
    model = p.add_mutually_exclusive_group(required=True)
    model.add_argument('--checkpoint', metavar='PTH',
                       help="the trained DMLNet (basicsr train's net_g_*.pth), or a shipped model's name")
    model.add_argument('--pretrained', metavar='NAME', help='a shipped DML model, e.g. realsr-x4')
    p.add_argument('--output', required=True, metavar='DIR', help='folder for noise.yml and noise_level.png')
    p.add_argument('--dataset', default='train', metavar='KEY', help='the section datasets.KEY (default: train)')
    p.add_argument('--param-key', default='params', help="the checkpoint's key of the weights (default: params)")
    p.add_argument('--save-beside', action='store_true', help='also write <checkpoint>.noise.yml')
    p.add_argument('--force_yml', nargs='+', default=None, help='update the options, e.g. datasets:train:color=~')


NOISE_FILE, NOISE_PICTURE = 'noise.yml', 'noise_level.png'


def checkpoint_file(args):
    """The weight file of ``--checkpoint`` (a file, or a shipped model's name where no such file exists) or
    ``--pretrained``; OptionError for a shipped model with ``--save-beside`` (the package is never written into)."""
    option, value = ('--pretrained', args.pretrained) if args.pretrained else ('--checkpoint', args.checkpoint)
    if option == '--pretrained' or shipped_name(value) is not None:
        if args.save_beside:
            raise OptionError(f'{option} {value} --save-beside: a shipped model lives in the installed package, which '
                              'this command never writes into; copy its .pth (basicsr fit-noise then writes beside '
                              'the copy) or leave out --save-beside')
        try:
            return str(pretrained_path(value))
        except CheckpointError:
            raise
        except ValueError as e:  # an unknown name: the message lists the shipped ones
            raise OptionError(f'{option} {value}: {e}') from None
    path = checkpoint_or_pretrained(value, option)
    if not os.path.isfile(path):
        raise OptionError(f'{option} {value}: not a file (expected a DMLNet .pth)')
    return path


def fit(args):
    """Fit and write the outputs of the arguments; returns (noise file mapping, colour)."""
    args.checkpoint = checkpoint_file(args)
    opt = load_options(args.opt, args.force_yml)
    inputs = [args.opt, args.checkpoint, *dataset_roots(opt, args.dataset)]
    folder = OutputFolder(args.output, inputs)
    folder.check_targets([NOISE_FILE, NOISE_PICTURE])
    if args.save_beside:  # a link there, or an input, is refused before anything is fitted
        check_output_file(noise_path(args.checkpoint), inputs, 'noise file')
        output_file(noise_path(args.checkpoint), 'noise file')
    dataset = build_source(opt, args.dataset, args.opt, phase='val', command='fit-noise')
    deg = DMLDegradation.from_checkpoint(args.checkpoint, noise_sigma=0, param_key=args.param_key)
    entry = fit_noise(deg, dataset_pairs(dataset))
    color = COLORS[len(entry['a'])]
    section = opt['datasets'][args.dataset]
    data = dict(option_file=args.opt, dataset=args.dataset, name=section.get('name'), type=section.get('type'),
                force_yml=list(args.force_yml or []), checkpoint=os.path.basename(args.checkpoint))
    result = noise_file(entry, color, args.checkpoint, data)
    folder.write_text(NOISE_FILE, noise_file_text(result))
    folder.write_png(NOISE_PICTURE, noise_level_picture(
        entry['bins'], entry, color,
        f'{os.path.basename(args.checkpoint)}: {color} fit on {entry["pairs"]} pairs of datasets.{args.dataset}'))
    if args.save_beside:
        beside = noise_path(args.checkpoint)
        write_noise_file(beside, merge_noise_file(beside, result))
    return result, color


def run(args):
    try:
        result, color = fit(args)
    except (DatasetError, OptionError, ValueError) as e:  # CheckpointError and OutputFolderError are ValueErrors
        return fail('fit-noise', e)
    entry = result[color]
    fmt = lambda values: ', '.join(f'{v:.3g}' for v in values)  # noqa: E731
    beside = f' and {noise_path(args.checkpoint)}' if args.save_beside else ''
    print(f'basicsr fit-noise: {color} noise of {entry["pairs"]} pairs: var = a * I + b ([0, 1] scale), a = '
          f'[{fmt(entry["a"])}], b = [{fmt(entry["b"])}], lag-1 autocorrelation v {entry["lag1"]["v"]}, h '
          f'{entry["lag1"]["h"]} ({"correlated" if entry["filter_v"] else "white"}); written to '
          f'{os.path.join(args.output, "noise.yml")}{beside}')
    return 0

