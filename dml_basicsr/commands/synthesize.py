"""``basicsr synthesize``: a Syn-DML paired dataset (HR/, LR/, meta_info.txt) from a folder of HR images."""
import argparse

from dml_basicsr.data.errors import DatasetError
from dml_basicsr.degradation import synthesize_folder
from dml_basicsr.degradation.pretrained_models import shipped_name
from . import fail

HELP = 'Make a Syn-DML paired dataset (HR/, LR/, meta_info.txt) from a folder of HR images.'
DESCRIPTION = HELP + '''

With --dsgan PTH --scale S instead of a DML model, the LR is a trained DSGAN's (the net_g of a
DSGANModel training, e.g. basicsr train -opt options/train_dsgan_realsr_crops_x4.yml): the MATLAB
bicubic /S of the HR, then its generator, on whole images, no noise added.

Every HR image is cropped (top-left) to a multiple of the model's scale s and degraded by the
trained DML model plus noise (white Gaussian, or with --noise fitted the noise fitted for the
model, as DMLDegradation draws it online); OUTPUT/HR/<stem>.png and OUTPUT/LR/<stem>.png are
8-bit PNGs with LR exactly HR/s, and OUTPUT/meta_info.txt lists the file names for BasicSR's
PairedImageDataset (dataroot_gt: OUTPUT/HR, dataroot_lq: OUTPUT/LR,
meta_info_file: OUTPUT/meta_info.txt, filename_tmpl: '{}').

Rerunning resumes: pairs already written are skipped; files are written atomically. The noise of
an image depends only on --seed and its file name, so the output does not depend on the order of
processing or on interruptions. Images too large for the free memory are processed in tiles, with the same
result.

OUTPUT/synthesis.yml records the checkpoint (and its sha256), its scale, --noise, --noise-sigma, --seed,
--color and the input files (names, sizes, mtimes). A rerun with other values or from another
input is refused rather than mixing pairs; --overwrite deletes the pairs that record lists (never
other files, never through a link) and makes them anew. An OUTPUT that overlaps INPUT on the
resolved paths (the same folder, INPUT inside OUTPUT/HR or OUTPUT/LR, OUTPUT inside INPUT), whose
HR/, LR/, synthesis.yml or meta_info.txt is a symbolic link, or that holds images no record lists,
is refused before anything is written, as is a checkpoint with NaN/inf weights. One run writes an
OUTPUT at a time (a lock on the folder, released when the run ends or is killed); a second is refused.'''


def tile_value(text):
    """``--tile``: 'auto' or a non-negative integer."""
    if text == 'auto':
        return text
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected 'auto' or a number of pixels, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f'expected a non-negative number of pixels, got {value}')
    return value


def add_arguments(p):
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.description = DESCRIPTION
    p.add_argument('--input', required=True, metavar='DIR', help='folder of HR images (png/jpg/bmp/tif/webp)')
    p.add_argument('--output', required=True, metavar='DIR', help='output folder (gets HR/, LR/, meta_info.txt)')
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument('--checkpoint', metavar='PTH',
                        help="trained DMLNet weights, e.g. experiments/NAME/models/net_g_latest.pth (or a shipped "
                             "model's name)")
    source.add_argument('--pretrained', metavar='NAME', help="a shipped DML model, e.g. realsr-x4")
    source.add_argument('--dsgan', metavar='PTH', help='the net_g_*.pth of a DSGANModel training (needs --scale)')
    p.add_argument('--scale', type=int, metavar='S', help='the scale the DSGAN of --dsgan was trained for')
    p.add_argument('--noise-sigma', type=float, default=None, metavar='SIGMA',
                   help='AWGN sigma on the 0-255 scale (default: 5; 0 disables; DML models only)')
    p.add_argument('--noise', choices=('awgn', 'fitted'), default='awgn',
                   help="'awgn': white Gaussian noise of --noise-sigma; 'fitted': the noise fitted for the checkpoint "
                        "(CHECKPOINT.noise.yml, from basicsr fit-noise --save-beside or basicsr adapt) "
                        "(default: awgn)")
    p.add_argument('--seed', type=int, default=0, help='noise seed, a non-negative integer (default: 0)')
    p.add_argument('--tile', type=tile_value, default='auto', metavar='PIXELS',
                   help="HR tile size for large images, rounded up to a multiple of lcm(4, scale); 0 disables "
                        "tiling; 'auto' (default): whole images where the memory allows (the fastest), else the "
                        "largest tile that fits")
    p.add_argument('--tile-overlap', type=int, default=64, metavar='PIXELS',
                   help='context on each side of a tile, rounded up likewise (default: 64)')
    p.add_argument('--device', default='cpu', help="torch device, 'cpu' or 'cuda' (default: cpu)")
    p.add_argument('--color', choices=('rgb', 'y'), default='rgb',
                   help="'rgb' keeps the colour images; 'y' writes Y-channel images (Y models only)")
    p.add_argument('--overwrite', action='store_true',
                   help='delete the pairs that OUTPUT/synthesis.yml lists (an earlier run with other parameters or '
                        'input) and make them anew')
    p.add_argument('--no-progress', action='store_true', help='no progress bar')


def dsgan_scale(args):
    """The DSGAN scale of ``--dsgan``/``--scale`` (None for a DML model); ValueError for one without the other."""
    if args.dsgan is None:
        if args.scale is not None:
            raise ValueError('--scale is for --dsgan only (a DML model knows its scale)')
        return None
    if args.scale is None or args.scale < 1:
        raise ValueError(f'--dsgan needs --scale, the positive scale its DSGAN was trained for (got {args.scale})')
    return args.scale


def dml_source(args):
    """(checkpoint, pretrained) of ``--checkpoint``/``--pretrained``: ``--checkpoint NAME`` of a shipped model (no
    file of that name) is ``--pretrained NAME``, so that the record names the model and its own fitted noise is read;
    a checkpoint that is neither is refused by ``DMLDegradation.from_checkpoint`` (after the input is checked), with
    the shipped names."""
    if shipped_name(args.checkpoint) is not None:
        return None, args.checkpoint
    return args.checkpoint, args.pretrained


def run(args):
    try:
        args.checkpoint, args.pretrained = dml_source(args)
        scale = dsgan_scale(args)
        result = synthesize_folder(args.input, args.output, args.dsgan or args.checkpoint,
                                   noise_sigma=args.noise_sigma, dsgan_scale=scale,
                                   seed=args.seed, tile=args.tile, tile_overlap=args.tile_overlap,
                                   device=args.device, color=None if args.color == 'rgb' else args.color,
                                   progress=not args.no_progress, overwrite=args.overwrite,
                                   noise=None if args.noise == 'awgn' else args.noise, pretrained=args.pretrained)
    except (DatasetError, ValueError) as e:
        return fail('synthesize', e)
    print(f"basicsr synthesize: {len(result['names'])} pairs (x{result['scale']}) in {args.output} "
          f"({result['written']} written, {result['skipped']} already there)")
    return 0
