"""The ``basicsr`` console script: BasicSR's train/test pipelines with dml_basicsr registered.

    basicsr train -opt options/train_dml_x4.yml [--launcher none|pytorch|slurm] [--auto_resume]
                  [--debug] [--local_rank N] [--force_yml key:sub=value ...]
    basicsr test  -opt options/test_xxx.yml
    basicsr synthesize --input DIR --output DIR --checkpoint PTH [--noise-sigma 5] [--seed 0]
                       [--tile 512] [--tile-overlap 64] [--device cpu|cuda] [--color rgb|y] [--no-progress]
    basicsr report [--dataset NAME] [--label NAME=PATH ...] [--scale N] [--metrics psnr,ssim,lpips]
                   [--output FILE] PATH [PATH ...]
    basicsr visualize --image IMG --output DIR [--dml PATH] [--kpn PATH] [--sr NAME=PATH ...] [...]

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
    _add_synthesize_parser(sub)
    sub.add_parser('report', add_help=False,
                   help='One Markdown table (methods x scales) of the metrics CSVs of experiment/results folders.')
    sub.add_parser('visualize', add_help=False,
                   help='Pictures of a trained degradation (basis, weight maps, per-pixel kernels) and SR crops.')
    return parser


SYNTHESIZE_HELP = 'Make a Syn-DML paired dataset (HR/, LR/, meta_info.txt) from a folder of HR images.'


def _add_synthesize_parser(sub):
    p = sub.add_parser(
        'synthesize', help=SYNTHESIZE_HELP, formatter_class=argparse.RawDescriptionHelpFormatter,
        description=SYNTHESIZE_HELP + '''

Every HR image is cropped (top-left) to a multiple of the model's scale s and degraded by the
trained DML model plus white Gaussian noise; OUTPUT/HR/<stem>.png and OUTPUT/LR/<stem>.png are
8-bit PNGs with LR exactly HR/s, and OUTPUT/meta_info.txt lists the file names for BasicSR's
PairedImageDataset (dataroot_gt: OUTPUT/HR, dataroot_lq: OUTPUT/LR,
meta_info_file: OUTPUT/meta_info.txt, filename_tmpl: '{}').

Rerunning resumes: pairs already written are skipped; files are written atomically. The noise of
an image depends only on --seed and its file name, so the output does not depend on the order of
processing or on interruptions. Large images are processed in tiles with the same result.''')
    p.add_argument('--input', required=True, metavar='DIR', help='folder of HR images (png/jpg/bmp/tif/webp)')
    p.add_argument('--output', required=True, metavar='DIR', help='output folder (gets HR/, LR/, meta_info.txt)')
    p.add_argument('--checkpoint', required=True, metavar='PTH',
                   help="trained DMLNet weights, e.g. experiments/NAME/models/net_g_latest.pth")
    p.add_argument('--noise-sigma', type=float, default=5.0, metavar='SIGMA',
                   help='AWGN sigma on the 0-255 scale (default: 5; 0 disables)')
    p.add_argument('--seed', type=int, default=0, help='noise seed, a non-negative integer (default: 0)')
    p.add_argument('--tile', type=int, default=512, metavar='PIXELS',
                   help='HR tile size for large images, rounded up to a multiple of lcm(4, scale); '
                        '0 disables tiling (default: 512)')
    p.add_argument('--tile-overlap', type=int, default=64, metavar='PIXELS',
                   help='context on each side of a tile, rounded up likewise (default: 64)')
    p.add_argument('--device', default='cpu', help="torch device, 'cpu' or 'cuda' (default: cpu)")
    p.add_argument('--color', choices=('rgb', 'y'), default='rgb',
                   help="'rgb' keeps the colour images; 'y' writes Y-channel images (Y models only)")
    p.add_argument('--no-progress', action='store_true', help='no progress bar')
    return p


def _run_synthesize(argv):
    args = build_parser().parse_args(['synthesize'] + list(argv))
    from dml_basicsr.data.errors import DatasetError
    from dml_basicsr.synthesize import synthesize_folder

    try:
        result = synthesize_folder(args.input, args.output, args.checkpoint, noise_sigma=args.noise_sigma,
                                   seed=args.seed, tile=args.tile, tile_overlap=args.tile_overlap,
                                   device=args.device, color=None if args.color == 'rgb' else args.color,
                                   progress=not args.no_progress)
    except (DatasetError, ValueError) as e:
        print(f'basicsr synthesize: error: {e}', file=sys.stderr)
        return 2
    print(f"basicsr synthesize: {len(result['names'])} pairs (x{result['scale']}) in {args.output} "
          f"({result['written']} written, {result['skipped']} already there)")
    return 0


def _run_report(argv):
    from dml_basicsr.report import main as report_main
    return report_main(argv)


def _run_visualize(argv):
    from dml_basicsr.figures import main as visualize_main
    return visualize_main(argv)


TOOLS = {'synthesize': _run_synthesize, 'report': _run_report, 'visualize': _run_visualize}


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in TOOLS:
        return TOOLS[argv[0]](argv[1:])
    if not argv or argv[0] not in PIPELINES:
        build_parser().parse_args(argv)  # prints usage or the error, and exits
        return 2
    return _run_pipeline(argv[0], argv[1:])


if __name__ == '__main__':
    sys.exit(main())
